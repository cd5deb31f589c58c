"""Training-step runs (kind "train" in results.json): one row per precision, each from its own
worker process, raw per-iteration times kept and statistics derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from ..stats import Summary
from .schema import ModelInfo, RunHeader


@dataclass(frozen=True)
class TrainReport:
    status: str
    error: str | None = None
    torch_version: str = ""
    device_name: str = ""
    forward_ns: tuple[int, ...] = ()
    backward_ns: tuple[int, ...] = ()
    update_ns: tuple[int, ...] = ()
    total_ns: tuple[int, ...] = ()  # host wall time per iteration, phases included
    losses: tuple[float, ...] = ()  # warm-up then measured iterations, same fixed batch
    num_threads: int = 0
    peak_rss_mb: float | None = None
    gpu_peak_allocated_mb: float | None = None
    gpu_peak_reserved_mb: float | None = None


@dataclass(frozen=True)
class TrainRow:
    precision: str  # "fp32" or "amp"
    status: str
    error: str | None = None
    forward: Summary | None = None
    backward: Summary | None = None
    update: Summary | None = None
    total: Summary | None = None
    images_per_s: float | None = None  # batch / median total
    loss_first: float | None = None
    loss_last: float | None = None
    trained: bool | None = None  # the loss went down over the run
    report: TrainReport | None = None  # raw values


@dataclass(frozen=True)
class TrainRun(RunHeader):
    model: ModelInfo
    device: str
    device_name: str
    torch_version: str
    batch: int
    optimizer: str
    threads: int | None
    channels_last: bool
    warmup: int
    iterations: int
    rows: tuple[TrainRow, ...]
