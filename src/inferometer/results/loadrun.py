"""Stored results of load tests and scans (kind "loadtest" / "scan" in results.json)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import ModelInfo, RunHeader


@dataclass(frozen=True)
class StepResult:
    """One load test at one offered load."""

    scenario: str  # "server" or "offline"
    arrivals: str
    offered_qps: float
    achieved_qps: float
    queries: int
    duration_s: float
    mean_s: float
    tiles_s: dict[str, float]  # percentile -> latency (s), the reference's "tiles"
    issue_lag_p99_us: float
    target_s: float | None
    valid: bool
    reasons: tuple[str, ...]

    def line(self, target_label: str = "") -> str:
        """The reference's progress line: linear/0.01/129 qps=128.72, mean=..., tiles=..."""
        tiles = ",".join(f"{k}:{v:.4f}" for k, v in self.tiles_s.items())
        head = f"{self.arrivals}/{target_label or '-'}/{self.offered_qps:g}"
        verdict = "VALID" if self.valid else "INVALID (" + "; ".join(self.reasons) + ")"
        return (f"{head} qps={self.achieved_qps:.2f}, mean={self.mean_s:.4f}, "
                f"time={self.duration_s:.2f}, queries={self.queries}, tiles={tiles}, "
                f"issue_lag_p99={self.issue_lag_p99_us:.0f}us {verdict}")


@dataclass(frozen=True)
class LoadStep:
    config: str  # "INSTANCESxTHREADS"
    step: StepResult


@dataclass(frozen=True)
class LoadRun(RunHeader):
    model: ModelInfo
    runtime: str
    runtime_version: str
    variant: str
    engine: str
    check_accuracy: str
    # config -> arrivals -> target (s) -> max QPS meeting it (-1: none)
    results: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    scan: tuple[LoadStep, ...] = ()
    percentile: float = 99.0  # the latency percentile the targets bound
