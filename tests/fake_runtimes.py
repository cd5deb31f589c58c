"""Runtimes that fail on purpose: the runner must turn each into one failed cell."""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar

from inferometer.runtimes._null import Null
from inferometer.runtimes.base import Availability, Variant


class Crash(Null):
    """Dies by SIGSEGV during load, as a runtime with a native bug would."""

    name: ClassVar[str] = "crash"

    def load(self, model: Any, options: Any) -> Any:
        os.kill(os.getpid(), signal.SIGSEGV)


class Hang(Null):
    name: ClassVar[str] = "hang"

    def load(self, model: Any, options: Any) -> Any:
        time.sleep(3600)


class _RaisingSession:
    def prepare(self, batch: Any) -> Any:
        return batch

    def run(self, feed: Any) -> Any:
        raise RuntimeError("kernel exploded on purpose")

    def info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


class Raise(Null):
    name: ClassVar[str] = "raise"

    def load(self, model: Any, options: Any) -> Any:
        return _RaisingSession()


class Missing(Null):
    name: ClassVar[str] = "missing"

    def available(self) -> Availability:
        return Availability(False, reason="python module 'missing_rt' not installed",
                            install="pip install missing-rt")


class BadConvert(Null):
    """Its model conversion fails: its cells must fail without being run."""

    name: ClassVar[str] = "badconvert"

    def convert(self, model: Any, variant: str) -> str:
        raise ValueError("unsupported operator Frobnicate")

    def load(self, model: Any, options: Any) -> Any:
        raise AssertionError("load must not be reached after a failed conversion")


class _AccelSession:
    """Reports device-side timings and memory the way an accelerator session does."""

    def __init__(self) -> None:
        self.runs = 0

    def prepare(self, batch: Any) -> Any:
        return batch

    def run(self, feed: Any) -> Any:
        self.runs += 1
        return ()

    def reset_device_samples(self) -> None:
        self.runs = 0

    def device_samples_ns(self) -> list[int]:
        return [1000 + i % 7 for i in range(self.runs)]

    def device_memory_mb(self) -> dict[str, float]:
        return {"torch_peak_allocated": 12.5}

    def info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


class Accel(Null):
    name: ClassVar[str] = "accel"

    def load(self, model: Any, options: Any) -> Any:
        return _AccelSession()


class _OomSession(_RaisingSession):
    def run(self, feed: Any) -> Any:
        raise MemoryError("could not allocate 96.0 GiB")


class Oom(Null):
    """Runs out of memory at its first inference, as a too-large batch does."""

    name: ClassVar[str] = "oom"

    def load(self, model: Any, options: Any) -> Any:
        return _OomSession()


class Killed(Null):
    """Killed by SIGKILL during load, as the kernel's OOM killer does."""

    name: ClassVar[str] = "killed"

    def load(self, model: Any, options: Any) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)


class _RecordingSession:
    """Remembers which input sample each measured run got (by a checksum of its arrays) and
    writes them to $INFEROMETER_TEST_RECORD when closed."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def prepare(self, inputs: Any) -> Any:
        return dict(inputs)

    def run(self, feed: Any) -> Any:
        self.seen.append(round(float(sum(float(v.astype("float64").sum()) for v in feed.values())),
                               3))
        return ()

    def info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        import json

        with open(os.environ["INFEROMETER_TEST_RECORD"], "a") as f:
            f.write(json.dumps(self.seen) + "\n")


class Recorder(Null):
    name: ClassVar[str] = "recorder"

    def load(self, model: Any, options: Any) -> Any:
        return _RecordingSession()


def cost_ms(batch: int, threads: int, instances: int, fixed: float = 6.0, item: float = 4.0,
            alpha: float = 0.8, contention: float = 0.25) -> float:
    """The known cost model of `CostModel`: a call of `batch` items takes (fixed + item x
    batch) ms, divided by threads^alpha (threads help less than linearly), and each other
    instance running beside it slows it by `contention` (shared memory bandwidth)."""
    return (fixed + item * batch) / threads ** alpha * (1 + contention * (instances - 1))


class _CostSession:
    def __init__(self, threads: int, live: Any) -> None:
        self.threads, self.live = threads, live

    def prepare(self, inputs: Any) -> Any:
        return inputs

    def run(self, feed: Any) -> Any:
        batch = len(next(iter(feed.values())))
        time.sleep(cost_ms(batch, self.threads, self.live()) / 1e3)
        return ()

    def info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


class CostModel(Null):
    """Sleeps for `cost_ms`: latency as a known function of threads, batch and the number of
    co-running instances (counted from the live pid files in $COSTMODEL_DIR)."""

    name: ClassVar[str] = "costmodel"
    variants: ClassVar[tuple[Variant, ...]] = (Variant("default", "fp32", "sleeps cost_ms"),)

    def load(self, model: Any, options: Any) -> Any:
        from pathlib import Path

        d = Path(os.environ.get("COSTMODEL_DIR", "/tmp/costmodel"))
        d.mkdir(parents=True, exist_ok=True)
        (d / str(os.getpid())).touch()

        def live() -> int:
            n = 0
            for f in d.iterdir():
                try:
                    os.kill(int(f.name), 0)
                    n += 1
                except (OSError, ValueError):
                    pass
            return max(n, 1)
        return _CostSession(options.threads or 2, live)


class _EchoSession:
    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s

    def prepare(self, inputs: Any) -> Any:
        return inputs

    def run(self, feed: Any) -> Any:
        (x,) = feed.values()
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return (echo(x),)

    def info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


def echo(x: Any) -> Any:
    """Echo's output for a batch: each item's sum, then 0..9 added, as [n, 10] float32, so
    a served answer can be checked row by row against the request it belongs to."""
    import numpy as np

    sums = x.reshape(len(x), -1).astype(np.float64).sum(axis=1)
    return (sums[:, None] + np.arange(10)).astype(np.float32)


class Echo(Null):
    """A one-input model's outputs computed from its inputs (see `echo`), after sleeping
    $ECHO_SLEEP_MS: a served request's answer is checkable and its time controllable."""

    name: ClassVar[str] = "echo"

    def load(self, model: Any, options: Any) -> Any:
        return _EchoSession(float(os.environ.get("ECHO_SLEEP_MS", "0")) / 1e3)


class ShapeConvert(Null):
    """Converts per cell shape, as a converter that needs static shapes does: its load fails
    unless the conversion for exactly its cell's shapes was made first."""

    name: ClassVar[str] = "shapeconvert"

    @staticmethod
    def converts_per_shape(model: Any) -> bool:
        return True

    @staticmethod
    def _marker(shapes: Any) -> Any:
        from inferometer.models.resolve import cache_dir

        text = ";".join(f"{k}={'x'.join(map(str, v))}" for k, v in sorted(dict(shapes).items()))
        return cache_dir() / "shapeconvert" / text

    def convert(self, model: Any, variant: str, shapes: Any = None) -> str:
        marker = self._marker(shapes)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("converted")
        return f"converted at {marker.name}"

    def load(self, model: Any, options: Any) -> Any:
        if not self._marker(options.shapes).exists():
            raise FileNotFoundError(f"not converted at {self._marker(options.shapes).name}")
        return super().load(model, options)
