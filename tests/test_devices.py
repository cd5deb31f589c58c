"""Devices: what needs no GPU (selection, reasons, providers, the device-timing plumbing) runs
everywhere; the CUDA runs themselves run only where a CUDA device exists."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
from conftest import QUICK, cli

from inferometer.errors import UsageError
from inferometer.measure.gpu import cuda_devices
from inferometer.plan import expand, select_runtimes
from inferometer.report.write import write_report
from inferometer.runtimes._onnxruntime import gpu_providers

HAS_CUDA = bool(cuda_devices())


@pytest.fixture
def cuda_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the installed torch is a CUDA build (selection only; nothing runs)."""
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda d: "2.11.0+cu128" if d == "torch" else real(d))


def test_variants_times_precisions_on_cuda(cuda_torch: None) -> None:
    notes: list[str] = []
    got = select_runtimes("torch", "eager,channels_last,cuda_graph,compile", "fp32,fp16,bf16",
                          "cuda", notes)
    assert got[0].variants == ("eager", "fp16", "bf16", "channels_last", "channels_last_fp16",
                               "cuda_graph", "cuda_graph_fp16", "cuda_graph_bf16", "compile",
                               "compile_fp16", "compile_bf16")
    assert "torch: no bf16 form of variant channels_last on cuda" in notes


def test_precisions_map_to_the_device_s_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",  # as if onnxruntime-gpu were installed
                        lambda d: "1.22.0" if d == "onnxruntime-gpu" else real(d))
    got = select_runtimes("onnxruntime", None, "fp32,fp16,int8", "cuda")
    assert got[0].variants == ("cuda", "tensorrt_fp16", "tensorrt_int8")


def test_cuda_cells_have_their_own_ids(cuda_torch: None, tiny) -> None:  # type: ignore[no-untyped-def]
    choices = select_runtimes("torch", "cuda_graph", None, "cuda")
    cells, _ = expand([tiny], choices, (None,), (8, 50), "cuda")
    assert [c.id for c in cells] == ["tinynet.torch.cuda_graph.tauto.b8.cuda",
                                     "tinynet.torch.cuda_graph.tauto.b50.cuda"]


def test_cpu_only_variants_are_not_offered_on_cuda(cuda_torch: None) -> None:
    with pytest.raises(UsageError, match="unknown variant 'jit_freeze' on cuda"):
        select_runtimes("torch", "jit_freeze", None, "cuda")
    with pytest.raises(UsageError, match="has no variant 'cuda_graph'; valid"):
        select_runtimes("torch:cuda_graph", None, None, "cpu")


def test_precisions_pick_per_device_variants_on_the_cpu() -> None:
    got = {c.name: c.variants for c in select_runtimes("torch,onnxruntime", "compile",
                                                       "fp32,bf16")}
    assert got["torch"] == ("compile", "compile_bf16")
    assert got["onnxruntime"] == ("default",)  # no compile variant: its default, in fp32 only


def test_reasons_a_runtime_cannot_use_cuda() -> None:
    if not importlib.metadata.version("torch").endswith("+cpu"):
        pytest.skip("a CUDA build of torch is installed")
    with pytest.raises(UsageError, match=r"torch' cannot run on cuda: this PyTorch is a "
                                         r"CPU-only build \(2\.13\.0\+cpu\)"):
        select_runtimes("torch", None, None, "cuda")
    with pytest.raises(UsageError, match="openvino' cannot run on cuda: OpenVINO's GPU plugin "
                                         "runs on Intel GPUs"):
        select_runtimes("openvino", None, None, "cuda")
    with pytest.raises(UsageError, match="pip install onnxruntime-gpu"):
        select_runtimes("onnxruntime", None, None, "cuda")


def _listing_row(stdout: str, name: str) -> tuple[list[str], str]:
    """A runtime's row of `inferometer runtimes`: its cells, and its wrapped text in full."""
    lines = stdout.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith(name + " "))
    block = [lines[i]]
    for ln in lines[i + 1:]:
        if not ln.startswith(" "):
            break
        block.append(ln)
    return lines[i].split(), " ".join(" ".join(ln.split()) for ln in block)


