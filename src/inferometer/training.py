"""`inferometer train`: a training step (forward with the loss, backward, optimizer update)
timed per phase and in total, one fresh worker per precision, on the CPU or a CUDA device."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import UsageError
from .jobs import TrainJob
from .models.ref import ModelRef
from .plan import require_device
from .results.schema import SCHEMA_VERSION
from .results.trainrun import TrainReport, TrainRow, TrainRun
from .spawn import spawn
from .stats import summarize

PRECISIONS = ("fp32", "amp")
OPTIMIZERS = ("sgd", "adam", "adamw")


def validate(model: ModelRef, device: str, optimizer: str, precisions: Sequence[str],
             batch: int, iterations: int) -> None:
    if model.torch_builder is None or model.torch_weights is None:
        raise UsageError(f"train needs a zoo model (PyTorch architecture); '{model.name}' is an "
                         ".onnx file")
    require_device(device)
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer: unknown '{optimizer}'; valid: {', '.join(OPTIMIZERS)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise UsageError(f"--precisions: unknown '{p}'; valid: {', '.join(PRECISIONS)} "
                             "(amp: fp16 autocast + loss scaling on CUDA, bf16 on the CPU)")
    if batch < 2:
        raise UsageError("--batch must be >= 2 (batch norm needs more than one item to train)")
    if iterations < 3:
        raise UsageError("--iterations must be >= 3")


def row(precision: str, batch: int, r: TrainReport) -> TrainRow:
    if r.status != "ok" or not r.total_ns:
        return TrainRow(precision, "failed", error=r.error, report=r)
    total = summarize(r.total_ns)
    measured = r.losses[-len(r.total_ns):]
    first, last = r.losses[0], r.losses[-1]
    # Trained: the loss on the fixed batch fell from the first step to the end of the run.
    return TrainRow(precision, "ok", forward=summarize(r.forward_ns),
                    backward=summarize(r.backward_ns), update=summarize(r.update_ns),
                    total=total, images_per_s=batch * 1000.0 / total.p50_ms,
                    loss_first=first, loss_last=last,
                    trained=bool(last < first and min(measured) < first), report=r)


def train(model: ModelRef, *, device: str, batch: int, optimizer: str,
          precisions: Sequence[str], threads: int | None, warmup: int, iterations: int,
          channels_last: bool, out: Path, timeout_s: float, command: tuple[str, ...],
          machine: dict[str, object], on_row: Callable[[TrainRow], None]) -> TrainRun:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    rows = []
    for p in precisions:
        job = TrainJob(model, device, batch, optimizer, p == "amp", threads, warmup,
                       iterations, channels_last, str(out / f".train-{p}.json"))
        report = spawn("inferometer._train", job, Path(job.report_path), TrainReport, threads,
                       out / "logs" / f"train-{p}.log", timeout_s)
        rows.append(row(p, batch, report))
        on_row(rows[-1])
    ok = next((r.report for r in rows if r.status == "ok" and r.report), None)
    return TrainRun(
        schema_version=SCHEMA_VERSION, kind="train", tool_version=__version__,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), command=command,
        machine=machine,
        model=model.info(),
        device=device, device_name=ok.device_name if ok else "",
        torch_version=ok.torch_version if ok else "", batch=batch, optimizer=optimizer,
        threads=threads, channels_last=channels_last, warmup=warmup, iterations=iterations,
        rows=tuple(rows))
