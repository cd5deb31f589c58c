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
from inferometer.runtimes.base import needs_conversion
from inferometer.scenarios import RunLength
from inferometer.spawn import spawn_worker

LENGTH = RunLength(warmup=1, min_time_s=0.02, min_count=3, max_time_s=0.2)


HAS_CUDA = bool(cuda_devices())
# Limits of a runtime version itself, checked as such: the cell fails with the runtime's own
# reason, never a wrong result.  ONNX Runtime 1.20 has no int8-weight ConvInteger kernel, and
# its environment holds no onnx for the quantiser (a file converted elsewhere is cached).
KNOWN_GAPS = {("onnxruntime@1.20.1", "int8_dynamic"): ("ConvInteger", "No module named 'onnx'")}


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
         device: str = "cpu", dims: tuple = ()) -> Job:
    return Job(spec=CellSpec(model.name, name, variant, threads, batch, device, dims),
               model=model, length=LENGTH, preprocess_timed=True, pin=False,
               report_path=str(tmp / f"{name}.{variant}.report.json"),
               outputs_path=str(tmp / f"{name}.{variant}.npz"))


def outputs(job: Job) -> list[np.ndarray]:
    with np.load(job.outputs_path) as f:
        return [f[f"arr_{k}"] for k in range(len(f.files))]


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("ref")
    job = _job(tmp, tiny, "onnxruntime", "default", 1, 2)
    report = spawn_worker(job, tmp / "log", timeout_s=120)
    assert report.status == "ok", report.error
    return outputs(job)[0]


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
    gap = KNOWN_GAPS.get((name, variant))
    if needs_conversion(rt, variant):  # the runner converts once before the cells; so do we
        conv = spawn_worker(replace(job, mode="convert"), tmp_path / "convert.log", 600, python)
        if gap and conv.status != "ok":
            assert any(g in (conv.error or "") for g in gap), conv
            return
        assert conv.status == "ok", conv.error
        assert conv.settings["conversion"]
    report = spawn_worker(job, tmp_path / "log", timeout_s=300, python=python)
    if gap:
        assert report.status == "failed" and any(g in (report.error or "") for g in gap), report
        return
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
    out = outputs(job)[0]
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


def _generic_models(tmp: Path) -> dict:  # type: ignore[type-arg]
    from onnx_models import two_input_model

    from inferometer.models.resolve import resolve

    return {"two_inputs": resolve(str(two_input_model(tmp / "two_inputs.onnx"))),
            "tinybert": resolve("tinybert")}


# The runtimes whose modules claim any model the ONNX form allows: they must run both.
RUN_ANY_MODEL = {"onnxruntime", "onnxruntime_openvino", "openvino", "torch", "tensorflow",
                 "tflite", "jax", "tvm", "paddle", "null"}
# Those whose converters lack a transformer's operators but feed and return any tensors.
RUN_MULTI_IO = {"mxnet", "ncnn"}


def _default_cases() -> list:
    """Each runtime's default variant on the CPU, and every CUDA variant (skipped without a
    CUDA device): torch on CUDA and TensorRT take any model too."""
    return [p for p in _cases()
            if p.values[2] != "cpu"
            or p.values[1] == runtimes.get(p.values[0]).default_variants[0]]


@pytest.fixture(scope="module")
def generic(tmp_path_factory) -> tuple:  # type: ignore[type-arg]
    """Token-input and two-input/two-output models with ONNX Runtime's outputs on them."""
    tmp = tmp_path_factory.mktemp("generic")
    models = _generic_models(tmp)
    refs = {}
    for key, model in models.items():
        job = _job(tmp, model, "onnxruntime", "default", 1, 2, dims=(("seq", 5),))
        report = spawn_worker(job, tmp / f"{key}.log", timeout_s=120)
        assert report.status == "ok", report.error
        refs[key] = outputs(job)
    return models, refs


@pytest.mark.parametrize(("name", "variant", "device"), _default_cases())
@pytest.mark.parametrize("key", ["two_inputs", "tinybert"])
def test_generic_model_contract(name: str, variant: str, device: str, key: str, generic,  # type: ignore[no-untyped-def]
                                tmp_path: Path) -> None:
    """Every runtime present runs a token-input model and a two-input, two-output model with
    every output matching ONNX Runtime's, or refuses it up front with a reason that names
    what it cannot take: never a wrong result, never a crash."""
    from inferometer.integrity import compare_outputs

    models, refs = generic
    model = models[key]
    rt = runtimes.get(name)()
    why_not = rt.supports(model)
    if why_not:  # said up front, so the plan leaves the cells out with this reason
        assert why_not.strip(), name
        pytest.skip(f"{name} refuses {key}: {why_not}")
    job = _job(tmp_path, model, name, variant, 1, 2, device, dims=(("seq", 5),))
    python = envs.python_for(name)
    report = None
    if needs_conversion(rt, variant):
        conv = spawn_worker(replace(job, mode="convert"), tmp_path / "convert.log", 600, python)
        if conv.status != "ok":
            report = conv
    report = report or spawn_worker(job, tmp_path / "log", timeout_s=300, python=python)
    base = name.partition("@")[0]
    must_run = (base in RUN_ANY_MODEL or (key == "two_inputs" and base in RUN_MULTI_IO)
                or device != "cpu")
    if report.status != "ok" and not must_run:
        # a converter that cannot take the model: a failed cell with the runtime's own
        # reason, raised inside a stage (not a crash, a hang or a wrong result)
        assert (report.error or "").startswith(("conversion:", "load:", "first inference:")), \
            report.error
        pytest.xfail(f"{name} cannot run {key}: {report.error}")
    assert report.status == "ok", (report.error, (tmp_path / "log").read_text()[-2000:])
    if name == "null" or getattr(rt, "integrity_note", None):
        return
    got = outputs(job)
    assert [g.shape for g in got] == [r.shape for r in refs[key]]
    verdict = compare_outputs(got, refs[key], report.precision, "onnxruntime",
                              [o.name for o in model.io.outputs],
                              [o.kind for o in model.io.outputs])
    assert verdict.passed and len(verdict.outputs) == len(model.io.outputs), verdict
