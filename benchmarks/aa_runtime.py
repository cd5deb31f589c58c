"""ONNX Runtime with a known slowdown, for the A/A self-check (benchmarks/aa_test.py).

Registered through INFEROMETER_RUNTIMES in place of `onnxruntime` (and as its identical twin
`onnxruntime_twin`), so a slowed run's cells have the same keys as a baseline run's and
compare matches them.  INFEROMETER_SLOWDOWN=0.10 makes every `run` busy-wait 10% of the call's
own time after the real work: the slowdown meets the same machine noise as the work it
stretches (a fixed sleep would not, and would free the core)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from inferometer.models.ref import ModelRef
from inferometer.runtimes import LoadOptions
from inferometer.runtimes._onnxruntime import OnnxRuntime


class _Slowed:
    def __init__(self, inner: Any, fraction: float) -> None:
        self.inner, self.fraction = inner, fraction

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self.inner.prepare(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        t0 = time.perf_counter_ns()
        out = self.inner.run(feed)
        until = t0 + int((time.perf_counter_ns() - t0) * (1.0 + self.fraction))
        while time.perf_counter_ns() < until:
            pass
        return out

    def info(self) -> dict[str, str]:
        return {**self.inner.info(), "aa_slowdown": f"{self.fraction:g}"}

    def close(self) -> None:
        self.inner.close()


class Slowed(OnnxRuntime):
    name: ClassVar[str] = "onnxruntime"

    def load(self, model: ModelRef, options: LoadOptions) -> Any:
        fraction = float(os.environ.get("INFEROMETER_SLOWDOWN", "0") or 0)
        session = super().load(model, options)
        return _Slowed(session, fraction) if fraction > 0 else session


class Twin(Slowed):
    """The same runtime under another name: a fastest line between the two must say tied."""

    name: ClassVar[str] = "onnxruntime_twin"
