"""Dynamic batching in the instance pool: batches up to the max size, no query held longer
than the max delay plus one service time, and the batch-size histogram in loadtest."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import pytest
from conftest import cli
from fake_runtimes import cost_ms

from inferometer.errors import UsageError
from inferometer.loadgen.batching import Batching, collect, parse_batching
from inferometer.loadgen.pool import InstancePool, PoolSpec
from inferometer.models.resolve import resolve


def test_parse_batching() -> None:
    assert parse_batching("max=8,delay=2ms") == Batching(8, 0.002)
    assert parse_batching("max=4") == Batching(4, 0.0)
    for bad in ("8", "max=0", "max=x", "delay=2ms", "max=4,delay=-1ms", "max=4,max=5"):
        with pytest.raises(UsageError):
            parse_batching(bad)


def test_collect_takes_what_is_queued_up_to_the_max() -> None:
    q: queue.SimpleQueue = queue.SimpleQueue()
    now = time.monotonic_ns()
    for i in range(1, 6):
        q.put((i, 1, now))
    batch, left, stop = collect(q, (0, 1, now), Batching(4, 0.0))
    assert [b[0] for b in batch] == [0, 1, 2, 3] and left is None and not stop
    q.put((9, 3, now))  # 2 more queued items fit, then one of 3 items does not
    batch, left, stop = collect(q, (8, 1, now), Batching(4, 0.0))
    assert [b[0] for b in batch] == [8, 4, 5] and left == (9, 3, now) and not stop


def test_collect_waits_for_the_batch_until_the_first_query_waited_the_delay() -> None:
    q: queue.SimpleQueue = queue.SimpleQueue()
    t0 = time.monotonic_ns()
    threading.Timer(0.02, lambda: q.put((1, 1, time.monotonic_ns()))).start()
    batch, _, _ = collect(q, (0, 1, t0), Batching(8, 0.08))
    waited = (time.monotonic_ns() - t0) / 1e9
    assert [b[0] for b in batch] == [0, 1]  # the one that came 20 ms later joined
    assert 0.07 <= waited <= 0.2  # and the batch closed at the delay, not earlier
    q.put(None)
    batch, _, stop = collect(q, (2, 1, time.monotonic_ns()), Batching(8, 1.0))
    assert stop and len(batch) == 1  # a stop ends the wait at once


def _pool(tmp_path: Path, batching: Batching) -> InstancePool:
    model = resolve("tinynet")
    spec = PoolSpec(model, "costmodel", "default", 1, 1, 1, batching=batching)
    return InstancePool(spec, tmp_path)


def test_a_burst_is_served_in_batches_of_the_max_size(fakes: None, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTMODEL_DIR", str(tmp_path / "live"))
    done = threading.Event()
    finished: list[int] = []
    with _pool(tmp_path, Batching(4, 0.0)) as pool:
        pool.take_batch_counts()  # nothing before the burst
        def complete(qid: int, t: int) -> None:
            finished.append(qid)
            if len(finished) == 10:
                done.set()
        pool.on_complete = complete
        for i in range(10):
            pool.submit(i)
        assert done.wait(10)
        counts = pool.take_batch_counts()
    assert sorted(finished) == list(range(10))
    assert max(counts) <= 4 and sum(k * v for k, v in counts.items()) == 10
    assert counts.get(4, 0) >= 2  # the queue held them: full batches formed


def test_no_query_waits_longer_than_the_delay_plus_one_service_time(
        fakes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries 15 ms apart, batches of up to 4 held open 40 ms: batches of about three form,
    and no query waits in the queue beyond 40 ms plus one service time (22 ms at batch 4)."""
    monkeypatch.setenv("COSTMODEL_DIR", str(tmp_path / "live"))
    delay, gap, n = 0.04, 0.015, 40
    submitted: dict[int, int] = {}
    started: dict[int, int] = {}
    done = threading.Event()
    with _pool(tmp_path, Batching(4, delay)) as pool:
        pool.take_batch_counts()
        pool.on_start = lambda qid: started.__setitem__(qid, time.monotonic_ns())
        pool.on_complete = lambda qid, t: done.set() if len(started) == n else None
        t0 = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, t0 + i * gap - time.monotonic()))
            submitted[i] = time.monotonic_ns()
            pool.submit(i)
        assert done.wait(10)
        counts = pool.take_batch_counts()
    waits = [(started[i] - submitted[i]) / 1e9 for i in range(n)]
    service = cost_ms(4, 1, 1) / 1e3
    assert max(waits) <= delay + service + 0.01, max(waits)
    assert max(counts) <= 4
    mean = sum(k * v for k, v in counts.items()) / sum(counts.values())
    assert mean >= 2.0, counts  # the delay did gather queries into batches


def test_loadtest_reports_the_batch_size_histogram(fakes: None, tmp_path: Path) -> None:
    out = tmp_path / "lt"
    r = cli("loadtest", "tinynet", "--runtime", "costmodel", "--threads-per-instance", "1",
            "--qps", "200", "--duration", "2.5s", "--dynamic-batching", "max=4,delay=5ms",
            "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "batch sizes (calls per size):" in r.stdout and "mean batch" in r.stdout
    data = json.loads((out / "results.json").read_text())
    (step,) = data["scan"]
    assert data["batching"] == "max=4,delay=5ms"
    sizes = {int(k): v for k, v in step["step"]["batch_sizes"].items()}
    assert max(sizes) <= 4 and sum(k * v for k, v in sizes.items()) == step["step"]["queries"]
    assert step["step"]["peak_memory_mb"] > 0


def test_dynamic_batching_refuses_loadgen(tmp_path: Path) -> None:
    r = cli("loadtest", "tinynet", "--runtime", "onnxruntime", "--qps", "10", "--engine",
            "mlperf", "--dynamic-batching", "max=4", "--output", str(tmp_path / "x"))
    assert r.returncode == 2 and "--engine native" in r.stderr
