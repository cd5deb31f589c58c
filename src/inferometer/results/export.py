"""Flat exports of a stored run: one row per cell (speed runs), per load step (loadtest, scan)
or per runtime x precision (accuracy), as CSV, JSON or Parquet.  The JSON export is the whole
result in the current schema, not the flat rows: nothing is lost."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .accuracyrun import AccuracyRun
from .codec import to_dict
from .cost import cost_per_million
from .loadrun import LoadRun
from .schema import CellResult, RunResult
from .trainrun import TrainRun
from .tunerun import TuneRun

FORMATS = ("csv", "json", "parquet")

COLUMNS = ("model", "runtime", "variant", "precision", "threads", "batch", "dims", "machine",
           "status",
           "error",
           "runtime_version", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "ci_low_ms", "ci_high_ms",
           "count", "processes", "spread", "items_per_s", "cost_per_million", "load_s", "first_ms",
           "peak_rss_mb",
           "peak_rss_after_load_mb",
           "other_load", "unstable", "noisy", "integrity_passed", "integrity_output",
           "rel_max_abs_diff", "cosine",
           "top1_agreement", "timed_region", "libraries", "device", "device_p50_ms",
           "gpu_peak_allocated_mb", "gpu_peak_reserved_mb", "gpu_device_used_mb",
           "gpu_process_used_mb")


def _row(c: CellResult, run: RunResult) -> dict[str, object]:
    s, i = c.summary, c.integrity
    return {
        "model": c.spec.model, "runtime": c.spec.runtime, "variant": c.spec.variant,
        "precision": c.precision, "threads": c.spec.threads_label, "batch": c.spec.batch,
        "dims": c.spec.dims_label, "machine": c.spec.machine or "", "status": c.status,
        "error": c.error or "",
        "runtime_version": c.runtime_version,
        "mean_ms": s and s.mean_ms, "p50_ms": s and s.p50_ms, "p90_ms": s and s.p90_ms,
        "p99_ms": s and s.p99_ms, "ci_low_ms": s and s.median_ci_low_ms,
        "ci_high_ms": s and s.median_ci_high_ms, "count": s and s.count,
        "processes": len(c.processes), "spread": c.spread,
        "items_per_s": c.items_per_s, "cost_per_million": cost_per_million(c, run),
        "load_s": c.load_s, "first_ms": c.first_ms,
        "peak_rss_mb": c.peak_rss_mb, "peak_rss_after_load_mb": c.peak_rss_after_load_mb,
        "other_load": c.other_load, "unstable": c.unstable, "noisy": c.noisy,
        "integrity_passed": i and i.passed, "integrity_output": i and i.output,
        "rel_max_abs_diff": i and i.rel_max_abs_diff,
        "cosine": i and i.cosine, "top1_agreement": i and i.top1_agreement,
        "timed_region": c.timed_region,
        "libraries": " ".join(f"{lib.name}:{lib.size_mb:.1f}MB" for lib in c.libraries),
        "device": c.spec.device, "device_p50_ms": c.device_summary and c.device_summary.p50_ms,
        "gpu_peak_allocated_mb": c.device_memory_mb.get("torch_peak_allocated"),
        "gpu_peak_reserved_mb": c.device_memory_mb.get("torch_peak_reserved"),
        "gpu_device_used_mb": c.device_memory_mb.get("nvml_device_used"),
        "gpu_process_used_mb": c.device_memory_mb.get("nvml_process_used"),
    }


def process_rows(run: RunResult) -> list[dict[str, Any]]:
    """One row a worker process: the cell's key, the process's own figures, its node."""
    out = []
    for c in run.cells:
        for p in c.processes:
            node = run.machines.get(p.node, {})
            s = p.summary
            out.append({"model": c.spec.model, "runtime": c.spec.runtime,
                        "variant": c.spec.variant, "precision": c.precision,
                        "threads": c.spec.threads_label, "batch": c.spec.batch,
                        "dims": c.spec.dims_label, "machine": c.spec.machine or "",
                        "rep": p.rep, "node": p.node,
                        "machine_type": node.get("machine_type", ""),
                        "mean_ms": s.mean_ms, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms,
                        "count": s.count, "first_ms": p.first_ms, "load_s": p.load_s,
                        "peak_rss_mb": p.peak_rss_mb, "wall_s": p.wall_s,
                        "probe_ms": p.probe_ms, "gemm_ms": p.gemm_ms})
    return out


def _train_rows(run: TrainRun) -> list[dict[str, Any]]:
    out = []
    for r in run.rows:
        row: dict[str, Any] = {"model": run.model.name, "device": run.device,
                               "device_name": run.device_name, "batch": run.batch,
                               "optimizer": run.optimizer, "precision": r.precision,
                               "status": r.status, "error": r.error or ""}
        for phase in ("forward", "backward", "update", "total"):
            s = getattr(r, phase)
            row[f"{phase}_p50_ms"] = s and s.p50_ms
        row.update(images_per_s=r.images_per_s, loss_first=r.loss_first,
                   loss_last=r.loss_last, trained=r.trained)
        out.append(row)
    return out


def _tune_rows(run: TuneRun) -> list[dict[str, Any]]:
    """One row per candidate: its configuration, verdict and figures."""
    chosen = run.recommendation.candidate.id if run.recommendation else None
    return [{"model": run.model.name, "objective": run.objective,
             "slo_ms": None if run.slo_s is None else run.slo_s * 1e3, "candidate": c.id,
             "runtime": c.runtime, "variant": c.variant, "precision": c.precision,
             "instances": c.instances, "threads": c.threads, "max_batch": c.max_batch,
             "delay_ms": c.delay_s * 1e3, "status": v.status, "recommended": c.id == chosen,
             "max_qps": v.max_qps, "p99_ms": v.p99_ms, "memory_mb": v.memory_mb,
             "bound": v.bound, "note": v.note}
            for v in run.verdicts for c in (v.candidate,)]


def rows(run: RunResult | LoadRun | AccuracyRun | TrainRun | TuneRun) -> list[dict[str, Any]]:
    if isinstance(run, TuneRun):
        return _tune_rows(run)
    if isinstance(run, TrainRun):
        return _train_rows(run)
    if isinstance(run, LoadRun):
        return [{"config": ls.config, "scenario": ls.step.scenario,
                 "arrivals": ls.step.arrivals, "target_s": ls.step.target_s,
                 "offered_qps": ls.step.offered_qps, "achieved_qps": ls.step.achieved_qps,
                 "queries": ls.step.queries, "duration_s": ls.step.duration_s,
                 "mean_s": ls.step.mean_s,
                 **{f"p{k}_s": v for k, v in ls.step.tiles_s.items()},
                 "issue_lag_p99_us": ls.step.issue_lag_p99_us, "valid": ls.step.valid,
                 "reasons": "; ".join(ls.step.reasons), "notes": "; ".join(ls.step.notes),
                 "model": run.model.name,
                 "batching": run.batching, "batch_sizes": ls.step.batch_text(),
                 "runtime": run.runtime, "variant": run.variant, "engine": run.engine,
                 "target": run.target, "concurrency": ls.step.concurrency,
                 "errors": ls.step.errors,
                 **{f"server_{k}": v for k, v in ls.step.server.items()}}
                for ls in run.scan]
    if isinstance(run, AccuracyRun):
        return [{"model": run.model.name, "dataset": run.dataset, **to_dict(r)}
                for r in run.rows]
    return [_row(c, run) for c in run.cells]


def _csv(table: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> str:
    names = list(columns or dict.fromkeys(k for r in table for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, names, lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def to_csv(run: RunResult) -> str:
    return _csv([_row(c, run) for c in run.cells], COLUMNS)


def export(run: RunResult | LoadRun | AccuracyRun | TrainRun | TuneRun, fmt: str,
           path: Path) -> None:
    from .store import atomic_write

    if fmt == "json":
        atomic_write(path, json.dumps(to_dict(run), indent=1) + "\n")
    elif fmt == "csv":
        atomic_write(path, _csv(rows(run), COLUMNS if isinstance(run, RunResult) else None))
    elif fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UsageError("--format parquet needs pyarrow: pip install pyarrow") from None
        table = pa.Table.from_pylist(rows(run))
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
    else:
        raise UsageError(f"--format: unknown '{fmt}'; valid: {', '.join(FORMATS)}")
