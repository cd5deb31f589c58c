"""A cell from its processes.  The runner and every test that writes a stored run build cells
here, so what a test reads is what a run writes."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from ..stats import median_interval, spread, summarize, summarize_processes, throughput
from .schema import CellResult, ProcessResult

_MS = 1e-6


def _median(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def _max(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return max(xs) if xs else None


def _stop_reason(procs: Sequence[ProcessResult]) -> str:
    counts = Counter(p.stop_reason for p in procs)
    if len(counts) == 1:
        return procs[0].stop_reason
    return ", ".join(f"{reason} x{n}" for reason, n in counts.most_common())


def pool(cell: CellResult, procs: Sequence[ProcessResult], samples: Sequence[Sequence[int]],
         device_samples: Sequence[Sequence[int]] = (), *, target_rel_ci: float = 0.01,
         max_spread: float = 0.10, noisy_threshold: float = 0.15) -> CellResult:
    """`cell` (status, versions, settings, integrity: what does not vary by process) with the
    figures of its finished processes pooled.  `samples[i]` are `procs[i]`'s raw latencies.

    Several processes: each weighs the same in the percentiles (stats.pooled_stats), the
    median's interval is the two-level bootstrap's, and `unstable` means
    the process medians spread more than `max_spread`.  One process: the order-statistic
    interval of its samples, and `unstable` as before (the interval stayed wider than the
    target), because there is no between-process level to look at."""
    if not procs:
        return replace(cell, processes=(), spread=None)
    order = sorted(range(len(procs)), key=lambda i: procs[i].rep)
    procs = [procs[i] for i in order]
    samples = [samples[i] for i in order]
    summary = summarize_processes(samples)
    if len(procs) > 1:
        lo, hi = median_interval(samples)
        summary = replace(summary, median_ci_low_ms=lo * _MS, median_ci_high_ms=hi * _MS)
        between = spread([p.summary.p50_ms for p in procs])
        unstable = between is not None and between > max_spread
    else:
        between = None
        unstable = procs[0].stop_reason != "converged" and summary.rel_ci > target_rel_ci
    other = _max([p.other_load for p in procs])
    device = [x for s in device_samples for x in s]
    return replace(
        cell, processes=tuple(procs), spread=between, summary=summary,
        items_per_s=throughput(summary, cell.spec.batch), stop_reason=_stop_reason(procs),
        unstable=unstable, other_load=other, noisy=(other or 0.0) > noisy_threshold,
        load_s=_median([p.load_s for p in procs]), first_ms=_median([p.first_ms for p in procs]),
        rss_after_load_mb=_median([p.rss_after_load_mb for p in procs]),
        peak_rss_after_load_mb=_max([p.peak_rss_after_load_mb for p in procs]),
        peak_rss_mb=_max([p.peak_rss_mb for p in procs]),
        wall_s=sum(p.wall_s or 0.0 for p in procs), cpu_affinity=procs[0].cpu_affinity,
        device_summary=summarize(device) if device else None)
