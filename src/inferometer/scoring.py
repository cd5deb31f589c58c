"""Accuracy runs and the precision table: per runtime x precision, top-1 on labelled data,
the change against that runtime's fp32, the predictions that differ from the fp32 reference,
the largest logit difference, and the speed-up against fp32 on the same batches."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import __version__, envs, runtimes
from .datasets import Dataset
from .jobs import Job
from .models.preprocess import CALIBRATION_SAMPLES
from .models.ref import ModelRef
from .plan import precision_variant
from .results.accuracyrun import AccuracyRun, PrecisionRow
from .results.schema import SCHEMA_VERSION, CellSpec
from .runtimes.base import needs_conversion
from .scenarios import RunLength
from .spawn import spawn_worker


def _job(model: ModelRef, spec: CellSpec, out: Path, mode: str, data: Path) -> Job:
    return Job(spec=spec, model=model, length=RunLength(), preprocess_timed=True, pin=False,
               report_path=str(out / "logs" / f"{spec.runtime}.{spec.variant}.{mode}.json"),
               outputs_path=str(out / "outputs" / f"{spec.runtime}.{spec.variant}.npy"),
               mode=mode, dataset_path=str(data))


def run(model: ModelRef, data: Dataset, names: Sequence[str], precisions: Sequence[str], *,
        batch: int, threads: int | None, out: Path, timeout_s: float, max_drop: float,
        on_line: Callable[[str], None], device: str = "cpu") -> tuple[list[PrecisionRow], str]:
    for sub in ("dataset", "outputs", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if data.inputs is not None:  # any model: every input's items; int8 calibrates on the first
        images = out / "dataset" / "inputs.npz"
        np.savez(images, **data.inputs)
        calib = out / "dataset" / "calibration.npz"
        np.savez(calib, **{k: v[:CALIBRATION_SAMPLES, None] for k, v in data.inputs.items()})
        model = replace(model, calibration=str(calib))
    else:
        images = out / "dataset" / "images.npy"
        np.save(images, data.images)
        np.save(out / "dataset" / "calibration.npy", data.calibration)
        model = replace(model, calibration=str(out / "dataset" / "calibration.npy"))
    if data.labels is not None:
        np.save(out / "dataset" / "labels.npy", data.labels)

    @functools.cache  # the reference is onnxruntime's fp32 row too: each job runs once
    def execute(name: str, variant: str, on: str) -> tuple[str, np.ndarray | None, list[int]]:
        rt = runtimes.get(name)
        spec = CellSpec(model.name, name, variant, threads, batch, on)
        python = envs.python_for(name)
        if needs_conversion(rt, variant):
            on_line(f"converting {name}/{variant} ...")
            conv = spawn_worker(_job(model, spec, out, "convert", images),
                                out / "logs" / f"{name}.{variant}.convert.log", timeout_s, python)
            if conv.status != "ok":
                return f"conversion failed: {conv.error}", None, []
        on_line(f"running {name}/{variant} on {data.items} items ...")
        job = _job(model, spec, out, "accuracy", images)
        rep = spawn_worker(job, out / "logs" / f"{name}.{variant}.log", timeout_s, python)
        if rep.status != "ok":
            return rep.error or "failed", None, []
        return "", np.load(job.outputs_path or ""), list(rep.samples_ns)

    # the reference is ONNX Runtime fp32 on the CPU, whatever the device under test: the
    # "differ from fp32" count is against one fixed, well-trodden implementation
    ref_name = "onnxruntime"
    _, ref_logits, _ = execute(ref_name, "default", "cpu")
    reference = (f"{ref_name} fp32" + ("" if device == "cpu" else " on the CPU")
                 if ref_logits is not None else "none (onnxruntime failed)")
    rows: list[PrecisionRow] = []
    for name in names:
        rt = runtimes.get(name)()
        base: PrecisionRow | None = None
        for prec in precisions:
            variant = precision_variant(rt, prec, device)
            if variant is None:
                on = "" if device == "cpu" else f" on {device}"
                rows.append(PrecisionRow(name, prec, "-", "n/a",
                                         f"{name} has no {prec} variant{on}"))
                continue
            err, logits, lat = execute(name, variant, device)
            if logits is None:
                rows.append(PrecisionRow(name, prec, variant, "failed", err))
                continue
            row = _row(name, prec, variant, logits, lat, data.labels, ref_logits, base,
                       max_drop, _scored(model).kind)
            rows.append(row)
            if prec == "fp32":
                base = row
    return rows, reference


def _agreement(out: np.ndarray, ref: np.ndarray, kind: str) -> tuple[float, str]:
    """Without labels: how far a precision's output stays from fp32's: argmax agreement on
    class logits (every position of a sequence), else the lowest per-item cosine."""
    if kind == "classes" and out.shape[-1] > 1:
        return float((out.argmax(-1) == ref.argmax(-1)).mean() * 100), "argmax %"
    a = out.reshape(len(out), -1).astype(np.float64)
    b = ref.reshape(len(ref), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0)
    return float(cos.min()), "min cosine"


def _row(name: str, prec: str, variant: str, logits: np.ndarray, lat: list[int],
         labels: np.ndarray | None, ref: np.ndarray | None, base: PrecisionRow | None,
         max_drop: float, kind: str = "classes") -> PrecisionRow:
    p50 = float(np.median(lat)) / 1e6 if lat else None
    if labels is None:  # agreement with the fp32 reference is all there is to say
        agree = how = differ = max_diff = None
        if ref is not None and ref.shape == logits.shape:
            agree, how = _agreement(logits, ref, kind)
            max_diff = float(np.abs(logits - ref).max())
            if kind == "classes":
                differ = int((logits.argmax(-1) != ref.argmax(-1)).sum())
        speed = None if base is None or not base.p50_ms or not p50 else base.p50_ms / p50
        return PrecisionRow(name, prec, variant, "ok", "", None, None, differ, max_diff, p50,
                            speed, agreement=agree, agreement_kind=how or "")
    if logits.ndim != 2 or logits.shape[1] < 2:
        return PrecisionRow(name, prec, variant, "failed",
                            f"model output {logits.shape} is not a class vector")
    pred = logits.argmax(1)
    top1 = float((pred == labels).mean() * 100)
    differ = max_diff = None
    if ref is not None and ref.shape == logits.shape:
        differ = int((pred != ref.argmax(1)).sum())
        max_diff = float(np.abs(logits - ref).max())
    delta = None if base is None or base.top1 is None else top1 - base.top1
    speed = None if base is None or not base.p50_ms or not p50 else base.p50_ms / p50
    return PrecisionRow(name, prec, variant, "ok", "", top1, delta, differ, max_diff, p50, speed,
                        flagged=delta is not None and -delta > max_drop)


def _scored(model: ModelRef):  # type: ignore[no-untyped-def]
    """The output accuracy reads: the first class-logits output, else the first."""
    return next((o for o in model.io.outputs if o.kind == "classes"), model.io.outputs[0])


def record(model: ModelRef, data: Dataset, rows: list[PrecisionRow], reference: str, *,
           batch: int, threads: int | None, max_drop: float, command: tuple[str, ...],
           machine: dict[str, object], device: str = "cpu") -> AccuracyRun:
    return AccuracyRun(
        schema_version=SCHEMA_VERSION, kind="accuracy", tool_version=__version__,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), command=command,
        machine=machine,
        model=model.info(),
        dataset=data.name, dataset_note=data.note, items=data.items, batch=batch,
        threads=threads, reference=reference, max_drop=max_drop, rows=tuple(rows),
        device=device)
