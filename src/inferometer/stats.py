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
_CHUNK_ITEMS = 4_000_000  # resampled values held at once (bounds memory on long cells)


def _stat(values: np.ndarray, q: float | None, axis: int | None = None) -> np.ndarray:
    return values.mean(axis=axis) if q is None else np.percentile(values, q, axis=axis)


def _block(n: int) -> int:
    """Block length for the moving-block bootstrap: n^(1/3), the usual rate."""
    return max(1, round(n ** (1 / 3)))


def _resampled(x: np.ndarray, q: float | None, rng: np.random.Generator) -> np.ndarray:
    """The statistic of RESAMPLES moving-block bootstrap resamples of x.  Samples are kept in
    the order they were taken and neighbours are correlated (caches, frequency, other
    tenants); resampling runs of them keeps that, so the interval is not falsely narrow."""
    n = len(x)
    length = _block(n)
    blocks = -(-n // length)
    offsets = np.arange(length)
    out = np.empty(RESAMPLES)
    rows = max(1, _CHUNK_ITEMS // (blocks * length))
    for start in range(0, RESAMPLES, rows):
        k = min(rows, RESAMPLES - start)
        starts = rng.integers(0, n - length + 1, size=(k, blocks))
        idx = (starts[:, :, None] + offsets).reshape(k, -1)[:, :n]
        out[start:start + k] = _stat(x[idx], q, axis=1)
    return out


def bootstrap_ratio(a: Sequence[float], b: Sequence[float], q: float | None = 50.0,
                    seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """stat(b) / stat(a) and its percentile moving-block-bootstrap interval; stat is the q-th
    percentile (None: the mean).  Seeded: the same two runs always give the same interval."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) == 0 or len(xb) == 0:
        raise ValueError("bootstrap of no samples")
    rng = np.random.default_rng(seed)
    ratios = _resampled(xb, q, rng) / _resampled(xa, q, rng)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return float(_stat(xb, q) / _stat(xa, q)), float(lo), float(hi)
