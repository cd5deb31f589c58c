import random
import statistics

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
    many = bootstrap_ratios(a, b, [50.0, 99.0, None])
    assert many[0] == bootstrap_ratio(a, b, 50.0)  # the same seed, the same resamples
    assert many[2][0] == pytest.approx(b.mean() / a.mean())
    assert all(lo <= r <= hi for r, lo, hi in many)
