"""Stored run -> Document, in the shape of the studies' READMEs: a header with the machine and
versions, the pictures, a summary, then one block per runtime (version, settings, dependencies,
integrity, its threads table)."""

from __future__ import annotations

from collections.abc import Sequence

from ..results.accuracyrun import AccuracyRun
from ..results.loadrun import LoadRun
from ..results.rounds import rounds_text
from ..results.schema import CellResult, RunHeader, RunResult
from ..results.trainrun import TrainRun
from ..results.tunerun import TuneRun
from .document import Block, Code, Document, Facts, Heading, Image, Items, Table, Text
from .plots import Plot, best_per_series, series_label
from .table import (
    HEADERS,
    LOAD_HEADERS,
    NODE_HEADERS,
    PRECISION_HEADERS,
    TRAIN_HEADERS,
    cell_row,
    cheapest_lines,
    fastest_lines,
    load_rows,
    load_title,
    max_qps_lines,
    model_groups,
    node_rows,
    precision_rows,
    precision_title,
    spread_cell,
    throughput_pivot,
    tied_with,
    train_rows,
    train_title,
)


def _header(run: RunHeader, extra: Sequence[tuple[str, str]] = ()) -> list[Block]:
    m = run.machine
    flags = ", ".join(m.get("cpu_flags") or []) or "-"  # type: ignore[arg-type]
    pairs = [("created", run.created), ("inferometer", run.tool_version),
             ("machine", f"{m.get('cpu_model')}, {m.get('usable_cpus')} usable of "
                         f"{m.get('logical_cpus')} logical CPUs, {m.get('memory_gb')} GB"),
             ("CPU flags", flags), ("OS", str(m.get("os"))), ("Python", str(m.get("python"))),
             *extra]
    return [Facts(tuple(pairs)), Code(" ".join(run.command))]


def _figures(plots: Sequence[Plot], model: str | None = None) -> list[Block]:
    """The figures, or those of one model (a speed run draws a set per model)."""
    return [Image(p.name, p.title, p.caption) for p in plots if model in (None, p.model)]


def _integrity_words(c: CellResult) -> str:
    i = c.integrity
    if i is None:
        return c.settings.get("integrity", "not checked (no reference output)")
    top1 = "" if i.top1_agreement is None else f", top-1 agreement {i.top1_agreement:.0%}"
    return (f"{'passed' if i.passed else 'FAILED'}: max|d|/max|ref| {i.rel_max_abs_diff:.1e}, "
            f"cosine {i.cosine:.6f}{top1} ({i.rule})")


def _runtime_block(runtime: str, cells: Sequence[CellResult]) -> list[Block]:
    ok = [c for c in cells if c.status == "ok"]
    version = next((c.runtime_version for c in cells if c.runtime_version), "")
    out: list[Block] = [Heading(3, f"{runtime} {version}".strip())]
    items = []
    for variant in dict.fromkeys(c.spec.variant for c in cells):
        vc = [c for c in cells if c.spec.variant == variant]
        first = next((c for c in vc if c.status == "ok"), vc[0])
        settings = ", ".join(f"{k}={v}" for k, v in first.settings.items()
                             if k != "integrity") or "defaults"
        items.append(f"{variant} ({first.precision}): {settings}; integrity "
                     f"{_integrity_words(first)}")
    if ok:
        libs = ok[0].libraries
        total = sum(lib.size_mb for lib in libs)
        names = ", ".join(f"{lib.name} {lib.size_mb:.1f} MB" for lib in libs) or "none"
        items.append(f"dependencies ({len(libs)} non-system shared libraries, {total:.0f} MB): "
                     f"{names}")
    out.append(Items(tuple(items)))
    out.append(Table(HEADERS, tuple(tuple(cell_row(c)) for c in cells)))
    return out


