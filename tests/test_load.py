"""The load generator: schedules, validity, scan search, and the engine against a SUT with a
known service time (a fake pool), cross-checked against MLCommons LoadGen."""

from __future__ import annotations

import importlib.util
import itertools
import queue
import statistics
import threading
import time

import pytest

from inferometer.loadgen import engine
from inferometer.loadgen.arrivals import judge, min_queries, schedule
from inferometer.stats import percentile


def test_linear_schedule_is_evenly_spaced() -> None:
    assert schedule(4, 100.0, "linear") == [0, 10_000_000, 20_000_000, 30_000_000]


def test_poisson_schedule_is_seeded_with_the_right_rate() -> None:
    s = schedule(20000, 200.0, "exponential", seed=3)
    assert s == schedule(20000, 200.0, "exponential", seed=3)
    assert s != schedule(20000, 200.0, "exponential", seed=4)
    gaps = [b - a for a, b in itertools.pairwise(s)]
    assert statistics.mean(gaps) == pytest.approx(5e6, rel=0.001)  # the asked rate, exactly
    # exponential gaps: the standard deviation equals the mean
    assert statistics.pstdev(gaps) == pytest.approx(statistics.mean(gaps), rel=0.05)
    with pytest.raises(ValueError):
        schedule(10, 10.0, "bursty")


def test_min_queries_follows_loadgens_rule() -> None:
    assert min_queries(99) == 459
    assert min_queries(90) == 44
    assert min_queries(99.9) == 4603


def test_judge_gives_every_reason() -> None:
    ok = judge([1_000_000] * 500, [1000] * 500, target_ns=2_000_000, percentile=99, needed=459,
               max_issue_lag_ns=100_000, aborted=None)
    assert ok.valid and not ok.reasons
    bad = judge([3_000_000] * 100, [500_000] * 100, target_ns=2_000_000, percentile=99,
                needed=459, max_issue_lag_ns=100_000, aborted="overloaded")
    assert not bad.valid
    text = " ".join(bad.reasons)
    assert "too few queries: 100 < 459" in text and "over target" in text
    assert "overloaded" in text and "issue lag" not in text
    assert any("issue lag p99 500 us" in n for n in bad.notes)


def test_a_late_issuer_is_noted_not_rejected() -> None:
    """Latency counts from the schedule, so the issuer's lag is inside every latency: a step
    that met its target despite it is a pessimistic pass, not a false one."""
    late = judge([1_000_000] * 500, [5_000_000] * 500, target_ns=20_000_000, percentile=99,
                 needed=459, max_issue_lag_ns=1_000_000, aborted=None)
    assert late.valid and not late.reasons
    assert late.notes and "issue lag p99 5000 us over 1000 us" in late.notes[0]
    step = engine.StepResult("server", "linear", 9.0, 9.0, 500, 1.0, 0.001, {"99": 0.001},
                             5000.0, 0.02, late.valid, late.reasons, notes=late.notes)
    assert step.line("0.02").endswith("VALID [" + late.notes[0] + "]")


def test_scan_finds_the_boundary_within_precision() -> None:
    def fake(limit: float):  # type: ignore[no-untyped-def]
        def test(q: float) -> engine.StepResult:
            return engine.StepResult("server", "linear", q, q, 500, 1.0, 0.0, {}, 0.0, 0.1,
                                     q <= limit, ())
        return test

    for limit, start in ((37.3, 10.0), (37.3, 100.0), (5.0, 80.0)):
        best, steps = engine.scan_target(fake(limit), start, precision=0.05)
        assert limit * 0.95 <= best <= limit
        assert all(s.valid == (s.offered_qps <= limit) for s in steps)
    best, _ = engine.scan_target(fake(0.1), 10.0, min_qps=1.0)
    assert best == -1


