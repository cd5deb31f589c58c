"""How fast the machine is right now: a fixed piece of pure-Python work, timed.

On a shared host the whole machine speeds up and slows down by tens of percent over minutes
(neighbours, frequency): a ResNet-50 on one thread went from 83 to 57 ms in two and a half
minutes here while this loop went from 12.0 to 7.1 ms in step with it.  Two runs taken at
different times can differ by that much with nothing changed, and no resampling of either run
can see it.  The runner times this probe in the orchestrator before each worker starts (no
runtime threads are spinning there), and compare refuses to call a change smaller than the
difference in machine speed between the two runs."""

from __future__ import annotations

import statistics
import time

_LOOP = 30_000  # ~3 ms on a current core
_REPS = 15  # the median of many short timings shrugs off a preemption


def _work(n: int) -> int:
    k = 0
    for i in range(n):
        k += i ^ (k & 7)
    return k


def speed_probe(reps: int = _REPS, n: int = _LOOP) -> float:
    """Median milliseconds of `reps` timings of the fixed loop (higher: a slower machine)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        _work(n)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)
