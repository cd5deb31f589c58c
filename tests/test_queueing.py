"""The ideal-server bound tune prunes with: queueing a real pool would show, never more
load than the servers' capacity, and the batching rule the pool's dispatchers follow."""

from __future__ import annotations

import pytest

from inferometer.advisor.queueing import bound_qps, service_of, simulated_latencies


def test_evenly_spaced_arrivals_reach_capacity_poisson_ones_queue() -> None:
    s = {1: 10.0}  # 10 ms a call: 100 QPS of capacity on one server
    linear = bound_qps(15.0, 99.0, 1, s, arrivals="linear")
    poisson = bound_qps(30.0, 99.0, 1, s, arrivals="exponential")
    assert 90 <= linear <= 100  # no queue until the server is saturated
    assert 30 <= poisson <= 75  # M/D/1: a 3x-service p99 holds only at half load or so
    assert bound_qps(9.0, 99.0, 1, s) == 0.0  # one call alone misses the bound


def test_more_servers_and_cheap_batches_carry_more() -> None:
    one = bound_qps(50.0, 99.0, 1, {1: 20.0})
    two = bound_qps(50.0, 99.0, 2, {1: 20.0})
    batched = bound_qps(50.0, 99.0, 1, {1: 20.0, 2: 24.0, 4: 30.0}, max_batch=4)
    assert two > 1.8 * one
    assert batched > 1.5 * one
    assert bound_qps(50.0, 99.0, 2, {1: 20.0}) <= 2 * 1000 / 20.0


def test_the_simulated_batcher_holds_batches_open_no_longer_than_the_delay() -> None:
    lat = simulated_latencies(20.0, 1, {1: 5.0, 2: 6.0, 4: 8.0}, max_batch=4, delay_ms=30.0,
                              n=2000, seed=3)
    # at light load a query waits at most the delay plus one call ahead of it, then its own
    assert max(lat) <= 30.0 + 8.0 + 8.0 + 1e-6
    assert min(lat) >= 5.0


def test_service_of_interpolates_between_measured_batches() -> None:
    s = {1: 10.0, 4: 16.0}
    assert service_of(s, 2) == pytest.approx(12.0)
    assert service_of(s, 8) == pytest.approx(32.0)  # past the largest: its per-item rate


def test_a_tail_over_the_slo_at_any_load_bounds_at_zero_and_ends() -> None:
    """Every call at least 40 ms and one in ten at 3x: a 100 ms p99 holds at no load."""
    spread = [1.0] * 9 + [3.0]
    assert bound_qps(100.0, 99.0, 1, {1: 40.0}, spread=spread) < 0.02
