"""Flat exports of a stored run."""

from __future__ import annotations

import csv
import io

from .schema import CellResult, RunResult

COLUMNS = ("model", "runtime", "variant", "precision", "threads", "batch", "status", "error",
           "runtime_version", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "ci_low_ms", "ci_high_ms",
           "count", "items_per_s", "load_s", "first_ms", "peak_rss_mb", "peak_rss_after_load_mb",
           "other_load", "unstable", "noisy", "integrity_passed", "rel_max_abs_diff", "cosine",
           "top1_agreement", "timed_region", "libraries")


def _row(c: CellResult) -> dict[str, object]:
    s, i = c.summary, c.integrity
    return {
        "model": c.spec.model, "runtime": c.spec.runtime, "variant": c.spec.variant,
        "precision": c.precision, "threads": c.spec.threads_label, "batch": c.spec.batch,
        "status": c.status, "error": c.error or "", "runtime_version": c.runtime_version,
        "mean_ms": s and s.mean_ms, "p50_ms": s and s.p50_ms, "p90_ms": s and s.p90_ms,
        "p99_ms": s and s.p99_ms, "ci_low_ms": s and s.median_ci_low_ms,
        "ci_high_ms": s and s.median_ci_high_ms, "count": s and s.count,
        "items_per_s": c.items_per_s, "load_s": c.load_s, "first_ms": c.first_ms,
        "peak_rss_mb": c.peak_rss_mb, "peak_rss_after_load_mb": c.peak_rss_after_load_mb,
        "other_load": c.other_load, "unstable": c.unstable, "noisy": c.noisy,
        "integrity_passed": i and i.passed, "rel_max_abs_diff": i and i.rel_max_abs_diff,
        "cosine": i and i.cosine, "top1_agreement": i and i.top1_agreement,
        "timed_region": c.timed_region,
        "libraries": " ".join(f"{lib.name}:{lib.size_mb:.1f}MB" for lib in c.libraries),
    }


def to_csv(run: RunResult) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in run.cells:
        w.writerow({k: "" if v is None else v for k, v in _row(c).items()})
    return buf.getvalue()
