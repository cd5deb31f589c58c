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


def test_the_noise_probe_counts_only_the_cpus_the_worker_may_run_on(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A worker pinned to CPU 0 while another process (the other node of a local cluster)
    keeps CPU 1 busy: nothing was taken from it.  The same busy CPU 1 under a worker free to
    use both is half of its capacity.  Fake per-CPU clocks: 1 s of wall, CPU 1 busy 1 s,
    CPU 0 busy 0.5 s of which all is the worker's own."""
    from collections import namedtuple

    import inferometer.measure.load as load

    T = namedtuple("T", "user nice system")
    state = {"t": 0.0}

    def cpu_times(percpu: bool = False):  # type: ignore[no-untyped-def]
        t = state["t"]
        return [T(0.5 * t, 0.0, 0.0), T(1.0 * t, 0.0, 0.0)] if percpu else T(1.5 * t, 0.0, 0.0)

    monkeypatch.setattr(load.psutil, "cpu_times", cpu_times)
    monkeypatch.setattr(load.psutil, "cpu_count", lambda: 2)
    monkeypatch.setattr(load, "_own_cpu_s", lambda: 0.5 * state["t"])
    monkeypatch.setattr(load.time, "monotonic", lambda: state["t"])
    for cpus, expected in (({0}, 0.0), ({0, 1}, 0.5)):
        monkeypatch.setattr(load.os, "sched_getaffinity", lambda pid, c=cpus: c)
        state["t"] = 0.0
        probe = load.LoadProbe().start()
        state["t"] = 1.0
        assert probe.other_load() == pytest.approx(expected)
