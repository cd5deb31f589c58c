import math
import random
import statistics
from collections.abc import Callable

import numpy as np
import pytest

from inferometer.stats import median_ci, percentile, rel_ci_halfwidth, summarize, throughput


def test_percentile_matches_numpy_linear_interpolation() -> None:
    rng = random.Random(1)
    values = sorted(rng.lognormvariate(0, 0.5) for _ in range(101))
    for q in (0, 1, 10, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_ci_covers_true_median_about_95_percent() -> None:
    rng = random.Random(7)
    true_median = 1.0  # lognormal(0, s) has median e^0
    trials, hits = 400, 0
    for _ in range(trials):
        xs = sorted(rng.lognormvariate(0, 0.3) for _ in range(60))
        lo, hi = median_ci(xs)
        hits += lo <= true_median <= hi
    assert 0.90 <= hits / trials <= 0.99


def test_median_ci_narrows_with_more_samples() -> None:
    rng = random.Random(3)
    small = sorted(rng.gauss(10, 1) for _ in range(20))
    large = sorted(rng.gauss(10, 1) for _ in range(2000))
    assert rel_ci_halfwidth(large) < rel_ci_halfwidth(small) / 4


def test_summarize_in_ms() -> None:
    ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    s = summarize(ns)
    assert s.count == 5
    assert s.mean_ms == pytest.approx(3.0)
    assert s.p50_ms == pytest.approx(3.0)
    assert s.min_ms == 1.0 and s.max_ms == 5.0
    assert s.stdev_ms == pytest.approx(statistics.stdev([1, 2, 3, 4, 5]))
    assert s.median_ci_low_ms <= s.p50_ms <= s.median_ci_high_ms
    assert throughput(s, batch=8) == pytest.approx(8 * 1000 / 3.0)


def test_bootstrap_work_is_bounded_for_long_cells() -> None:
    from inferometer.stats import resamples_for

    assert resamples_for(100) == 2000 and resamples_for(20_000) == 2000
    assert resamples_for(80_000) == 500 and resamples_for(10**7) == 500


def test_one_resampling_serves_every_statistic() -> None:
    import numpy as np

    from inferometer.stats import bootstrap_ratio, bootstrap_ratios

    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, 300), rng.normal(11, 1, 300)
    many = bootstrap_ratios([a], [b], [50.0, 99.0, None])
    assert many[0] == bootstrap_ratio([a], [b], 50.0)  # the same seed, the same resamples
    assert many[2][0] == pytest.approx(b.mean() / a.mean())
    assert all(lo <= r <= hi for r, lo, hi in many)


def _cell_run(rng: np.random.Generator, mu: float, k: int = 3, between: float = 0.05,
              within: float = 0.01, n: int = 100) -> list[list[float]]:
    """One run of a cell: k processes, each centred on its own draw around mu (the
    between-process variance), with small jitter inside."""
    return [list(mu * (1 + between * rng.standard_normal())
                 * (1 + within * rng.standard_normal(n))) for _ in range(k)]


def _flat(procs: list[list[float]]) -> list[float]:
    return [x for p in procs for x in p]


def test_the_two_level_interval_covers_an_identical_rerun() -> None:
    """Two runs of the same configuration whose processes differ by ~5% each: the ratio's
    interval must include 1 most of the time.  Pooling the samples as if they came from one
    process (the between-process level dropped) excludes 1 most of the time: this test fails
    if the process level is lost."""
    from inferometer.stats import bootstrap_ratio

    rng = np.random.default_rng(0)
    trials, two_level, flat = 40, 0, 0
    for i in range(trials):
        a, b = _cell_run(rng, 10.0), _cell_run(rng, 10.0)
        _, lo, hi = bootstrap_ratio(a, b, seed=i)
        two_level += lo <= 1.0 <= hi
        _, lo, hi = bootstrap_ratio([_flat(a)], [_flat(b)], seed=i)
        flat += lo <= 1.0 <= hi
    assert two_level / trials >= 0.75
    assert flat / trials <= 0.4


def test_the_median_interval_widens_with_between_process_variance() -> None:
    from inferometer.stats import median_interval

    rng = np.random.default_rng(1)
    tight = _cell_run(rng, 10.0, between=0.002)
    loose = _cell_run(rng, 10.0, between=0.08)
    lo_t, hi_t = median_interval(tight)
    lo_l, hi_l = median_interval(loose)
    assert hi_l - lo_l > 4 * (hi_t - lo_t)
    assert lo_l <= float(np.median(_flat(loose))) <= hi_l


def test_spread_and_the_verdict_rule() -> None:
    from inferometer.stats import significant, spread

    assert spread([10.0]) is None
    assert spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    assert significant(1.10, 1.05, 1.15, floor=0.02)
    assert not significant(1.10, 0.98, 1.15, floor=0.02)  # the interval includes 1
    assert not significant(1.10, 1.05, 1.15, floor=0.12)  # within the spread of the processes
    assert significant(1.30, None, None, floor=0.10)  # no interval: the floor decides
    assert not significant(1.05, None, None, floor=0.10)


