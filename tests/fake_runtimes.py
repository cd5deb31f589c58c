"""Runtimes that fail on purpose: the runner must turn each into one failed cell."""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar

from inferometer.runtimes._null import Null
from inferometer.runtimes.base import Availability


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
