"""The best a candidate could do under open-loop load: its N instances simulated as servers
that never slow each other, each call taking its batch size's measured alone time times a
factor drawn from the measured spread of alone calls (this host's own tail: a 35 ms call
here has a p99 near 100 ms with nothing else running), fed by the same arrival process
through the same dynamic-batching rule; the largest QPS whose simulated p-th percentile meets
the SLO.

Co-running instances slow each other under load and, for a FIFO queue, longer or more
variable service only lengthens the wait, so the real answer lies below this one: an upper
bound for the search (with a noise margin on top), and a far tighter one than closed-loop
capacity, which ignores queueing and the tail altogether.  Pure and fast (milliseconds)."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence

from ..loadgen.arrivals import schedule

_QUERIES = 4000
_FLOOR_QPS = 0.01  # below this a bound is 0: no test could run at it


def service_of(service_ms: Mapping[int, float], size: int) -> float:
    """A batch's time from the measured sizes: linear between them, and beyond the largest
    measured one, per item at the largest's rate."""
    sizes = sorted(service_ms)
    if size in service_ms:
        return service_ms[size]
    lo = max((s for s in sizes if s < size), default=sizes[0])
    hi = min((s for s in sizes if s > size), default=None)
    if hi is None:
        return service_ms[lo] * size / lo
    f = (size - lo) / (hi - lo)
    return service_ms[lo] + f * (service_ms[hi] - service_ms[lo])


def simulated_latencies(qps: float, instances: int, service_ms: Mapping[int, float],
                        max_batch: int = 1, delay_ms: float = 0.0,
                        arrivals: str = "exponential", n: int = _QUERIES,
                        seed: int = 0, spread: Sequence[float] = ()) -> list[float]:
    """Each query's latency (ms, from its arrival) through N ideal servers sharing one FIFO
    queue, batching as the pool does: a free server takes the oldest query and those queued
    behind it up to `max_batch`, holding a short batch open until the oldest waited
    `delay_ms`.  `spread`: factors (alone call / median alone call) each call's time is
    multiplied by, drawn at random (seeded); none: every call takes exactly its time."""
    a = [t / 1e6 for t in schedule(n, qps, arrivals, seed)]
    rng = random.Random(seed + 1)
    factors = list(spread) or [1.0]
    free = [0.0] * instances
    heapq.heapify(free)
    lat = [0.0] * n
    i = 0
    while i < n:
        start = max(heapq.heappop(free), a[i])
        j = i + 1
        while j < n and j - i < max_batch and a[j] <= start:
            j += 1
        if j - i < max_batch and delay_ms > 0 and a[i] + delay_ms > start:
            deadline = a[i] + delay_ms
            while j < n and j - i < max_batch and a[j] <= deadline:
                j += 1
            start = a[j - 1] if j - i == max_batch else deadline
        done = start + service_of(service_ms, j - i) * rng.choice(factors)
        for k in range(i, j):
            lat[k] = done - a[k]
        heapq.heappush(free, done)
        i = j
    return lat


def simulated_p99(qps: float, percentile: float, instances: int,
                  service_ms: Mapping[int, float], max_batch: int = 1, delay_ms: float = 0.0,
                  arrivals: str = "exponential", n: int = _QUERIES,
                  spread: Sequence[float] = ()) -> float:
    lat = sorted(simulated_latencies(qps, instances, service_ms, max_batch, delay_ms,
                                     arrivals, n, spread=spread))
    return lat[min(len(lat) - 1, math.ceil(percentile / 100 * len(lat)) - 1)]


def bound_qps(slo_ms: float, percentile: float, instances: int,
              service_ms: Mapping[int, float], max_batch: int = 1, delay_ms: float = 0.0,
              arrivals: str = "exponential", n: int = _QUERIES,
              spread: Sequence[float] = (), precision: float = 0.02) -> float:
    """The largest QPS whose simulated percentile meets `slo_ms` (0 when even one query alone
    does not)."""
    def p(q: float) -> float:
        return simulated_p99(q, percentile, instances, service_ms, max_batch, delay_ms,
                             arrivals, n, spread)

    one = service_of(service_ms, 1)
    if one > slo_ms:
        return 0.0
    cap = max(b / service_of(service_ms, b) for b in range(1, max_batch + 1)) \
        * instances * 1e3
    lo, hi = 0.0, cap
    while (hi - lo) / hi > precision and hi > _FLOOR_QPS:  # nothing met: hi shrinks to 0
        mid = (lo + hi) / 2
        if p(mid) <= slo_ms:
            lo = mid
        else:
            hi = mid
    return lo
