"""Pure functions on raw samples (nanoseconds).  Everything stored is recomputable from the
samples files with these."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

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


def _block_resample(x: np.ndarray, m: int, rng: np.random.Generator, k: int) -> np.ndarray:
    """k moving-block bootstrap resamples of x, each m long (rows).  Samples are kept in the
    order they were taken and neighbours are correlated (caches, frequency, other tenants);
    resampling runs of them keeps that, so the interval is not falsely narrow."""
    n = len(x)
    length = min(_block(n), n)
    blocks = -(-m // length)
    starts = rng.integers(0, n - length + 1, size=(k, blocks))
    idx = (starts[:, :, None] + np.arange(length)).reshape(k, -1)[:, :m]
    return x[idx]


def _resampled(x: np.ndarray, qs: Sequence[Stat], rng: np.random.Generator,
               count: int) -> np.ndarray:
    """Each statistic (rows) of `count` moving-block bootstrap resamples of x (columns).
    One resample serves every statistic: one partition per resample."""
    n = len(x)
    out = np.empty((len(qs), count))
    rows = max(1, _CHUNK_ITEMS // n)
    for start in range(0, count, rows):
        k = min(rows, count - start)
        for i, v in enumerate(_stats(_block_resample(x, n, rng, k), qs, axis=1)):
            out[i, start:start + k] = v
    return out


# Past this many samples a process is resampled to this length in the two-level bootstrap:
# the within-process level is then a little wider than it need be (conservative), and the cost
# stays resamples x processes x 2000 whatever the cell's length.
_PROCESS_LEN = 2000


def _hierarchical(procs: Sequence[np.ndarray], qs: Sequence[Stat], rng: np.random.Generator,
                  count: int) -> np.ndarray:
    """Each statistic (rows) of `count` two-level bootstrap resamples (columns): draw as many
    processes as there are, with replacement, then a block resample inside each drawn
    process; the statistic is taken over the pooled draw, each process weighing the same.
    The process level is what carries between-run noise (memory layout, thread placement,
    clock, neighbours): a cell measured in one process cannot show it."""
    if len(procs) == 1:
        return _resampled(procs[0], qs, rng, count)
    k = len(procs)
    m = _process_len(procs)
    out = np.empty((len(qs), count))
    rows = max(1, _CHUNK_ITEMS // (k * m))
    for start in range(0, count, rows):
        r = min(rows, count - start)
        within = np.stack([_block_resample(p, m, rng, r) for p in procs])  # (k, r, m)
        pick = rng.integers(0, k, size=(r, k))
        pooled = within[pick, np.arange(r)[:, None], :].reshape(r, k * m)
        for i, v in enumerate(_stats(pooled, qs, axis=1)):
            out[i, start:start + r] = v
    return out


Processes = Sequence[Sequence[float]]


def _process_len(procs: Sequence[np.ndarray]) -> int:
    """How long each drawn process is resampled to in the two-level bootstrap."""
    return min(_PROCESS_LEN, max(len(p) for p in procs))


def _work(procs: Sequence[np.ndarray]) -> int:
    """Values one resample draws (what resamples_for budgets)."""
    if len(procs) == 1:
        return len(procs[0])
    return len(procs) * _process_len(procs)


def _interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap values at `level` (0.95: 2.5th to 97.5th)."""
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _arrays(procs: Processes) -> list[np.ndarray]:
    out = [np.asarray(p, dtype=float) for p in procs if len(p)]
    if not out:
        raise ValueError("bootstrap of no samples")
    return out


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches q% of the total (inverted CDF)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = int(np.searchsorted(cum, q / 100.0 * cum[-1] * (1 - 1e-12), side="left"))
    return float(values[order][min(i, len(values) - 1)])


def pooled_stats(procs: Processes, qs: Sequence[Stat]) -> list[float]:
    """The point estimates: each statistic over every process's samples together, each
    process weighing the same (as in the two-level bootstrap).  Weighing samples would let a
    process that happened to run fast, and so took more samples in the same time, pull the
    cell's median towards itself.  One process: the plain statistics of its samples."""
    xs = _arrays(procs)
    if len(xs) == 1:
        return [float(v) for v in _stats(xs[0], qs)]
    values = np.concatenate(xs)
    weights = np.concatenate([np.full(len(x), 1.0 / len(x)) for x in xs])
    return [float(np.mean([x.mean() for x in xs])) if q is None
            else _weighted_percentile(values, weights, q) for q in qs]


def summarize_processes(procs: Sequence[Sequence[int]]) -> Summary:
    """A cell's statistics over its processes (see pooled_stats); the median's interval is
    the caller's to fill in from the two-level bootstrap (median_interval)."""
    if len(procs) == 1:
        return summarize(procs[0])
    flat = [x for p in procs for x in p]
    base = summarize(flat)
    mean, p50, p90, p99 = pooled_stats(procs, [None, 50.0, 90.0, 99.0])
    ms = 1e-6
    return replace(base, mean_ms=mean * ms, p50_ms=p50 * ms, p90_ms=p90 * ms, p99_ms=p99 * ms)


