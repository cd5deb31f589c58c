"""Arrival schedules and the statistics that decide whether a load test counts.  Pure."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

ARRIVALS = ("linear", "exponential")  # the reference's names: evenly spaced, Poisson


def schedule(n: int, qps: float, arrivals: str, seed: int = 0) -> list[int]:
    """Issue offsets (ns from the test start) of n queries at `qps`.

    linear: evenly spaced, 1/qps apart.  exponential: a Poisson process (exponential gaps)
    from a seeded generator, so a test is repeatable, with exactly qps on average."""
    if qps <= 0 or n <= 0:
        raise ValueError("need qps > 0 and n > 0")
    gap = 1e9 / qps
    if arrivals == "linear":
        return [round(i * gap) for i in range(n)]
    if arrivals == "exponential":
        # n + 1 exponential gaps rescaled so the n arrivals fill exactly n/qps: a Poisson
        # process conditioned on its count (still Poisson-distributed in time), so the
        # offered load is what was asked, not a few percent off at random.
        rng = random.Random(seed)
        gaps = [rng.expovariate(1.0) for _ in range(n + 1)]
        scale = n * gap / sum(gaps)
        t, out = 0.0, []
        for g in gaps[:n]:
            out.append(round(t))
            t += g * scale
        return out
    raise ValueError(f"unknown arrivals '{arrivals}'; valid: {', '.join(ARRIVALS)}")


def min_queries(percentile: float, confidence: float = 0.99) -> int:
    """Fewest queries for which `percentile` can be claimed at `confidence` when no query is
    over the bound (LoadGen's early-stopping rule with zero overlatency queries): the
    probability that all n fall under the true p-th percentile is (p/100)^n."""
    p = percentile / 100.0
    if not 0 < p < 1:
        raise ValueError("percentile must be in (0, 100)")
    return math.ceil(math.log(1.0 - confidence) / math.log(p))


TILES = (50.0, 80.0, 90.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()  # worth saying, but not a reason to reject the step


def judge(latencies_ns: Sequence[int], issue_lag_ns: Sequence[int], *, target_ns: int | None,
          percentile: float, needed: int, max_issue_lag_ns: int, aborted: str | None) -> Verdict:
    """VALID only with enough queries, the percentile under the target and no abort.  A late
    issuer is a note, not a reason: latency counts from the scheduled instant, so its lag is
    inside every latency and can only make the step look worse, never hide an over-target
    query.  Rejecting such steps made a busy host fail every step of a scan it could carry."""
    from ..stats import percentile as pct

    reasons = []
    if aborted:
        reasons.append(aborted)
    if len(latencies_ns) < needed:
        reasons.append(f"too few queries: {len(latencies_ns)} < {needed} needed for "
                       f"p{percentile:g} at 99% confidence")
    if latencies_ns and target_ns is not None:
        p = pct(sorted(latencies_ns), percentile)
        if p > target_ns:
            reasons.append(f"p{percentile:g} {p / 1e6:.2f} ms over target {target_ns / 1e6:g} ms")
    notes = []
    if issue_lag_ns:
        lag = pct(sorted(issue_lag_ns), 99)
        if lag > max_issue_lag_ns:
            notes.append(f"issue lag p99 {lag / 1e3:.0f} us over {max_issue_lag_ns / 1e3:.0f} us:"
                         " the load generator was late, which counts against the system")
    return Verdict(not reasons, tuple(reasons), tuple(notes))
