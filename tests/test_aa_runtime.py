"""The A/A self-check's known slowdown (benchmarks/aa_runtime.py): it must stretch each call
by the stated fraction of the call's own time, on the same core, and change nothing else."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from aa_runtime import Slowed, Twin, _Slowed


class _Sleepy:
    """A session whose run takes a known time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def run(self, feed: np.ndarray) -> list[np.ndarray]:
        time.sleep(self.seconds)
        return [feed * 2]

    def info(self) -> dict[str, str]:
        return {"x": "1"}

    def close(self) -> None:
        pass


def test_the_slowdown_stretches_each_call_by_its_fraction() -> None:
    inner = _Sleepy(0.02)
    slowed = _Slowed(inner, 0.5)
    feed = slowed.prepare(np.ones(3))
    t0 = time.perf_counter()
    out = slowed.run(feed)
    took = time.perf_counter() - t0
    assert took >= 0.02 * 1.5
    assert took < 0.02 * 1.5 + 0.05  # busy-waits to the mark, no further
    assert np.array_equal(out[0], np.full(3, 2.0))
    assert slowed.info() == {"x": "1", "aa_slowdown": "0.5"}


def test_the_plug_ins_keep_onnxruntimes_keys() -> None:
    assert Slowed.name == "onnxruntime" and Twin.name == "onnxruntime_twin"
    assert [v.name for v in Twin.variants] == [v.name for v in Slowed.variants]


@pytest.mark.parametrize(("fraction", "wrapped"), [("", False), ("0", False), ("0.1", True)])
def test_the_slowdown_applies_only_when_asked(monkeypatch: pytest.MonkeyPatch, tiny,  # type: ignore[no-untyped-def]
                                              fraction: str, wrapped: bool) -> None:
    pytest.importorskip("onnxruntime")
    from inferometer.models.preprocess import make_images
    from inferometer.runtimes import LoadOptions

    monkeypatch.setenv("INFEROMETER_SLOWDOWN", fraction)
    session = Slowed().load(tiny, LoadOptions("default", 1, 1))
    assert isinstance(session, _Slowed) is wrapped
    images = make_images(1, *tiny.input_shape[1:])
    assert session.run(session.prepare({tiny.input_name: images}))[0].shape[0] == 1
    session.close()