def _speed(run: RunResult, plots: Sequence[Plot]) -> Document:
    s = run.settings
    timed = ("uint8 NHWC buffer -> runtime input + inference" if s.preprocess_timed
             else "inference only (--no-preprocess)")
    versions = dict.fromkeys(f"{c.spec.runtime} {c.runtime_version}" for c in run.cells
                             if c.runtime_version)
    devices = sorted({c.spec.device for c in run.cells}) or ["cpu"]
    blocks = _header(run, [("runtimes", ", ".join(versions) or "-"),
                           ("device", ", ".join(devices)),
                           ("status", run.status), ("timed region", timed),
                           ("integrity reference", f"{s.reference_runtime} fp32"),
                           ("processes", f"{s.processes_label} fresh worker process(es) per cell, "
                                         f"scheduled {s.order}" + (f"; spread: {r}" if (
                                             r := rounds_text(run.cells, s)) else "")),
                           ("run length", f"each process: {s.warmup} warm-up"
                                          + (f" (at most {s.warmup_max_s:g} s)"
                                             if s.warmup_max_s else "")
                                          + f", {s.min_time_s:g}-"
                                          f"{s.max_time_s:g} s, >= {s.min_count} runs, stop at "
                                          f"{s.target_label} CI of the median")])
    warnings = []
    if any(c.noisy for c in run.cells):
        warnings.append(f"{sum(c.noisy for c in run.cells)} cell(s) ran while other processes "
                        f"used more than {s.noisy_threshold:.0%} of the CPUs they ran on "
                        "(flag: noisy)")
    if any(c.unstable for c in run.cells):
        warnings.append(f"{sum(c.unstable for c in run.cells)} cell(s) unstable: their "
                        f"process medians spread more than {s.max_spread:.0%} (flag: unstable)")
    if any(c.status == "ok" and len(c.processes) <= 1 for c in run.cells):
        warnings.append("cells measured in one process: their intervals cannot include "
                        "between-run noise")
    failed = [c for c in run.cells if c.status != "ok"]
    if failed:
        warnings.append(f"{len(failed)} cell(s) failed; their reason is in the tables")
    if warnings:
        blocks.append(Items(tuple(f"warning: {w}" for w in warnings)))
    if s.cluster is not None:  # which machine ran what: the machine is a key of every cell
        blocks += [Heading(2, "Cluster nodes"),
                   Text(f"Ray cluster {s.cluster}, {s.slots_per_node} process(es) at a time on "
                        "each node; a cell's processes ran on nodes of its machine type."),
                   Table(NODE_HEADERS, tuple(tuple(r) for r in node_rows(run)))]
    groups = model_groups(run)
    many = len(groups) > 1
    for label, m, cells in groups:
        blocks.append(Heading(2, f"{label} ({m.signature()})"))
        lines = fastest_lines(cells) + cheapest_lines(cells, run)
        if lines:
            blocks.append(Items(tuple(lines)))
        blocks += _figures(plots, label)
        batches = sorted({c.spec.batch for c in cells})
        on_device = any(c.device_summary is not None for c in cells)  # else no such column
        rows = []
        for b in batches:
            for c in best_per_series(cells, b):
                sm = c.summary
                dev = c.device_summary
                tied = tied_with(c, [x for x in cells if x.spec.batch == b
                                     and series_label(x) == series_label(c)])
                threads = c.spec.threads_label + (
                    f" (tied: {', '.join(x.spec.threads_label for x in tied)})" if tied else "")
                rows.append((series_label(c), c.precision, str(b), threads,
                             f"{sm.p50_ms:.2f}", f"{sm.p99_ms:.2f}",  # type: ignore[union-attr]
                             spread_cell(c),
                             *(["-" if dev is None else f"{dev.p50_ms:.3f}"] if on_device
                               else []),
                             f"{c.items_per_s:.1f}", f"{c.peak_rss_mb or 0:.0f}",
                             "-" if c.integrity is None else
                             ("ok" if c.integrity.passed else "FAIL")))
        if rows:
            blocks += [Heading(3, "Best thread count per runtime/variant"),
                       Table(("runtime/variant", "precision", "batch", "best threads",
                              "p50 ms", "p99 ms", "spread",
                              *(["device p50 ms"] if on_device else []),
                              "items/s", "peak MB", "integrity"),
                             tuple(rows))]
        for runtime in dict.fromkeys(c.spec.runtime for c in cells):
            blocks += _runtime_block(runtime, [c for c in cells if c.spec.runtime == runtime])
    if many:
        headers, rows = throughput_pivot(run)
        blocks += [Heading(2, "Items/s by model, batch and precision"),
                   Text("Each entry is the fastest runtime/variant that passed integrity, at its "
                        "best thread count."),
                   Table(headers, tuple(tuple(r) for r in rows))]
    notes = [f"reference {k}: {v}" for k, v in run.references.items()]
    notes += [f"conversion {k}: {v}" for k, v in run.conversions.items()]
    if notes:
        blocks += [Heading(2, "Reference outputs and conversions"), Items(tuple(notes))]
    title = "inferometer report: " + ", ".join(m.name for m in run.models)
    return Document(title, tuple(blocks))


