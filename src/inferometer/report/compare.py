"""`inferometer compare RUN_A RUN_B`: per matching cell, B's median over A's with a bootstrap
confidence interval from the raw samples, a verdict, a geometric-mean summary, and thresholds
(`--fail-on`) that make it a CI gate.

A change is called only when the 95% interval of the ratio excludes 1 *and* the ratio is
further from 1 than the noise floor (default 2%).  The interval comes from a moving-block
bootstrap, because samples within a cell are serially correlated; the floor is there because
two runs of the same configuration differ by a percent or two between processes on a shared
machine, which no resampling of one run can see: pyperf and criterion use the same two-part
rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..results.schema import CellResult, RunResult
from ..results.store import RunDir
from ..stats import bootstrap_ratios

NOISE = 0.02  # the default noise floor: a ratio within 2% of 1 is no change
METRICS = ("p50", "p90", "p99", "mean", "items_per_s", "peak_rss", "load_s")
# Metrics computed from the raw samples: the percentile (None: the mean) the bootstrap uses.
_SAMPLED: dict[str, float | None] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "mean": None}


Key = tuple[str, str, str, str, str, int, str]


def cell_key(c: CellResult) -> Key:
    return (c.spec.model, c.spec.runtime, c.spec.variant, c.precision, c.spec.threads_label,
            c.spec.batch, c.spec.device)


def key_label(key: Key) -> str:
    model, runtime, variant, precision, threads, batch, device = key
    where = "" if device == "cpu" else f" on {device}"
    return f"{model} {runtime}/{variant} {precision} t={threads} b={batch}{where}"


@dataclass(frozen=True)
class Change:
    metric: str
    a: float
    b: float
    ratio: float  # b / a
    low: float | None  # 95% interval of the ratio; None where there is only one value a side
    high: float | None
    verdict: str  # "faster"/"slower" (latency), "better"/"worse", or "no significant change"


@dataclass(frozen=True)
class CellComparison:
    key: Key
    changes: tuple[Change, ...]

    def get(self, metric: str) -> Change | None:
        return next((c for c in self.changes if c.metric == metric), None)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    cells: tuple[CellComparison, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    failed: tuple[str, ...]  # in both, but failed in at least one
    noise: float

    def geomean(self, metric: str = "p50") -> float | None:
        ratios = [c.ratio for cc in self.cells if (c := cc.get(metric)) is not None]
        if not ratios:
            return None
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def _words(metric: str, worse: bool) -> str:
    if metric in ("p50", "p90", "p99", "mean", "load_s"):
        return "slower" if worse else "faster"
    return "worse" if worse else "better"


def _verdict(metric: str, ratio: float, low: float | None, high: float | None,
             noise: float) -> str:
    if abs(ratio - 1.0) <= noise:
        return "no significant change"
    if low is not None and high is not None and low <= 1.0 <= high:
        return "no significant change"
    worse = ratio < 1.0 if metric == "items_per_s" else ratio > 1.0
    return _words(metric, worse)


def _value(c: CellResult, metric: str) -> float | None:
    s = c.summary
    if s is None:
        return None
    return {"p50": s.p50_ms, "p90": s.p90_ms, "p99": s.p99_ms, "mean": s.mean_ms,
            "items_per_s": c.items_per_s, "peak_rss": c.peak_rss_mb, "load_s": c.load_s}[metric]


def compare_cells(ca: CellResult, cb: CellResult, samples_a: Sequence[int] | None,
                  samples_b: Sequence[int] | None, noise: float) -> CellComparison:
    changes = []
    boot: dict[str, tuple[float, float, float]] = {}
    if samples_a and samples_b:  # one resampling serves every sampled statistic
        boot = dict(zip(_SAMPLED, bootstrap_ratios(samples_a, samples_b,
                                                   list(_SAMPLED.values())), strict=True))
    for metric in METRICS:
        va, vb = _value(ca, metric), _value(cb, metric)
        if va is None or vb is None or va <= 0:
            continue
        low = high = None
        ratio = vb / va
        if metric in boot:
            ratio, low, high = boot[metric]
        elif metric == "items_per_s" and boot:
            # items/s is batch / median latency: its interval is the inverted p50 interval.
            r, lo, hi = boot["p50"]
            ratio, low, high = 1.0 / r, 1.0 / hi, 1.0 / lo
        elif metric == "p50" and ca.summary and cb.summary:
            # No raw samples kept: the stored order-statistic intervals bound the ratio.
            low = cb.summary.median_ci_low_ms / ca.summary.median_ci_high_ms
            high = cb.summary.median_ci_high_ms / ca.summary.median_ci_low_ms
        changes.append(Change(metric, va, vb, ratio, low, high,
                              _verdict(metric, ratio, low, high, noise)))
    return CellComparison(cell_key(ca), tuple(changes))


def compare_runs(path_a: str, path_b: str, noise: float = NOISE) -> Comparison:
    da, db = RunDir(Path(path_a)), RunDir(Path(path_b))
    ra, rb = da.load(), db.load()
    ka = {cell_key(c): c for c in ra.cells}
    kb = {cell_key(c): c for c in rb.cells}
    common = [k for k in ka if k in kb]
    if not common:
        raise UsageError(f"no common cells: {path_a} has {_models(ra)}, {path_b} has "
                         f"{_models(rb)}; compare runs of the same model, runtime, variant, "
                         "threads and batch")
    cells, failed = [], []
    for k in common:
        a, b = ka[k], kb[k]
        if a.status != "ok" or b.status != "ok" or a.summary is None or b.summary is None:
            which = " and ".join(n for n, c in (("A", a), ("B", b)) if c.status != "ok")
            failed.append(f"{key_label(k)} (failed in {which})")
            continue
        cells.append(compare_cells(a, b, da.samples(a.spec.id), db.samples(b.spec.id), noise))
    return Comparison(path_a, path_b, tuple(cells),
                      tuple(key_label(k) for k in ka if k not in kb),
                      tuple(key_label(k) for k in kb if k not in ka), tuple(failed), noise)


def _models(run: RunResult) -> str:
    return ", ".join(sorted({c.spec.model for c in run.cells})) or "no cells"


# -- the gate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    metric: str
    limit: float  # allowed worsening, as a fraction (0.05 = 5%)


def parse_fail_on(text: str) -> tuple[Threshold, ...]:
    """'p50:5%,peak_rss:10%' -> thresholds.  A bare metric ('p50') allows no significant
    worsening at all."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        metric, _, limit = part.partition(":")
        if metric not in METRICS:
            raise UsageError(f"--fail-on: unknown metric '{metric}'; valid: {', '.join(METRICS)}")
        try:
            value = float(limit.rstrip("%")) / 100.0 if limit else 0.0
        except ValueError:
            raise UsageError(f"--fail-on: '{part}' is not METRIC:PERCENT like p50:5%") from None
        if value < 0:
            raise UsageError(f"--fail-on: '{part}': the percentage must be >= 0")
        out.append(Threshold(metric, value))
    if not out:
        raise UsageError("--fail-on: give at least one METRIC:PERCENT, like p50:5%")
    return tuple(out)


def regressions(cmp: Comparison, thresholds: Sequence[Threshold]) -> list[str]:
    """Rows that got significantly worse by more than their threshold."""
    out = []
    for cc in cmp.cells:
        for t in thresholds:
            ch = cc.get(t.metric)
            if ch is None or ch.verdict not in ("slower", "worse"):
                continue
            worse_by = (1.0 / ch.ratio - 1.0) if t.metric == "items_per_s" else ch.ratio - 1.0
            if worse_by > t.limit:
                out.append(f"{t.metric} {worse_by:+.1%} (limit {t.limit:.0%}): "
                           f"{key_label(cc.key)}: {ch.a:.4g} -> {ch.b:.4g}")
    return out