def test_runtimes_listing_says_why_not_cuda() -> None:
    r = cli("runtimes")
    assert r.returncode == 0
    cells, text = _listing_row(r.stdout, "torch")
    assert "cpu: eager" in text and "cuda: eager" in text and "cuda_graph" in text
    if not HAS_CUDA:
        assert cells[3] == "no"
        assert "cuda: this PyTorch is a CPU-only build" in text
    # a runtime never meant for CUDA: no reason repeated on its row
    cells, text = _listing_row(r.stdout, "null")
    assert cells[1:4] == ["0.1.0", "yes", "-"] and "cuda" not in text
    # every line fits a wide terminal: long cells wrap
    assert max(len(ln) for ln in r.stdout.splitlines()) <= 200


def test_onnxruntime_gpu_providers() -> None:
    assert [p[0] for p in gpu_providers("cuda", "/c")] == ["CUDAExecutionProvider"]
    trt = gpu_providers("tensorrt_fp16", "/c")
    assert [p[0] for p in trt] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert trt[0][1]["trt_fp16_enable"] == "True"
    assert trt[0][1]["trt_engine_cache_path"] == "/c"
    assert gpu_providers("tensorrt", "/c")[0][1]["trt_fp16_enable"] == "False"
    assert gpu_providers("tensorrt_int8", "/c")[0][1]["trt_int8_enable"] == "True"
    # the int8 engine is built from the calibrated QDQ file: converted before the cells
    from inferometer.runtimes._onnxruntime import OnnxRuntime
    from inferometer.runtimes.base import needs_conversion

    assert needs_conversion(OnnxRuntime, "tensorrt_int8")
    assert not needs_conversion(OnnxRuntime, "tensorrt_fp16")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_run_on_cuda_without_a_gpu_is_one_line() -> None:
    r = cli("run", "resnet50", "--device", "cuda")
    assert r.returncode == 2
    assert r.stderr.strip() == ("inferometer: error: no CUDA device found (nvidia-smi -L lists "
                                "none and there is no /dev/nvidia*); use --device cpu")
    r = cli("run", "resnet50", "--device", "tpu")
    assert r.returncode == 2 and "--device: unknown 'tpu'" in r.stderr
    r = cli("accuracy", "digits", "--device", "cuda")
    assert r.returncode == 2 and r.stderr.startswith("inferometer: error: no CUDA device found")


def test_device_timings_and_memory_reach_the_results(fakes: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "accel", "--threads", "1", "--output", str(out),
            *QUICK)
    assert r.returncode == 0, r.stderr
    cell = json.loads((out / "results.json").read_text())["cells"][0]
    # one device sample per measured run (warm-up and the first call excluded)
    assert cell["device_summary"]["count"] == cell["summary"]["count"]
    assert cell["device_summary"]["min_ms"] == pytest.approx(0.001)
    assert cell["device_memory_mb"] == {"torch_peak_allocated": 12.5}
    header, row = (out / "results.csv").read_text().splitlines()[:2]
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert values["device"] == "cpu" and float(values["device_p50_ms"]) == pytest.approx(
        cell["device_summary"]["p50_ms"])
    assert float(values["gpu_peak_allocated_mb"]) == 12.5 and values["gpu_device_used_mb"] == ""
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("device compute"))
    assert line.startswith("device compute accel/default b=1: p50 0.001 ms of ")
    assert line.endswith("items/s on the device; GPU MB torch peak allocated 12")
    write_report(out)
    md = (out / "report.md").read_text()
    assert ("| runtime/variant | precision | batch | best threads | p50 ms | p99 ms "
            "| spread | device p50 ms |") in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| accel/default |"))
    assert row.split(" | ")[7] == f"{cell['device_summary']['p50_ms']:.3f}"


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here")
def test_torch_on_cuda_end_to_end(tmp_path: Path) -> None:  # pragma: no cover - GPU only
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--device", "cuda", "--runtimes", "torch", "--variants",
            "eager,cuda_graph", "--precisions", "fp32,fp16", "--threads", "auto", "--batch",
            "1,8", "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert len(cells) == 8
    for c in cells:
        assert c["status"] == "ok" and c["integrity"]["passed"], c
        assert c["device_summary"]["p50_ms"] <= c["summary"]["p50_ms"]
        assert c["device_memory_mb"]["torch_peak_allocated"] > 0


def test_a_precision_the_device_lacks_is_refused(cuda_torch: None) -> None:
    notes: list[str] = []
    with pytest.raises(UsageError, match="no selected runtime has a int8 variant on cuda"):
        select_runtimes("torch", None, "int8", "cuda", notes)
    assert notes == ["leaving out torch: no int8 variant on cuda"]
    with pytest.raises(UsageError, match="no selected runtime has a fp16 variant"):
        select_runtimes("openvino", None, "fp16")  # and on the CPU: no fp16 variant


