"""A tune run as a user asks for it: the space, the accuracy gate for reduced precisions, the
search over the real bench (every measurement stored as it finishes), the recommendation,
results.json and deploy.json."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets import Dataset
from ..models.ref import ModelRef
from ..results.accuracyrun import PrecisionRow
from ..results.schema import SCHEMA_VERSION
from ..results.store import atomic_write, write_json
from ..results.tunerun import Candidate, Measurement, TuneRun
from . import advise
from .bench import BenchConfig, PoolBench
from .record import RecordingBench
from .search import Goal, search

Line = Callable[[str], None]
FIDELITY_ITEMS = 64
MIN_AGREEMENT = 99.0  # argmax %, or 0.99 cosine, against fp32 when there are no labels


@dataclass(frozen=True)
class TuneConfig:
    model: ModelRef
    space: tuple[Candidate, ...]
    goal: Goal
    arrivals: str = "exponential"
    cost_per_hour: float | None = None
    dataset: str | None = None
    max_accuracy_drop: float | None = None
    timeout_s: float = 900.0
    settings: tuple[tuple[str, str], ...] = ()


def _fidelity_data(model: ModelRef) -> Dataset:
    """Generated inputs, no labels: a reduced precision is held to its agreement with fp32."""
    from ..models.inputs import generate_all

    shapes = model.io.bind(FIDELITY_ITEMS, {})
    inputs = generate_all(model.io, shapes, model.seed)
    note = (f"{FIDELITY_ITEMS} generated inputs, no labels: agreement with fp32 "
            f"(argmax >= {MIN_AGREEMENT:g}%, or cosine >= 0.99)")
    if model.io.image is not None:
        (images,) = inputs.values()
        return Dataset("generated", np.ascontiguousarray(images), None, 0, images[:32], note)
    return Dataset("generated", None, None, 0, None, note, dict(inputs))


def accuracy_gate(cfg: TuneConfig, out: Path, on_line: Line
                  ) -> tuple[tuple[PrecisionRow, ...], dict[str, str], str]:
    """Each reduced precision, per runtime, against fp32 on the same items: rows, the
    rejected (candidate key -> why) and a note of what the check was."""
    from .. import datasets, scoring

    reduced = sorted({c.precision for c in cfg.space} - {"fp32"})
    if not reduced:
        return (), {}, ""
    model = cfg.model
    spec = cfg.dataset or ("digits" if model.name == "digits" else None)
    note = ""
    if spec is not None:
        data, model = datasets.load_any(spec, model)
    else:
        data = _fidelity_data(model)
        if cfg.max_accuracy_drop is not None:
            note = ("no labelled data (--dataset): --max-accuracy-drop cannot be checked; "
                    "held to fidelity with fp32 instead. ")
    if data.labels is None:
        note += data.note
    else:
        note += (f"{data.name}: top-1 may drop at most {cfg.max_accuracy_drop or 0.5:g} points "
                 "against the runtime's fp32")
    names = sorted({c.runtime for c in cfg.space})
    rows, _ = scoring.run(model, data, names, ["fp32", *reduced], batch=1, threads=None,
                           out=out / "accuracy", timeout_s=cfg.timeout_s,
                           max_drop=cfg.max_accuracy_drop or 0.5, on_line=on_line)
    rejected = judge(rows)
    return tuple(rows), rejected, note


def _accuracy_words(rows: Sequence[PrecisionRow]) -> dict[str, str]:
    out = {}
    for r in rows:
        if r.precision == "fp32" or r.status != "ok":
            continue
        if r.top1 is not None:
            text = f"top-1 {r.top1:.1f}% ({r.delta_top1 or 0:+.1f} points vs fp32)"
        else:
            text = f"{r.agreement_kind} {r.agreement:.3g} against fp32"
        out[f"{r.runtime}/{r.precision}"] = text
    return out


def _header(cfg: TuneConfig, command: tuple[str, ...], machine: dict[str, object]) -> TuneRun:
    g = cfg.goal
    return TuneRun(schema_version=SCHEMA_VERSION, kind="tune", tool_version=__version__,
                   created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   command=command, machine=machine, model=cfg.model.info(),
                   objective=g.objective, slo_s=g.slo_s, percentile=g.percentile, qps=g.qps,
                   max_memory_mb=g.max_memory_mb, max_accuracy_drop=cfg.max_accuracy_drop,
                   budget_s=g.budget_s, exhaustive=g.exhaustive,
                   cost_per_hour=cfg.cost_per_hour, arrivals=cfg.arrivals, space=cfg.space,
                   settings=dict(cfg.settings))


def tune(cfg: TuneConfig, out: Path, command: tuple[str, ...], machine: dict[str, object],
         on_line: Line, stored: TuneRun | None = None) -> TuneRun:
    """Run (or resume, from `stored`) a search and store it in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    run = stored or _header(cfg, command, machine)
    write_json(out / "results.json", run)
    if stored is not None and (stored.accuracy or not {c.precision for c in cfg.space} - {
            "fp32"}):
        rows, rejected = stored.accuracy, judge(stored.accuracy)
    else:
        rows, rejected, note = accuracy_gate(cfg, out, on_line)
        run = replace(run, accuracy=rows, accuracy_note=note)
        write_json(out / "results.json", run)

    def save(measurements: tuple[Measurement, ...]) -> None:
        nonlocal run
        run = replace(run, measurements=measurements,
                      measuring_s=round(sum(m.seconds for m in measurements), 1))
        write_json(out / "results.json", run)

    inner = PoolBench(BenchConfig(cfg.model, cfg.goal, cfg.arrivals), out / "logs", on_line)
    bench = RecordingBench(inner, run.measurements, save)
    try:
        outcome = search(cfg.space, bench, cfg.goal, rejected)
    finally:
        inner.close()
    if bench.replayed:
        on_line(f"resumed: {bench.replayed} stored measurement(s) replayed, not re-measured")
    rec = advise.recommend(outcome, cfg.cost_per_hour, _accuracy_words(rows))
    if rec is not None:
        above = [m.scan.failed_qps for m in bench.records.values()
                 if m.kind == "scan" and m.candidate == rec.candidate.id and m.scan
                 and m.scan.failed_qps is not None and m.scan.max_qps == rec.max_qps]
        rec = replace(rec, failed_qps=min(above, default=None))
    run = replace(run, verdicts=outcome.verdicts, recommendation=rec,
                  status="done" if rec is not None else "nothing", closest=outcome.closest,
                  retests=outcome.retests)
    write_json(out / "results.json", run)
    if rec is not None:
        atomic_write(out / "deploy.json", json.dumps(advise.deploy(run), indent=1) + "\n")
    return run


def judge(rows: Sequence[PrecisionRow]) -> dict[str, str]:
    """"runtime/precision" -> why that reduced precision is out: it failed, lost more top-1
    than allowed (the row is flagged), or strayed from fp32 when there are no labels."""
    rejected = {}
    for r in rows:
        if r.precision == "fp32":
            continue
        key = f"{r.runtime}/{r.precision}"
        if r.status != "ok":
            rejected[key] = r.note or r.status
        elif r.top1 is not None:
            if r.flagged:
                rejected[key] = f"top-1 {r.top1:.1f}% dropped {-(r.delta_top1 or 0):.1f} points"
        elif r.agreement is not None:
            bound = MIN_AGREEMENT if r.agreement_kind == "argmax %" else 0.99
            if r.agreement < bound:
                rejected[key] = (f"{r.agreement_kind} {r.agreement:.3g} against fp32, below "
                                 f"{bound:g}")
        else:
            rejected[key] = "no fp32 reference to compare with"
    return rejected
