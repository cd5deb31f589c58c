"""Stored accuracy runs (kind "accuracy" in results.json): the precision table."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ModelInfo, RunHeader


@dataclass(frozen=True)
class PrecisionRow:
    runtime: str
    precision: str
    variant: str
    status: str  # "ok", "failed" or "n/a"
    note: str = ""
    top1: float | None = None
    delta_top1: float | None = None  # vs this runtime's fp32 (percentage points)
    differ_from_reference: int | None = None  # predictions unlike the reference fp32's
    max_abs_diff: float | None = None  # logits vs the reference fp32
    p50_ms: float | None = None  # per batch
    speedup: float | None = None  # vs this runtime's fp32
    flagged: bool = False  # top-1 dropped more than the bound
    # without labels: agreement with the fp32 reference ("argmax %" or "min cosine")
    agreement: float | None = None
    agreement_kind: str = ""


@dataclass(frozen=True)
class AccuracyRun(RunHeader):
    model: ModelInfo
    dataset: str
    dataset_note: str
    items: int
    batch: int
    threads: int | None
    reference: str
    max_drop: float
    rows: tuple[PrecisionRow, ...]
    device: str = "cpu"  # where the rows ran (the reference runs on the CPU)
