"""Shared fixtures.  Tests never depend on the user's cache or environment: the model cache
lives in a session temp dir, and the fake runtimes are registered through the same
INFEROMETER_RUNTIMES plug-in path a user would use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FAKES = ("crash=fake_runtimes:Crash;hang=fake_runtimes:Hang;raise=fake_runtimes:Raise;"
         "missing=fake_runtimes:Missing;badconvert=fake_runtimes:BadConvert;"
         "accel=fake_runtimes:Accel;oom=fake_runtimes:Oom;killed=fake_runtimes:Killed;"
         "recorder=fake_runtimes:Recorder;costmodel=fake_runtimes:CostModel;"
         "echo=fake_runtimes:Echo;shapeconvert=fake_runtimes:ShapeConvert")
# Two processes a cell: the pooled, multi-process path at two thirds of the default's cost.
QUICK = ["--min-time", "0.05", "--max-time", "0.3", "--min-count", "5", "--warmup", "1",
         "--repeat", "2"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    from inferometer import envs

    # Environments are expensive (created once by `make envs`): keep using the real ones.
    os.environ.setdefault("INFEROMETER_ENVS", str(envs.root()))
    os.environ["INFEROMETER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("INFEROMETER_RUNTIMES", None)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the faulty runtimes for this test (and the workers it spawns)."""
    monkeypatch.setenv("INFEROMETER_RUNTIMES", FAKES)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(TESTS))


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI exactly as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "inferometer", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def tiny():  # type: ignore[no-untyped-def]
    from inferometer.models.resolve import resolve
    return resolve("tinynet")
