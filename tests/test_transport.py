"""How a served request's arrays reach an instance and come back: packed in place into the
instance's shared segment, or over its pipe when they do not fit (or shared memory is off);
either way every answer belongs to its own request."""

from __future__ import annotations

import mmap
import threading
from pathlib import Path

import numpy as np
import pytest
from fake_runtimes import echo

from inferometer._wire import ALIGN, InPlace, Packed, pack, pack_into, unpack
from inferometer.loadgen import pool as poolmod
from inferometer.loadgen.pool import InstancePool, PoolSpec, Served
from inferometer.models.resolve import resolve


def _arrays() -> dict[str, np.ndarray]:
    return {"x": np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],  # not contiguous
            "empty": np.zeros((0, 3), np.int64), "scalar": np.array(2.5),
            "bytes": np.array([1, 2, 3], np.int8), "half": np.ones((2, 2), np.float16)}


def test_pack_into_writes_the_same_bytes_as_pack_with_aligned_arrays() -> None:
    arrays = _arrays()
    seg = memoryview(mmap.mmap(-1, 1 << 16))
    size = pack_into(seg, arrays)
    assert size == len(pack(arrays)) and bytes(seg[:size]) == pack(arrays)
    got = unpack(seg[:size])
    assert list(got) == list(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and np.array_equal(got[name], a), name
        assert got[name].ctypes.data % ALIGN == 0, name  # the segment is page-aligned
    assert pack_into(seg[:size - 1], arrays) is None  # one byte short: refused, not cut
    with pytest.raises(ValueError, match="its arrays take"):
        unpack(pack(arrays) + b"\0")


def test_packed_reads_arrays_on_demand_and_gives_their_bytes_unpadded() -> None:
    arrays = _arrays()
    p = Packed(bytes(pack(arrays)))
    assert list(p) == list(arrays) and len(p) == len(arrays)
    for (name, a), raw in zip(arrays.items(), p.raw(), strict=True):
        assert p[name].dtype == a.dtype and np.array_equal(p[name], a), name
        assert bytes(raw) == np.ascontiguousarray(a).tobytes(), name
        assert not p[name].flags.writeable  # a copy of the answer, shared by whoever reads
    assert p["x"] is p["x"]
    with pytest.raises(KeyError):
        p["nope"]
    with pytest.raises(ValueError, match="its arrays take"):
        Packed(bytes(pack(arrays)) + b"\0")


def test_in_place_views_show_each_request_that_lands_in_the_segment() -> None:
    seg = memoryview(mmap.mmap(-1, 1 << 16))
    views = InPlace(seg)
    first = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    second = {"x": np.arange(6, 12, dtype=np.float32).reshape(2, 3)}
    got = views.unpack(pack_into(seg, first))
    assert np.array_equal(got["x"], first["x"])
    got.pop("x")  # the caller's dict: the kept one is untouched
    again = views.unpack(pack_into(seg, second))  # same layout: the kept views, new data
    assert np.array_equal(again["x"], second["x"])
    other = {"x": np.ones((3, 3), np.int64), "y": np.zeros(2, np.uint8)}
    got = views.unpack(pack_into(seg, other))
    assert list(got) == ["x", "y"] and np.array_equal(got["x"], other["x"])
    with pytest.raises(ValueError, match="its arrays take"):
        views.unpack(pack_into(seg, other) + 64)  # a size the layout does not fill


def _serve_all(pool: InstancePool, xs: list[np.ndarray]) -> dict[int, Served]:
    got: dict[int, Served] = {}
    done = threading.Event()

    def served(qid: int, s: Served) -> None:
        got[qid] = s
        if len(got) == len(xs):
            done.set()
    pool.on_served = served
    for i, x in enumerate(xs):
        pool.submit(i, len(x), {"input": x})
    assert done.wait(60)
    return got


@pytest.mark.parametrize("shared", [True, False])
def test_served_answers_match_their_requests_through_segment_or_pipe(
        fakes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: bool) -> None:
    # A segment that holds one image but not four: the larger requests must take the pipe.
    monkeypatch.setattr(poolmod, "SEGMENT_BYTES", 8192)
    rng = np.random.default_rng(3)
    xs = [rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (1, 4, 1, 4, 2)]
    spec = PoolSpec(resolve("tinynet"), "echo", "default", 1, 1, 4, shared_memory=shared,
                    dynamic_batch=True)
    with InstancePool(spec, tmp_path) as pool:
        (inst,) = pool._instances
        assert (inst.view is not None) == shared
        got = _serve_all(pool, xs)
        if shared:  # the last request went through the segment: its answer is still there
            last = unpack(inst.view[:len(pack({"output": echo(xs[-1])}))])
            assert np.array_equal(last["output"], echo(xs[-1]))
    for i, x in enumerate(xs):
        assert got[i].error is None, got[i].error
        assert got[i].outputs is not None and np.array_equal(got[i].outputs["output"], echo(x))
        assert got[i].infer_ns > 0 and got[i].input_ns >= 0


def test_answers_outlive_the_segment_they_came_through(
        fakes: None, tmp_path: Path) -> None:
    """The pool copies an answer out of the segment: the next request overwrites it."""
    rng = np.random.default_rng(4)
    xs = [rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8) for _ in range(3)]
    spec = PoolSpec(resolve("tinynet"), "echo", "default", 1, 1, 1)
    with InstancePool(spec, tmp_path) as pool:
        got = _serve_all(pool, xs)
    for i, x in enumerate(xs):
        out = got[i].outputs
        assert out is not None and np.array_equal(out["output"], echo(x))


def test_in_process_steps_split_their_latency_as_a_server_does(
        fakes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance times its own inference (20 ms of sleep here), so an in-process step
    shows queue and compute as a served one does: the inference is inside each latency and
    at least the sleep; queries of an all-at-once offline step wait in the queue."""
    from inferometer.loadgen import engine

    monkeypatch.setenv("ECHO_SLEEP_MS", "20")
    spec = PoolSpec(resolve("tinynet"), "echo", "default", 2, 1, 1)
    with InstancePool(spec, tmp_path) as pool:
        step, lat = engine.run_single_stream(pool, duration_s=0.2, min_count=10)
        sv = step.server
        assert sv["requests"] == step.queries == len(lat)
        assert 20.0 <= sv["compute_ms"] <= step.mean_s * 1e3
        assert 0 <= sv["queue_ms"] < sv["compute_ms"]  # one query at a time: none waits long
        off, _ = engine.run_offline(pool, 8, 1)
        assert off.server["requests"] == 8  # this step's calls only, not the last step's
        assert off.server["queue_ms"] > sv["compute_ms"]  # 8 at once on 2 instances
        assert pool.take_timing() == {}  # taken: the next step starts from nothing
