import itertools

import pytest

from inferometer.scenarios import RunLength, single_stream


class FakeClock:
    """Each call returns the next tick; the timed call itself advances by `durations`."""

    def __init__(self, durations_ns: list[int]) -> None:
        self.now = 0
        self.durations = itertools.cycle(durations_ns)
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def work(self) -> None:
        self.calls += 1
        self.now += next(self.durations)


def _run(durations: list[int], **kw: float) -> tuple:
    clock = FakeClock(durations)
    res = single_stream(clock.work, RunLength(**kw), clock=clock)
    return res, clock


def test_constant_latency_converges_once_minimums_are_met() -> None:
    res, clock = _run([1_000_000], min_time_s=0.05, min_count=10, max_time_s=1.0)
    assert res.stop_reason == "converged"
    assert len(res.samples_ns) == clock.calls
    assert len(res.samples_ns) >= 50  # 50 ms of 1 ms calls: min_time dominates min_count
    assert set(res.samples_ns) == {1_000_000}


def test_min_count_is_enforced_when_calls_are_slow() -> None:
    res, _ = _run([100_000_000], min_time_s=0.01, min_count=12, max_time_s=100.0)
    assert res.stop_reason == "converged"
    assert len(res.samples_ns) >= 12


def test_bimodal_latency_never_converges_and_stops_at_max_time() -> None:
    res, _ = _run([1_000_000, 3_000_000], min_time_s=0.01, min_count=5, max_time_s=0.5,
                  target_rel_ci=0.01)
    assert res.stop_reason == "max_time"
    assert 0.5e9 <= res.elapsed_ns < 0.51e9


def test_max_count_caps_the_run() -> None:
    res, _ = _run([1_000], min_time_s=10.0, min_count=5, max_count=100, max_time_s=100.0)
    assert res.stop_reason == "max_count"
    assert len(res.samples_ns) == 100


@pytest.mark.parametrize("kw", [{"min_time_s": 5, "max_time_s": 1}, {"min_count": 0},
                                {"target_rel_ci": 0}, {"warmup": -1}])
def test_run_length_rejects_impossible_values(kw: dict) -> None:
    with pytest.raises(ValueError):
        RunLength(**kw)