def test_a_looser_target_searches_upward_from_the_tighter_answer() -> None:
    tested: list[float] = []

    def fake(limit: float):  # type: ignore[no-untyped-def]
        def test(q: float) -> engine.StepResult:
            tested.append(q)
            return engine.StepResult("server", "linear", q, q, 500, 1.0, 0.0, {}, 0.0, 0.1,
                                     q <= limit, ())
        return test

    best, steps = engine.scan_target(fake(40.0), 10.0, precision=0.05, known_valid=30.0)
    assert 38.0 <= best <= 40.0 and len(steps) == len(tested)
    assert min(tested) > 30.0  # nothing at or below the known-valid load was tested again
    # near saturation a retest of that load could fail; the stricter pass stands
    tested.clear()
    best, steps = engine.scan_target(fake(20.0), 10.0, precision=0.05, known_valid=30.0)
    assert best == 30.0 and tested == [60.0, 45.0, 37.5, 33.75, 31.88, 30.94]


def test_a_scan_answer_must_pass_again() -> None:
    """Loads in (30, 40] pass once and fail when tested again (a lucky draw near saturation);
    the confirmed answer is the best load that passes every time, and every test at it
    passed."""
    seen: dict[float, int] = {}

    def test(q: float) -> engine.StepResult:
        seen[q] = seen.get(q, 0) + 1
        valid = q <= 30.0 or (q <= 40.0 and seen[q] == 1)
        return engine.StepResult("server", "linear", q, q, 500, 1.0, 0.0, {}, 0.0, 0.1,
                                 valid, ())

    best, steps = engine.scan_target(test, 10.0, precision=0.05)
    assert 28.5 <= best <= 30.0
    at = [s for s in steps if s.offered_qps == best]
    assert len(at) >= 2 and all(s.valid for s in at)
    # without confirmation the lucky draw would have been the answer
    seen.clear()
    lucky, _ = engine.scan_target(test, 10.0, precision=0.05, confirm=0)
    assert lucky > 30.0
    # a load that never passes twice and nothing below it: halving finds the floor
    seen.clear()
    best, _ = engine.scan_target(lambda q: engine.StepResult(
        "server", "linear", q, q, 500, 1.0, 0.0, {}, 0.0, 0.1, q <= 3.0, ()), 10.0,
        precision=0.05, min_qps=0.5)
    assert 2.85 <= best <= 3.0


def _latency_model(service_ms: float, per_qps_ms: float, target_ms: float):  # type: ignore[no-untyped-def]
    """A system whose p99 is `service_ms` plus `per_qps_ms` per offered query/s."""
    tested: list[float] = []

    def test(q: float) -> engine.StepResult:
        tested.append(q)
        p99 = (service_ms + per_qps_ms * q) / 1e3
        ok = p99 <= target_ms / 1e3
        why = () if ok else (f"p99 {p99 * 1e3:.2f} ms over target {target_ms:g} ms",)
        return engine.StepResult("server", "linear", q, q, 500, 1.0, p99 / 2, {"99": p99}, 0.0,
                                 target_ms / 1e3, ok, why)
    return test, tested


def test_halving_stops_once_less_load_cannot_meet_the_target() -> None:
    """A target below the service's own p99 fails at every load; halving all the way to
    `min_qps` would run ever longer steps (minutes at a few queries/s) that must fail too."""
    test, tested = _latency_model(25.0, 0.01, 20.0)
    notes: list[str] = []
    best, steps = engine.scan_target(test, 1000.0, min_qps=459 / 120, percentile_key="99",
                                     on_note=notes.append)
    assert best == -1 and len(steps) <= 4 and min(tested) >= 250.0
    assert len(notes) == 1 and "less load will not meet it" in notes[0]
    # without the percentile the old behaviour stands: halve down to the floor
    test, tested = _latency_model(25.0, 0.01, 20.0)
    engine.scan_target(test, 1000.0, min_qps=459 / 120)
    assert min(tested) < 8.0
    # where less load does help, the rule stays out of the way and the answer is found
    test, _ = _latency_model(15.0, 0.5, 20.0)
    best, _ = engine.scan_target(test, 100.0, precision=0.05, percentile_key="99",
                                 on_note=notes.append)
    assert 9.5 <= best <= 10.0 and len(notes) == 1