def test_device_input_matches_the_host_normalisation(tiny) -> None:  # type: ignore[no-untyped-def]
    """The uint8 copy + on-device normalisation every CUDA session starts from, run on the CPU
    (same torch code, another device) against the numpy path the CPU runtimes use."""
    import numpy as np
    import torch

    from inferometer.models.preprocess import Normalizer, make_images
    from inferometer.runtimes._torch_cuda import DeviceInput

    images = make_images(2, *tiny.input_shape[1:])
    want = Normalizer.of(tiny).nchw(images)
    got = DeviceInput(torch, tiny, torch.float32, channels_last=False, device="cpu")(images)
    assert got.shape == want.shape and got.is_contiguous()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    half = DeviceInput(torch, tiny, torch.float16, channels_last=True, device="cpu")(images)
    assert half.dtype == torch.float16
    assert half.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(half.float().numpy(), want, rtol=1e-2, atol=1e-2)


def test_device_feed_takes_every_input_in_its_own_dtype(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    """The feed every CUDA session (torch, TensorRT) builds, run on the CPU: a multi-input
    model's float input takes the session's float dtype, its token ids stay int64, the order is
    the model's; an engine's stated dtypes win; an image is normalised as before."""
    import numpy as np
    import torch
    from onnx_models import two_input_model

    from inferometer.models.inputs import generate_all
    from inferometer.models.preprocess import Normalizer, make_images
    from inferometer.models.resolve import resolve
    from inferometer.runtimes._torch_cuda import DeviceFeed, host_outputs

    two = resolve(str(two_input_model(tmp_path / "two.onnx")))
    host = generate_all(two.io, two.io.bind(2, {"seq": 16}))
    x, ids = DeviceFeed(torch, two, torch.float16, channels_last=False, device="cpu")(host)
    assert x.dtype == torch.float16 and ids.dtype == torch.int64 and ids.shape == (2, 16)
    np.testing.assert_array_equal(ids.numpy(), host["ids"])
    np.testing.assert_allclose(x.float().numpy(), host["x"], rtol=1e-3, atol=1e-3)
    stated = DeviceFeed(torch, two, torch.float32, channels_last=False, device="cpu",
                        dtypes={"ids": torch.int32})(host)
    assert [t.dtype for t in stated] == [torch.float32, torch.int32]
    images = make_images(2, *tiny.input_shape[1:])
    (img,) = DeviceFeed(torch, tiny, torch.float32, channels_last=True,
                        device="cpu")({tiny.input_name: images})
    assert img.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(img.numpy(), Normalizer.of(tiny).nchw(images), rtol=1e-5,
                               atol=1e-5)
    outs = host_outputs((torch.ones(2, 4, dtype=torch.float16), torch.arange(3)))
    assert [o.dtype for o in outs] == [np.float32, np.int64]


def _torch_with_cuda_stood_in(replays: list[int]):  # type: ignore[no-untyped-def]
    """Real torch on the CPU, its CUDA calls (events, streams, graphs) stood in: a replay
    is counted, not run, so a graph's outputs stay those of its capture."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    import torch

    stream = SimpleNamespace(wait_stream=lambda s: None)
    event = SimpleNamespace(record=lambda *a: None, elapsed_time=lambda e: 1.0)
    cuda = SimpleNamespace(
        Event=lambda enable_timing: event, Stream=lambda: stream,
        current_stream=lambda: stream, stream=lambda s: nullcontext(),
        CUDAGraph=lambda: SimpleNamespace(replay=lambda: replays.append(1)),
        graph=lambda g: nullcontext(), synchronize=lambda: None)

    class TorchOnCpu:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return cuda if name == "cuda" else getattr(torch, name)

    return TorchOnCpu()


def test_torch_cuda_session_captures_every_input(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    """The CUDA session's own logic, without a GPU: a CUDA graph's static buffers come from
    the generated inputs at the cell's shapes (an image's NCHW shape -> its NHWC host
    array -> NCHW on the device), each run copies every input into them before the replay,
    and every output comes back on the host in its dtype."""
    import numpy as np
    import torch
    from onnx_models import two_input_model

    from inferometer.models.inputs import generate_all
    from inferometer.models.resolve import resolve
    from inferometer.runtimes._torch import _RECIPES
    from inferometer.runtimes._torch_cuda import TorchCudaSession

    replays: list[int] = []
    fake = _torch_with_cuda_stood_in(replays)
    two = resolve(str(two_input_model(tmp_path / "two.onnx")))
    shapes = two.io.bind(2, {"seq": 16})
    session = TorchCudaSession(fake, lambda x, ids: (x * 2, ids + 1), two,
                               _RECIPES["cuda_graph"], shapes, {}, device="cpu")
    assert [tuple(b.shape) for b in session._static_in] == [(2, 8), (2, 16)]
    host = generate_all(two.io, shapes)
    doubled, shifted = session.run(session.prepare(host))
    assert replays == [1] and len(session.device_samples_ns()) == 1
    for buf, name in zip(session._static_in, ("x", "ids"), strict=True):
        np.testing.assert_array_equal(buf.numpy(), host[name])
    assert doubled.dtype == np.float32 and shifted.dtype == np.int64
    np.testing.assert_allclose(doubled, host["x"] * 2, rtol=1e-6)
    np.testing.assert_array_equal(shifted, host["ids"] + 1)
    image = tiny.io.bind(3, {})
    session = TorchCudaSession(fake, lambda x: x.mean(dim=(2, 3)), tiny,
                               _RECIPES["cuda_graph"], image, {}, device="cpu")
    (static,) = session._static_in
    assert tuple(static.shape) == image[tiny.input_name]
    assert static.is_contiguous(memory_format=torch.channels_last)
    eager = TorchCudaSession(fake, lambda x: x.mean(dim=(2, 3)), tiny, _RECIPES["eager"],
                             image, {}, device="cpu")
    (out,) = eager.run(eager.prepare(generate_all(tiny.io, image)))
    assert out.shape == (3, 3) and replays == [1]


def test_onnxruntime_io_binding_session(tiny) -> None:  # type: ignore[no-untyped-def]
    """The IO-binding session the CUDA variants use, bound to the CPU (same ORT calls, another
    device): same outputs as a plain session, one device figure per run."""
    import numpy as np

    from inferometer.models.preprocess import make_images
    from inferometer.runtimes._onnxruntime import OnnxRuntime
    from inferometer.runtimes.base import LoadOptions

    rt, opts = OnnxRuntime(), LoadOptions("default", 1, 2)
    plain = rt._load(tiny, opts, "ORT_ENABLE_ALL", ["CPUExecutionProvider"])
    bound = rt._load(tiny, opts, "ORT_ENABLE_ALL", ["CPUExecutionProvider"], bound="cpu")
    images = make_images(2, *tiny.input_shape[1:])
    name = tiny.input_name
    want = plain.run(plain.prepare({name: images}))[0]
    feed = bound.prepare({name: images})
    assert feed[name].device_name() == "cpu"
    for _ in range(3):
        got = bound.run(feed)
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-6)
    assert len(bound.device_samples_ns()) == 3 and min(bound.device_samples_ns()) > 0
    bound.reset_device_samples()
    bound.run(bound.prepare({name: images[::-1].copy()}))
    assert len(bound.device_samples_ns()) == 1
    flipped = bound.prepare({name: images[::-1].copy()})
    assert not np.allclose(bound.run(feed)[0], bound.run(flipped)[0])


def test_nvml_memory_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML's device and per-process figures, through a stand-in of nvidia-ml-py's API."""
    import os
    import sys
    from types import SimpleNamespace

    from inferometer.measure.gpu import nvml_memory_mb

    class NVMLError(Exception):
        pass

    calls: list[str] = []
    procs = [SimpleNamespace(pid=1, usedGpuMemory=5 * 2**20),
             SimpleNamespace(pid=os.getpid(), usedGpuMemory=300 * 2**20)]
    fake = SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=1024 * 2**20),
        nvmlDeviceGetComputeRunningProcesses=lambda h: procs)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert nvml_memory_mb(0) == {"nvml_device_used": 1024.0, "nvml_process_used": 300.0}
    assert calls == ["init", "shutdown"]
    procs[1].usedGpuMemory = None  # the driver cannot attribute memory (containers)
    assert nvml_memory_mb(0) == {"nvml_device_used": 1024.0}

    def no_gpu() -> None:
        raise NVMLError("NVML Shared Library Not Found")
    fake.nvmlInit = no_gpu
    assert nvml_memory_mb(0) == {}
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: import fails
    assert nvml_memory_mb(0) == {}
