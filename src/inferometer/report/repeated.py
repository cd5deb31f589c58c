"""Figures a run measures once (a load step's throughput and percentiles, a scan's max QPS),
compared across runs.  Each run is one draw of the between-run noise, as each of pyperf's
processes is, so with several runs a side the process-level rule of every speed verdict
(stats.significant) calls a difference.  With one run a side nothing shows how far an
identical rerun moves, and no difference is called: two identical load tests against one
server here gave p99s of 52.9 and 35.7 ms (docs/decisions.md), which a fixed resolution
called "better"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..stats import between_floor, process_ratio, significant, welch_p

# A concurrency step is stable within 10% (its windows), a scan bisects to 10%: no run can
# tell a smaller difference, however many runs agree.
RESOLUTION = 0.10
UNTESTED = "not tested: one run a side"
NO_CHANGE = "no change beyond noise"


@dataclass(frozen=True)
class Called:
    ratio: float  # B/A of the runs' means
    low: float | None  # its 95% interval over the runs; None with one run a side
    high: float | None
    word: str


def call(a: Sequence[float], b: Sequence[float], higher_is_better: bool,
         words: tuple[str, str] = ("better in B", "worse in B"),
         resolution: float = RESOLUTION) -> Called:
    """B against A, each a run's figure: the ratio, its interval and the word for it."""
    ratio = (sum(b) / len(b)) / (sum(a) / len(a))
    if len(a) < 2 or len(b) < 2:
        return Called(ratio, None, None, UNTESTED)
    low, high = process_ratio(a, b)
    floor = max(resolution, between_floor(a, b) or 0.0)
    if not significant(ratio, low, high, floor, welch_p(a, b)):
        return Called(ratio, low, high, NO_CHANGE)
    better = ratio > 1 if higher_is_better else ratio < 1
    return Called(ratio, low, high, words[0] if better else words[1])


def interval_text(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"


def rule_text(runs_a: int, runs_b: int, what: str = "run", repeat: bool = True) -> str:
    """The footnote that says how the differences were called (`repeat`: say how to get a
    tested verdict)."""
    if min(runs_a, runs_b) < 2:
        return (f"one {what} a side cannot show how far an identical rerun moves (a p99 from "
                f"a few hundred queries can move by a third): no difference is called"
                + ("; repeat each side, A and B runs taking turns (a host drifts): "
                   "`--target A,B --repeat 3` for two servers, or compare runs made by hand "
                   "as A1,A2,A3 B1,B2,B3" if repeat else ""))
    return (f"{runs_a} vs {runs_b} {what}s: a difference is called when the 95% interval of "
            f"B/A over the {what}s excludes 1, Welch's test on the {what}s' figures gives "
            f"p < 0.05, and it exceeds the larger of {RESOLUTION:.0%} (a step's stability, a "
            f"scan's bisection) and how far apart identical {what}s lie")
