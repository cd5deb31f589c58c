"""The job a worker receives.  Crosses the process boundary as JSON (pyperf's lesson: config
in, raw values out), so it holds only plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from .models.ref import ModelRef
from .results.schema import CellSpec
from .scenarios import RunLength


@dataclass(frozen=True)
class Job:
    spec: CellSpec
    model: ModelRef
    length: RunLength
    preprocess_timed: bool
    pin: bool
    report_path: str
    outputs_path: str | None  # where to save the first output on the fixed inputs
    # "measure"; "reference": outputs for integrity, time nothing; "convert": run the
    # runtime's model conversion (cached) and nothing else; "accuracy": outputs on a dataset
    mode: str = "measure"
    dataset_path: str | None = None  # "accuracy" mode: uint8 NHWC .npy to run through


@dataclass(frozen=True)
class TrainJob:
    model: ModelRef
    device: str  # "cpu" or "cuda"
    batch: int
    optimizer: str  # "sgd", "adam" or "adamw"
    amp: bool  # fp16 autocast + loss scaling on CUDA, bf16 autocast on the CPU
    threads: int | None
    warmup: int
    iterations: int
    channels_last: bool
    report_path: str
