"""Stored tune runs (kind "tune" in results.json): the space, every measurement as it was
taken (so a resumed search replays them instead of measuring again), each candidate's verdict
and the recommendation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .accuracyrun import PrecisionRow
from .loadrun import StepResult
from .schema import ModelInfo, RunHeader


@dataclass(frozen=True)
class Candidate:
    runtime: str
    variant: str
    precision: str
    instances: int
    threads: int | None
    max_batch: int = 1  # 1: no batching
    delay_s: float = 0.0

    @property
    def layout(self) -> str:
        return f"{self.instances}x{'auto' if self.threads is None else self.threads}"

    @property
    def group(self) -> str:
        """The probe that serves this candidate: one pool per runtime, variant, precision and
        layout."""
        return f"{self.runtime}.{self.variant}.{self.precision}.{self.layout}"

    @property
    def batching(self) -> str:
        if self.max_batch == 1:
            return "none"
        return f"max={self.max_batch},delay={self.delay_s * 1e3:g}ms"

    @property
    def id(self) -> str:
        delay = f".d{self.delay_s * 1e3:g}ms" if self.delay_s > 0 else ""
        return f"{self.group}.b{self.max_batch}{delay}"

    @property
    def is_default(self) -> bool:
        """The deployment nobody tuned: one process, the runtime's own threads, fp32, no
        batching."""
        return (self.instances == 1 and self.threads is None and self.max_batch == 1
                and self.precision == "fp32")

    def label(self) -> str:
        return (f"{self.runtime}/{self.variant} {self.precision}, {self.instances} process"
                f"{'es' if self.instances > 1 else ''} x {self.threads or 'auto'} thread"
                f"{'' if self.threads == 1 else 's'}, batching {self.batching}")


@dataclass(frozen=True)
class Probe:
    ok: bool
    error: str = ""
    service_ms: dict[str, float] = field(default_factory=dict)  # batch -> one call alone
    capacity_qps: dict[str, float] = field(default_factory=dict)  # batch -> items/s, all busy
    memory_mb: dict[str, float] = field(default_factory=dict)  # batch -> VmHWM summed
    seconds: float = 0.0
    alone_ms: tuple[float, ...] = ()  # single calls at batch 1, one after another (the tail)

    def spread(self) -> tuple[float, ...]:
        """Each alone call over their median: the host's own call-time spread, without its
        slowest 5% (so a simulation drawing from it has a lighter tail than the host: a
        bound built on it errs high, never low)."""
        if not self.alone_ms:
            return ()
        xs = sorted(self.alone_ms)
        mid = xs[len(xs) // 2]
        keep = xs[:len(xs) - max(1, math.ceil(0.05 * len(xs)))] or xs
        return tuple(x / mid for x in keep)


@dataclass(frozen=True)
class Scan:
    max_qps: float  # -1: no load tried met the SLO
    failed_qps: float | None  # the lowest load above the answer that failed (the bracket)
    p99_ms: float | None  # at the answer
    memory_mb: float
    steps: int
    seconds: float
    error: str = ""
    log: tuple[StepResult, ...] = ()  # every server step of the scan, as `scan` stores them


@dataclass(frozen=True)
class Trial:
    qps: float
    valid: bool
    p99_ms: float
    memory_mb: float
    seconds: float
    reasons: tuple[str, ...] = ()
    step: StepResult | None = None


@dataclass(frozen=True)
class Verdict:
    """What the search found for one candidate."""

    candidate: Candidate
    status: str  # recommended, runner-up, default, measured, beaten, bound, pruned, failed,
    #              not measured
    note: str = ""
    max_qps: float | None = None
    p99_ms: float | None = None
    memory_mb: float | None = None
    bound: float | None = None  # capacity (throughput) or service time (latency)


@dataclass(frozen=True)
class Measurement:
    """One call of the bench, keyed by what was asked (a replay answers the same key)."""

    key: str
    kind: str  # probe, scan or test
    candidate: str
    seconds: float
    probe: Probe | None = None
    scan: Scan | None = None
    test: Trial | None = None


@dataclass(frozen=True)
class Recommendation:
    candidate: Candidate
    max_qps: float | None  # throughput objective: under the SLO
    failed_qps: float | None  # the scan's bracket above the answer
    p99_ms: float | None
    memory_mb: float | None
    tie: bool
    why: str
    runner_up: Candidate | None = None
    runner_up_qps: float | None = None
    runner_up_p99_ms: float | None = None
    default: Candidate | None = None
    default_qps: float | None = None
    default_p99_ms: float | None = None
    accuracy: str = ""
    cost_per_million: float | None = None
    snippet: str = ""


@dataclass(frozen=True)
class TuneRun(RunHeader):
    model: ModelInfo
    objective: str
    slo_s: float | None
    percentile: float
    qps: float | None
    max_memory_mb: float | None
    max_accuracy_drop: float | None
    budget_s: float | None
    exhaustive: bool
    cost_per_hour: float | None
    arrivals: str
    space: tuple[Candidate, ...]
    measurements: tuple[Measurement, ...] = ()
    accuracy: tuple[PrecisionRow, ...] = ()
    accuracy_note: str = ""
    verdicts: tuple[Verdict, ...] = ()
    recommendation: Recommendation | None = None
    status: str = "running"  # running, done, nothing (no candidate met the goal), failed
    closest: str = ""
    measuring_s: float = 0.0  # the bench's time: probes, scans and tests
    retests: tuple[tuple[str, float, bool, float], ...] = ()
    settings: dict[str, str] = field(default_factory=dict)  # model args, to resume exactly
