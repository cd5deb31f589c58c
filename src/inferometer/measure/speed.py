"""How fast the machine is right now: fixed pieces of work, timed before every worker process.

On a shared host the whole machine speeds up and slows down by tens of percent over minutes
(neighbours, frequency): two runs taken minutes apart differ by that much with nothing changed,
and no resampling of either run can see it.  The runner times these probes in the orchestrator
before each worker starts (no runtime thread is spinning there), and compare uses them:

- `gemm_ms`: one single-thread float32 matrix product (512 x 512, 1 MB a matrix), the kind of
  work a CPU inference runtime spends its time in.  Over nine minutes of a drifting host its
  20-second medians followed ONNX Runtime's ResNet-50 latency with a correlation of 0.99-1.00
  and a slope of 0.91-0.95 (1 and 2 threads; docs/decisions.md), so compare divides a
  between-run ratio by the machine's own.
- `loop_ms`: a pure-Python loop, the first probe.  It followed the same drift with a slope of
  0.8 in that run, and by a quarter of it in another, so it only ever raised the noise floor;
  it is still taken so that runs made before the matrix probe compare with new ones the old
  way."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_LOOP = 30_000  # ~3 ms on a current core
_REPS = 15  # the median of many short timings shrugs off a preemption
_GEMM_N = 512  # ~1.6 ms single-threaded here; 3 MB of operands, beyond most L2 caches
_GEMM_REPS = 15


@dataclass(frozen=True)
class Speed:
    """The machine's speed before one process (ms of fixed work; higher: a slower machine)."""

    loop_ms: float
    gemm_ms: float | None = None  # None where no BLAS thread limit could be set


def _work(n: int) -> int:
    k = 0
    for i in range(n):
        k += i ^ (k & 7)
    return k


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def loop_probe(reps: int = _REPS, n: int = _LOOP) -> float:
    """Median milliseconds of `reps` timings of the fixed Python loop."""
    return _median_ms(lambda: _work(n), reps)


def gemm_probe(reps: int = _GEMM_REPS, n: int = _GEMM_N) -> float | None:
    """Median milliseconds of one n x n float32 matrix product on one BLAS thread (one thread:
    a probe that spread over every core would measure the cores it found idle)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    with threadpool_limits(limits=1, user_api="blas") as limits:
        if not limits.get_original_num_threads().get("blas"):
            return None  # numpy without a BLAS we can hold to one thread: not comparable
        a @ a  # the first product pages in the operands and the kernel
        return _median_ms(lambda: a @ a, reps)


def speed_probe() -> Speed:
    return Speed(loop_probe(), gemm_probe())