def _load(run: LoadRun, plots: Sequence[Plot]) -> Document:
    blocks = _header(run, [("runtime", f"{run.runtime} {run.runtime_version} ({run.variant})"),
                           ("engine", run.engine), ("check_accuracy", run.check_accuracy)])
    blocks.append(Heading(2, load_title(run)))
    lines = max_qps_lines(run)
    if lines:
        blocks.append(Items(tuple(lines)))
    blocks += _figures(plots)
    blocks += [Heading(2, "Every load step"),
               Table(LOAD_HEADERS, tuple(tuple(r) for r in load_rows(run)))]
    return Document(f"inferometer {run.kind} report: {run.model.name} on {run.runtime}",
                    tuple(blocks))


def _accuracy(run: AccuracyRun, plots: Sequence[Plot]) -> Document:
    blocks = _header(run, [("dataset", f"{run.dataset} ({run.items} images)"),
                           ("reference", run.reference)])
    blocks += [Heading(2, precision_title(run)), Text(run.dataset_note), *_figures(plots),
               Table(PRECISION_HEADERS, tuple(tuple(r) for r in precision_rows(run)))]
    return Document(f"inferometer accuracy report: {run.model.name}", tuple(blocks))


def _train(run: TrainRun, plots: Sequence[Plot]) -> Document:
    blocks = _header(run, [("device", f"{run.device} ({run.device_name})"),
                           ("torch", run.torch_version)])
    blocks += [Heading(2, train_title(run)), *_figures(plots),
               Table(TRAIN_HEADERS, tuple(tuple(r) for r in train_rows(run)))]
    return Document(f"inferometer training report: {run.model.name} on {run.device}",
                    tuple(blocks))


def _tune(run: TuneRun, plots: Sequence[Plot]) -> Document:
    from .tunetable import (
        PARETO_HEADERS,
        TUNE_HEADERS,
        goal_text,
        pareto_rows,
        recommendation_lines,
        tune_rows,
    )

    blocks = _header(run, [("goal", goal_text(run)), ("arrivals", run.arrivals),
                           ("search", f"{len(run.space)} candidates, "
                                      f"{run.measuring_s / 60:.1f} min measuring")])
    lines = recommendation_lines(run)
    blocks += [Heading(2, lines[0]), Items(tuple(x.strip() for x in lines[1:]))]
    if run.accuracy_note:
        blocks.append(Text(f"Accuracy check: {run.accuracy_note}"))
    blocks += _figures(plots)
    rows = pareto_rows(run)
    if rows:
        blocks += [Heading(2, "Pareto fronts"), Table(PARETO_HEADERS, tuple(map(tuple, rows)))]
    blocks += [Heading(2, "Every candidate"),
               Table(TUNE_HEADERS, tuple(tuple(r) for r in tune_rows(run)))]
    if run.recommendation is not None:
        blocks += [Heading(2, "Deploy"), Code(run.recommendation.snippet)]
    return Document(f"inferometer tune report: {run.model.name}", tuple(blocks))


def document(run: RunResult | LoadRun | AccuracyRun | TrainRun | TuneRun,
             plots: Sequence[Plot]) -> Document:
    if isinstance(run, TuneRun):
        return _tune(run, plots)
    if isinstance(run, TrainRun):
        return _train(run, plots)
    if isinstance(run, LoadRun):
        return _load(run, plots)
    if isinstance(run, AccuracyRun):
        return _accuracy(run, plots)
    return _speed(run, plots)