def bootstrap_ratios(a: Processes, b: Processes, qs: Sequence[Stat], seed: int = 0,
                     level: float = 0.95) -> list[tuple[float, float, float]]:
    """For each statistic (a percentile, or None for the mean): stat(B) / stat(A) and its
    percentile interval from the two-level bootstrap, each side a list of processes (each a
    list of samples in the order taken).  Seeded: the same runs always give the same
    intervals."""
    xa, xb = _arrays(a), _arrays(b)
    rng = np.random.default_rng(seed)
    count = resamples_for(max(_work(xa), _work(xb)))
    ratios = _hierarchical(xb, qs, rng, count) / _hierarchical(xa, qs, rng, count)
    return [(sb / sa, *_interval(ratios[i], level))
            for i, (sa, sb) in enumerate(zip(pooled_stats(xa, qs), pooled_stats(xb, qs),
                                             strict=True))]


def bootstrap_ratio(a: Processes, b: Processes, q: Stat = 50.0, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float]:
    """One statistic's ratio and interval (see bootstrap_ratios)."""
    return bootstrap_ratios(a, b, [q], seed, level)[0]


def median_interval(procs: Processes, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The 95% interval of a cell's median from the two-level bootstrap (one process: the
    block bootstrap of its samples alone)."""
    xs = _arrays(procs)
    rng = np.random.default_rng(seed)
    return _interval(_hierarchical(xs, [50.0], rng, resamples_for(_work(xs)))[0], level)


def spread(values: Sequence[float]) -> float | None:
    """The between-process spread: range of the process medians over their median (0.05: the
    slowest process was 5% of the median slower than the fastest).  None for one process."""
    if len(values) < 2:
        return None
    mid = float(np.median(values))
    return (max(values) - min(values)) / mid if mid > 0 else math.inf


TWO_APART = 1.128  # how far apart two draws of a standard normal lie, on average (d2 of 2)


def between_floor(*sides: Sequence[float]) -> float | None:
    """The noise floor the runs themselves show: how far apart two identical processes
    typically lie (1.128 standard deviations), from the between-process standard deviation
    of the process medians (logs) pooled over the sides given, each about its own mean.
    A change smaller than that is not a finding.  Pooled, not the larger side's range: the
    range grows with the number of processes (the floor then rose with every process added:
    five a side hid 10% slowdowns that three found), and the larger of two ranges of three
    is itself a noisy figure.  None where no side has two processes."""
    logs = [np.log(np.asarray(v, dtype=float)) for v in sides if len(v) >= 2]
    dof = sum(len(x) - 1 for x in logs)
    if not dof:
        return None
    var = sum(float(((x - x.mean()) ** 2).sum()) for x in logs) / dof
    return math.expm1(TWO_APART * math.sqrt(var))


def process_ratio(a: Sequence[float], b: Sequence[float], seed: int = 0,
                  level: float = 0.95, count: int = RESAMPLES) -> tuple[float, float]:
    """The interval of mean(B)/mean(A) over process-level figures alone (each a process's
    median): the bootstrap's upper level, for when only stored per-process summaries are at
    hand (the fastest line).  One value a side gives no interval: (0, inf)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) < 2 or len(xb) < 2:
        return 0.0, math.inf
    rng = np.random.default_rng(seed)
    ra = xa[rng.integers(0, len(xa), (count, len(xa)))].mean(axis=1)
    rb = xb[rng.integers(0, len(xb), (count, len(xb)))].mean(axis=1)
    return _interval(rb / ra, level)


ALPHA = 0.05  # the level of every process-level test


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-14
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df (not necessarily whole) degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betai(df / 2.0, 0.5, df / (df + t * t))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test on the logs of per-process figures (each a
    process's median, say), or None with fewer than two a side.  With three processes a
    side the bootstrap has few distinct draws and its interval is too narrow (it covered an
    identical rerun in 87% of simulated cases); the t distribution with Welch's degrees of
    freedom (2 to 4 here) pays for the few processes, and a side whose processes disagree
    widens it as it should.  Logs: the question is a ratio."""
    if len(a) < 2 or len(b) < 2 or min(*a, *b) <= 0:
        return None
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
    diff = abs(float(lb.mean() - la.mean()))
    if va + vb == 0.0:  # every process alike on both sides: any difference is systematic
        return 1.0 if diff == 0.0 else 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
    return t_two_sided(diff / math.sqrt(va + vb), df)


def significant(ratio: float, low: float | None, high: float | None, floor: float,
                p: float | None = None) -> bool:
    """The verdict rule every "faster", "slower", "fastest" and "regression" rests on: the
    ratio's 95% interval excludes 1, the ratio is further from 1 than the noise floor
    (the larger of a fixed floor and the between-process spread the runs themselves show),
    *and*, where each side has several processes, Welch's test on the process figures
    (`p`, welch_p) rejects "no change" at ALPHA.  A figure with no interval (one value a
    side) is called on the floor alone."""
    if abs(ratio - 1.0) <= floor:
        return False
    if p is not None and p >= ALPHA:
        return False
    if low is None or high is None:  # one value a side (a memory figure): the floor decides
        return True
    return not low <= 1.0 <= high
