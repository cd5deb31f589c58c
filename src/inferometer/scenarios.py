"""Scenarios: the loops that own timing.  Runtimes only run; the clock lives here.

The single-stream loop issues the next query when the previous one completes, and runs until
a minimum duration *and* a minimum count are met, then stops as soon as the median's 95% CI is
tight enough, or at the maximum time.  The clock is injectable so the rule is testable with a
fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .stats import rel_ci_halfwidth

Clock = Callable[[], int]


@dataclass(frozen=True)
class RunLength:
    """How long a cell runs.  Defaults suit a 2-core machine: ~2-10 s per cell."""

    warmup: int = 3            # steady-state warm-up iterations after the first (cold) call
    # ... ended early once they have run this long (at least one): a call of seconds is
    # warm after one, and two more of TVM's untuned 3.7 s cost a cell 25 s (0: no limit)
    warmup_max_s: float = 0.0
    min_time_s: float = 2.0
    min_count: int = 10
    max_time_s: float = 10.0
    max_count: int = 1_000_000
    target_rel_ci: float = 0.01  # stop when the median's 95% CI half-width is within +-1%

    def __post_init__(self) -> None:
        if self.min_time_s < 0 or self.max_time_s < self.min_time_s:
            raise ValueError("need 0 <= min_time_s <= max_time_s")
        if self.min_count < 1 or self.max_count < self.min_count:
            raise ValueError("need 1 <= min_count <= max_count")
        if self.warmup < 0 or self.warmup_max_s < 0 or self.target_rel_ci <= 0:
            raise ValueError("warmup and warmup_max_s must be >= 0 and target_rel_ci > 0")


@dataclass(frozen=True)
class LoopResult:
    samples_ns: tuple[int, ...]
    stop_reason: str  # "converged", "max_time" or "max_count"
    elapsed_ns: int


def single_stream(call: Callable[[], object], length: RunLength,
                  clock: Clock = time.perf_counter_ns) -> LoopResult:
    """Time `call` back to back.  The CI check sorts the samples, so it runs only every ~1/8
    growth of the sample count: its cost stays O(log n) amortised and out of the timed region."""
    samples: list[int] = []
    append = samples.append
    min_ns = int(length.min_time_s * 1e9)
    max_ns = int(length.max_time_s * 1e9)
    next_check = length.min_count
    start = clock()
    while True:
        t0 = clock()
        call()
        t1 = clock()
        append(t1 - t0)
        n = len(samples)
        elapsed = t1 - start
        if n >= length.max_count:
            return LoopResult(tuple(samples), "max_count", elapsed)
        if elapsed >= max_ns and n >= length.min_count:
            return LoopResult(tuple(samples), "max_time", elapsed)
        if n >= next_check and elapsed >= min_ns:
            if rel_ci_halfwidth(sorted(samples)) <= length.target_rel_ci:
                return LoopResult(tuple(samples), "converged", elapsed)
            next_check = n + max(5, n // 8)
