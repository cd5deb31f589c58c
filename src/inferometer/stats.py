"""Pure functions on raw samples (nanoseconds).  Everything stored is recomputable from the
samples files with these."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_Z95 = 1.959963984540054


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside [0, 100]")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def median_ci(sorted_values: Sequence[float], z: float = _Z95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The rank of the sample median is binomial(n, 1/2); its normal approximation gives the ranks
    n/2 -/+ z*sqrt(n)/2.  Latency samples are skewed and autocorrelated-ish, so a CI that assumes
    nothing about their distribution is the honest choice.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("median CI of no samples")
    half = z * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2.0 + half) - 1)
    if n < 6:  # too few for the approximation: the whole range is the honest interval
        lo, hi = 0, n - 1
    return float(sorted_values[lo]), float(sorted_values[hi])


def rel_ci_halfwidth(sorted_values: Sequence[float]) -> float:
    """Half-width of the median's 95% CI relative to the median (0.01 = +-1%)."""
    lo, hi = median_ci(sorted_values)
    med = percentile(sorted_values, 50)
    return math.inf if med <= 0 else (hi - lo) / 2.0 / med


@dataclass(frozen=True)
class Summary:
    """Statistics of one cell's steady-state samples, in milliseconds."""

    count: int
    mean_ms: float
    stdev_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    median_ci_low_ms: float
    median_ci_high_ms: float

    @property
    def rel_ci(self) -> float:
        return (self.median_ci_high_ms - self.median_ci_low_ms) / 2.0 / self.p50_ms


def summarize(samples_ns: Sequence[int]) -> Summary:
    s = sorted(samples_ns)
    n = len(s)
    if n == 0:
        raise ValueError("no samples to summarize")
    mean = sum(s) / n
    var = sum((x - mean) ** 2 for x in s) / (n - 1) if n > 1 else 0.0
    lo, hi = median_ci(s)
    ms = 1e-6
    return Summary(count=n, mean_ms=mean * ms, stdev_ms=math.sqrt(var) * ms, min_ms=s[0] * ms,
                   p50_ms=percentile(s, 50) * ms, p90_ms=percentile(s, 90) * ms,
                   p99_ms=percentile(s, 99) * ms, max_ms=s[-1] * ms,
                   median_ci_low_ms=lo * ms, median_ci_high_ms=hi * ms)


def throughput(summary: Summary, batch: int) -> float:
    """Items per second at the median latency (single stream: one batch in flight)."""
    return batch * 1000.0 / summary.p50_ms


# -- comparing two sample sets --------------------------------------------------------------------
RESAMPLES = 2000
_MIN_RESAMPLES = 500
_WORK = 40_000_000  # resampled values per sample set; fewer resamples for very long cells
_CHUNK_ITEMS = 4_000_000  # resampled values held at once (bounds memory on long cells)

Stat = float | None  # a percentile in [0, 100], or None for the mean


def _stats(values: np.ndarray, qs: Sequence[Stat], axis: int | None = None) -> list[np.ndarray]:
    pct = [q for q in qs if q is not None]
    by_q = dict(zip(pct, np.percentile(values, pct, axis=axis), strict=True)) if pct else {}
    return [values.mean(axis=axis) if q is None else by_q[q] for q in qs]


def _block(n: int) -> int:
    """Block length for the moving-block bootstrap: n^(1/3), the usual rate."""
    return max(1, round(n ** (1 / 3)))


def resamples_for(n: int) -> int:
    """2000 resamples, fewer (at least 500) past 20,000 samples: at that n the interval is
    narrow and the cost (resamples x n) would make comparing a long run take minutes."""
    return max(_MIN_RESAMPLES, min(RESAMPLES, _WORK // max(n, 1)))


def _resampled(x: np.ndarray, qs: Sequence[Stat], rng: np.random.Generator,
               count: int) -> np.ndarray:
    """Each statistic (rows) of `count` moving-block bootstrap resamples of x (columns).
    Samples are kept in the order they were taken and neighbours are correlated (caches,
    frequency, other tenants); resampling runs of them keeps that, so the interval is not
    falsely narrow.  One resample serves every statistic: one partition per resample."""
    n = len(x)
    length = _block(n)
    blocks = -(-n // length)
    offsets = np.arange(length)
    out = np.empty((len(qs), count))
    rows = max(1, _CHUNK_ITEMS // (blocks * length))
    for start in range(0, count, rows):
        k = min(rows, count - start)
        starts = rng.integers(0, n - length + 1, size=(k, blocks))
        idx = (starts[:, :, None] + offsets).reshape(k, -1)[:, :n]
        for i, v in enumerate(_stats(x[idx], qs, axis=1)):
            out[i, start:start + k] = v
    return out


def bootstrap_ratios(a: Sequence[float], b: Sequence[float], qs: Sequence[Stat],
                     seed: int = 0, level: float = 0.95) -> list[tuple[float, float, float]]:
    """For each statistic (a percentile, or None for the mean): stat(b) / stat(a) and its
    percentile moving-block-bootstrap interval.  Seeded: the same two runs always give the
    same intervals."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) == 0 or len(xb) == 0:
        raise ValueError("bootstrap of no samples")
    rng = np.random.default_rng(seed)
    count = resamples_for(max(len(xa), len(xb)))
    ratios = _resampled(xb, qs, rng, count) / _resampled(xa, qs, rng, count)
    tail = (1.0 - level) / 2.0 * 100.0
    out = []
    for i, (sa, sb) in enumerate(zip(_stats(xa, qs), _stats(xb, qs), strict=True)):
        lo, hi = np.percentile(ratios[i], [tail, 100.0 - tail])
        out.append((float(sb / sa), float(lo), float(hi)))
    return out


def bootstrap_ratio(a: Sequence[float], b: Sequence[float], q: Stat = 50.0,
                    seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """One statistic's ratio and interval (see bootstrap_ratios)."""
    return bootstrap_ratios(a, b, [q], seed, level)[0]
