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
    # dynamic batching: how many calls ran each batch size ("3": 41 calls of 3 queries)
    batch_sizes: dict[str, int] = field(default_factory=dict)
    peak_memory_mb: float | None = None  # the instances' VmHWM, summed
    errors: int = 0  # failed requests (a step with any is INVALID)
    concurrency: int | None = None  # the concurrency mode's requests in flight
    windows: int = 0  # measurement windows the concurrency mode took
    # the server's own view of the step, mean ms per request: a remote server's statistics
    # extension (queue_ms, compute_ms, request_ms, and the requests it counted), or our
    # instance pool's (queue_ms, compute_ms: the inference as the instance timed it)
    server: dict[str, float] = field(default_factory=dict)
    # said about a step without rejecting it (the issuer was late: pessimistic, not wrong)
    notes: tuple[str, ...] = ()

    def batch_text(self) -> str:
        """'1:40 2:31 3:9' (calls per batch size), and the mean batch."""
        if not self.batch_sizes:
            return ""
        calls = sum(self.batch_sizes.values())
        mean = sum(int(k) * v for k, v in self.batch_sizes.items()) / max(calls, 1)
        return (" ".join(f"{k}:{v}" for k, v in self.batch_sizes.items())
                + f" (mean batch {mean:.2f})")

    def line(self, target_label: str = "") -> str:
        """The reference's progress line: linear/0.01/129 qps=128.72, mean=..., tiles=..."""
        tiles = ",".join(f"{k}:{v:.4f}" for k, v in self.tiles_s.items())
        head = f"{self.arrivals}/{target_label or '-'}/{self.offered_qps:g}"
        verdict = "VALID" if self.valid else "INVALID (" + "; ".join(self.reasons) + ")"
        batches = f", batches={self.batch_text()}" if self.batch_sizes else ""
        if self.concurrency is not None:
            head = f"concurrency/{target_label or '-'}/{self.concurrency}"
        # a remote server's statistics (they carry its request time); our own pool's split
        # is kept in the results and tables but not put in this line, whose shape the
        # reference's tools parse
        server = (", server=" + ",".join(f"{k}:{v:g}" for k, v in self.server.items())
                  if "request_ms" in self.server else "")
        errors = f", errors={self.errors}" if self.errors else ""
        if self.notes:
            verdict += " [" + "; ".join(self.notes) + "]"
        return (f"{head} qps={self.achieved_qps:.2f}, mean={self.mean_s:.4f}, "
                f"time={self.duration_s:.2f}, queries={self.queries}, tiles={tiles}, "
                f"issue_lag_p99={self.issue_lag_p99_us:.0f}us{batches}{server}{errors} "
                f"{verdict}")


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
    batching: str = ""  # dynamic batching in the pool ("max=8,delay=2ms"), "" for none
    target: str = ""  # the remote server's URL; "" for the in-process pool