def test_the_floor_is_how_far_apart_identical_processes_lie_whatever_their_number() -> None:
    """A known between-process noise (2.5%, the standard deviation of the process medians
    measured on the 2-core host): the floor is about 1.13 of it with three processes a side
    and with five, where the larger side's range (the old floor) grew by a third."""
    from inferometer.stats import between_floor, spread

    assert between_floor([10.0], [11.0]) is None  # no side shows a between-process level
    assert between_floor([10.0, 10.0], [12.0, 12.0, 12.0]) == 0.0
    a = [10.0, 10.5, 9.6]
    # each side about its own mean: a change between the sides is not noise
    assert between_floor(a, [x * 1.3 for x in a]) == pytest.approx(between_floor(a, a))
    rng = np.random.default_rng(3)

    def draws(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(100 * np.exp(0.025 * rng.standard_normal(n)),
                 100 * np.exp(0.025 * rng.standard_normal(n))) for _ in range(2000)]

    d3, d5 = draws(3), draws(5)
    f3 = float(np.mean([between_floor(x, y) for x, y in d3]))
    f5 = float(np.mean([between_floor(x, y) for x, y in d5]))
    assert 0.024 < f3 < 0.031 and 0.024 < f5 < 0.031 and abs(f5 / f3 - 1) < 0.06
    r3 = float(np.mean([max(spread(list(x)), spread(list(y))) for x, y in d3]))  # type: ignore[type-var]
    r5 = float(np.mean([max(spread(list(x)), spread(list(y))) for x, y in d5]))  # type: ignore[type-var]
    assert r5 / r3 > 1.25


def test_process_ratio_is_the_process_level_interval() -> None:
    from inferometer.stats import process_ratio

    lo, hi = process_ratio([10.0, 10.5, 9.6], [12.0, 12.4, 11.7])
    assert 1.0 < lo < 1.2 < hi < 1.35
    lo, hi = process_ratio([10.0, 11.0, 9.0], [10.5, 9.5, 10.2])
    assert lo < 1.0 < hi
    assert process_ratio([10.0], [11.0]) == (0.0, float("inf"))


def test_each_process_weighs_the_same_in_a_cells_statistics() -> None:
    """A process that ran fast took more samples in the same time; weighing samples would
    let it pull the cell's median to itself (here to 10 ms), weighing processes gives the
    middle process (20 ms), as the two-level bootstrap assumes."""
    from inferometer.stats import pooled_stats, summarize_processes

    procs = [[10_000_000] * 1000, [20_000_000] * 100, [21_000_000] * 100]
    p50, mean = pooled_stats(procs, [50.0, None])
    assert p50 == 20_000_000 and mean == pytest.approx(17_000_000)
    s = summarize_processes(procs)
    assert s.p50_ms == pytest.approx(20.0) and s.count == 1200 and s.min_ms == 10.0
    one = [[1_000_000, 2_000_000, 3_000_000]]
    assert summarize_processes(one) == summarize(one[0])


def test_the_t_distribution_matches_its_tables() -> None:
    """Two-sided 5% critical values of Student's t (any table), whole and fractional df."""
    from inferometer.stats import t_two_sided

    for t, df in ((12.706, 1), (4.303, 2), (2.776, 4), (2.228, 10), (1.984, 100)):
        assert t_two_sided(t, df) == pytest.approx(0.05, abs=2e-4)
    assert t_two_sided(0.0, 3.0) == pytest.approx(1.0)
    assert t_two_sided(math.inf, 2.5) == 0.0
    # fractional df lie between their neighbours (Welch's df is rarely whole)
    assert t_two_sided(3.0, 2.0) > t_two_sided(3.0, 2.5) > t_two_sided(3.0, 3.0)


def test_welch_on_process_medians_pays_for_a_side_that_disagrees() -> None:
    """The case an A/A run on the 2-core host produced: two of A's three processes landed 8%
    fast.  The ratio of the pooled medians (1.10) clears that side's spread, but three
    processes that disagree so much cannot show a 10% change: p > 0.05.  The same 10% between
    sides whose processes agree is beyond doubt."""
    from inferometer.stats import welch_p

    p = welch_p([43.7, 47.7, 44.0], [48.9, 49.8, 48.1])
    assert p is not None and 0.05 < p < 0.2
    p = welch_p([47.5, 48.0, 47.8], [52.5, 53.0, 52.6])
    assert p is not None and p < 1e-4
    assert welch_p([10.0], [11.0, 11.2]) is None  # one process: no test, the rule falls back
    assert welch_p([10.0, 10.0], [10.0, 10.0]) == 1.0
    assert welch_p([10.0, 10.0], [11.0, 11.0]) == 0.0
    # a ratio test: swapping the sides or scaling both changes nothing
    a, b = [9.8, 10.1, 10.3], [10.9, 11.4, 11.0]
    assert welch_p(a, b) == pytest.approx(welch_p(b, a))
    assert welch_p(a, b) == pytest.approx(welch_p([x * 7 for x in a], [x * 7 for x in b]))
    # the verdict rule: Welch's p vetoes what the interval and the floor alone would call
    from inferometer.stats import significant

    assert significant(1.10, 1.01, 1.13, floor=0.092)
    assert not significant(1.10, 1.01, 1.13, floor=0.092, p=0.09)
    assert significant(1.10, 1.01, 1.13, floor=0.092, p=0.01)


def test_the_matrix_speed_probe_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A probe spread over every core would time whichever cores were idle; this one holds
    numpy's BLAS to one thread while it is timed and leaves the limit as it found it."""
    from threadpoolctl import threadpool_info

    from inferometer.measure import speed

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen: list[list[int]] = []
    timed = speed._median_ms

    def spy(fn: Callable[[], object], reps: int) -> float:
        seen.append(blas())
        return timed(fn, reps)

    before = blas()
    monkeypatch.setattr(speed, "_median_ms", spy)
    ms = speed.gemm_probe(reps=3, n=128)
    assert ms is not None and ms > 0
    assert seen == [[1] * len(before)] and before
    assert blas() == before
    s = speed.speed_probe()
    assert s.loop_ms > 0 and s.gemm_ms is not None and s.gemm_ms > 0