class FakePool:
    """One server with a fixed service time; `stall_at` makes one query take `stall_s`."""

    def __init__(self, service_s: float, stall_at: int = -1, stall_s: float = 0.0) -> None:
        self.on_complete = lambda qid, t: None
        self.on_start = lambda qid: None
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.service_s, self.stall_at, self.stall_s = service_s, stall_at, stall_s
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            qid, _ = self.q.get()
            self.on_start(qid)
            time.sleep(self.stall_s if qid == self.stall_at else self.service_s)
            self.on_complete(qid, time.monotonic_ns())

    def submit(self, qid: int, n: int = 1) -> None:
        self.q.put((qid, n))


def test_light_load_is_valid_and_latency_is_at_least_the_service_time() -> None:
    step, lat = engine.run_server(FakePool(0.002), 100.0, "exponential", duration_s=1.0,
                                  target_ns=500_000_000, min_count=100, seed=1,
                                  max_issue_lag_ns=50_000_000)
    assert step.valid, step.reasons
    assert step.queries == len(lat) == 100
    assert min(lat) >= 2_000_000  # cannot be faster than the service
    assert step.achieved_qps == pytest.approx(100.0, rel=0.5)


def test_a_stall_counts_against_every_query_scheduled_during_it() -> None:
    """Latency runs from the scheduled instant: queries that waited behind a 300 ms stall
    must show it (a generator with coordinated omission would report ~1 ms for them)."""
    _, lat = engine.run_server(FakePool(0.001, stall_at=20, stall_s=0.3), 200.0, "linear",
                                  duration_s=1.0, min_count=200, max_issue_lag_ns=50_000_000)
    delayed = sum(1 for x in lat if x >= 100_000_000)
    assert delayed >= 30  # ~60 queries are scheduled during the stall at 200 QPS
    assert percentile(sorted(lat), 99) >= 200_000_000


def test_overload_is_invalid() -> None:
    step, _ = engine.run_server(FakePool(0.01), 400.0, "linear", duration_s=0.5,
                                target_ns=50_000_000, min_count=100,
                                max_issue_lag_ns=50_000_000)
    assert not step.valid
    assert any("over target" in r for r in step.reasons)


@pytest.mark.skipif(importlib.util.find_spec("mlperf_loadgen") is None,
                    reason="mlcommons-loadgen not installed")
def test_our_p99_agrees_with_loadgen_on_a_known_system(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Same SUT (4 ms service, one server), same offered Poisson load (~40% busy): the p99 of
    both generators must agree within 35% (different random schedules of 600 queries), their
    p50 within 15%. A stall of the shared host only ever adds latency, and the 6th-worst of 600
    queries moves with one stall (CI once saw LoadGen's p99 at 44 ms against ours at 17 ms,
    where a quiet host gives 17.2 and 16.6): so each generator runs twice, interleaved, and
    the less disturbed run of each is compared."""
    from inferometer.loadgen import mlperf

    qps, duration = 100.0, 6.0
    ours, theirs = [], []
    for i in range(2):
        ours.append(engine.run_server(FakePool(0.004), qps, "exponential", duration_s=duration,
                                      seed=5, max_issue_lag_ns=50_000_000)[0])
        theirs.append(mlperf.run_server(FakePool(0.004), qps, "exponential",
                                        duration_s=duration, seed=5, log_dir=tmp_path / str(i)))
    assert min(t.queries for t in theirs) >= min_queries(99)
    for tile, margin in (("99", 0.35), ("50", 0.15)):
        a = min(s.tiles_s[tile] for s in ours)
        b = min(s.tiles_s[tile] for s in theirs)
        assert a >= 0.004 and b >= 0.004
        assert abs(a - b) / max(a, b) <= margin, (tile, a, b)
