"""serve's event-loop dispatch: requests written to idle instances by the loop itself, each
answer read when its instance's fd is readable, first come first served, and an instance that
dies fails only its own request and is replaced while the others go on."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from fake_runtimes import echo

from inferometer.loadgen.pool import InstancePool, PoolSpec, Served
from inferometer.models.resolve import resolve
from inferometer.serve.dispatch import LoopDispatcher


def _pool(tmp_path: Path, instances: int) -> InstancePool:
    spec = PoolSpec(resolve("tinynet"), "echo", "default", instances, 1, 1)
    return InstancePool(spec, tmp_path, threads=False)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)


def test_every_answer_belongs_to_its_request_and_instances_never_take_two(
        fakes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_SLEEP_MS", "30")
    xs = [_image(k) for k in range(7)]
    with _pool(tmp_path, 2) as pool:
        assert not pool._threads  # nothing but the loop drives these instances
        most_busy = 0

        async def main() -> list[Served]:
            nonlocal most_busy
            d = LoopDispatcher(pool, asyncio.get_running_loop())
            tasks = [asyncio.create_task(d.infer(1, {"input": x})) for x in xs]
            while not all(t.done() for t in tasks):
                most_busy = max(most_busy, len(d.busy))
                await asyncio.sleep(0.005)
            assert not d.busy and not d.waiting and sorted(d.idle) == [0, 1]
            d.close()
            return [t.result() for t in tasks]
        got = asyncio.run(main())
        assert pool.execution_counts() == {1: 7}
    assert most_busy == 2  # both instances used, neither given a second request
    for x, s in zip(xs, got, strict=True):
        assert s.error is None and s.outputs is not None
        assert np.array_equal(s.outputs["output"], echo(x))
        assert s.batch == 1 and s.infer_ns > 0
    # first come, first served: the last request waited in the queue, the first did not
    assert got[-1].queue_ns > got[0].queue_ns


def test_a_killed_instance_fails_its_request_only_and_is_replaced(
        fakes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_SLEEP_MS", "1500")
    with _pool(tmp_path, 1) as pool:
        victim = pool.instances[0].proc.pid

        async def main() -> tuple[Served, Served]:
            d = LoopDispatcher(pool, asyncio.get_running_loop())
            first = asyncio.create_task(d.infer(1, {"input": _image(1)}))
            behind = asyncio.create_task(d.infer(1, {"input": _image(2)}))
            await asyncio.sleep(0.5)  # inside the first call
            os.kill(victim, signal.SIGKILL)
            a = await asyncio.wait_for(first, 30)  # answered, not hung
            b = await asyncio.wait_for(behind, 60)  # run by the replacement
            d.close()
            return a, b
        a, b = asyncio.run(main())
        assert pool.restarts == 1 and pool.live == 1
        assert pool.instances[0].proc.pid != victim
    assert a.error is not None and a.outputs is None
    assert b.error is None and b.outputs is not None
    assert np.array_equal(b.outputs["output"], echo(_image(2)))
