"""The contract every runtime must meet, run through the real worker process on the tiny model:
a new runtime passes this suite or it is not done."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferometer import envs, runtimes
from inferometer.integrity import compare
from inferometer.jobs import Job
from inferometer.measure.gpu import cuda_devices
from inferometer.plan import device_reason
from inferometer.results.schema import CellSpec
from inferometer.runner import spawn_worker
from inferometer.runtimes.base import needs_conversion
from inferometer.scenarios import RunLength

LENGTH = RunLength(warmup=1, min_time_s=0.02, min_count=3, max_time_s=0.2)


HAS_CUDA = bool(cuda_devices())


def _cases() -> list:
    """Every registered runtime and version environment, each variant on each device it
    supports; the ones that cannot run here are skipped with their reason (CI creates the
    environments first: make envs; CUDA variants run only where a CUDA device exists)."""
    cases = []
    for name in envs.runtime_names():
        rt = runtimes.get(name)()
        avail = envs.availability(name)
        for v in rt.variants:
            for device in v.devices:
                why = None if avail.available else f"{name}: {avail.reason}"
                if why is None and device != "cpu":
                    why = (device_reason(rt, device) if HAS_CUDA
                           else f"{name}: no CUDA device here")
                marks = [pytest.mark.skip(reason=why)] if why else []
                suffix = "" if device == "cpu" else f"-{device}"
                cases.append(pytest.param(name, v.name, device, marks=marks,
                                          id=f"{name}-{v.name}{suffix}"))
    return cases


def _job(tmp: Path, model, name: str, variant: str, threads, batch: int,  # type: ignore[no-untyped-def]
         device: str = "cpu") -> Job:
    return Job(spec=CellSpec(model.name, name, variant, threads, batch, device), model=model,
               length=LENGTH, preprocess_timed=True, pin=False,
               report_path=str(tmp / f"{name}.{variant}.report.json"),
               outputs_path=str(tmp / f"{name}.{variant}.npy"))


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("ref")
    job = _job(tmp, tiny, "onnxruntime", "default", 1, 2)
    report = spawn_worker(job, tmp / "log", timeout_s=120)
    assert report.status == "ok", report.error
    return np.load(job.outputs_path)


@pytest.mark.parametrize(("name", "variant", "device"), _cases())
def test_runtime_contract(name: str, variant: str, device: str, tiny, reference,  # type: ignore[no-untyped-def]
                          tmp_path: Path) -> None:
    rt = runtimes.get(name)()
    assert rt.name == name.partition("@")[0]
    assert variant in [v.name for v in rt.variants]
    assert set(rt.default_variants) <= {v.name for v in rt.variants}
    why_not = rt.supports(tiny)
    if why_not:
        pytest.skip(why_not)
    job = _job(tmp_path, tiny, name, variant, 1, 2, device)
    python = envs.python_for(name)
    if needs_conversion(rt, variant):  # the runner converts once before the cells; so do we
        conv = spawn_worker(replace(job, mode="convert"), tmp_path / "convert.log", 600, python)
        assert conv.status == "ok", conv.error
        assert conv.settings["conversion"]
    report = spawn_worker(job, tmp_path / "log", timeout_s=300, python=python)
    assert report.status == "ok", (report.error, (tmp_path / "log").read_text()[-2000:])
    assert report.runtime_version
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in report.settings.items())
    # settings are read by people: values, not Python reprs like "<Type: 'float32'>"
    assert not [v for v in report.settings.values() if v.startswith("<") or " at 0x" in v]
    assert len(report.samples_ns) >= LENGTH.min_count and min(report.samples_ns) > 0
    assert len(report.warmup_ns) == LENGTH.warmup and report.first_ns and report.first_ns > 0
    assert report.peak_rss_mb and report.peak_rss_mb >= (report.peak_rss_after_load_mb or 0) > 0
    if name == "null" or getattr(rt, "integrity_note", None):
        assert not report.has_outputs
        return
    assert report.has_outputs
    assert any(lib.size_mb > 1 for lib in report.libraries), "the runtime's own libraries"
    out = np.load(job.outputs_path)
    assert out.shape == reference.shape == (8, 10)
    verdict = compare(out, reference, report.precision, "onnxruntime", "classes")
    assert verdict.passed, verdict


@pytest.mark.skipif(not envs.availability("keras").available, reason="no tensorflow environment")
def test_keras_contract_on_its_own_architecture(tmp_path: Path) -> None:
    """keras.applications has no tiny model: check the contract on MobileNet v2, whose
    outputs are not comparable (Keras's own weights), which the cell must say."""
    from inferometer.models.resolve import resolve

    model = resolve("mobilenet_v2")
    assert runtimes.get("keras")().supports(model) is None
    job = _job(tmp_path, model, "keras", "function", 1, 1)
    report = spawn_worker(job, tmp_path / "log", 300, envs.python_for("keras"))
    assert report.status == "ok", report.error
    assert len(report.samples_ns) >= LENGTH.min_count
    assert not report.has_outputs
    assert report.settings["integrity"].startswith("n/a: keras.applications weights")
