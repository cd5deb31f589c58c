"""PyTorch sessions on a CUDA device.

Two figures per run, as GPU benchmarks report them:
- end to end (the harness's host clock): host uint8 NHWC buffer -> device -> normalised input ->
  model -> result copied back to the host.  `run` returns only after that copy, which
  synchronises the device, so the host clock brackets finished work.
- device compute only: CUDA events recorded around the model call on the same stream, read
  after the run (reading them inside the timed loop would add host round trips).

CUDA graphs: captured once at load on a side stream after a few warm-up calls (cuDNN picks its
algorithms and the allocator settles before capture), then each run copies the input into the
graph's static input buffer and replays the graph: one launch instead of one per kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..models.ref import ModelRef
from .base import LoadOptions, Variant, image_batch

_GRAPH_WARMUP = 3


def torch_cuda_missing() -> str | None:
    """Why the installed PyTorch cannot drive a CUDA device (None when it may), read from its
    package metadata: importing torch in the orchestrator would cost seconds."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "PyTorch is not installed; install a CUDA build of torch for --device cuda"
    if version.endswith("+cpu"):
        return (f"this PyTorch is a CPU-only build ({version}); install a CUDA build of "
                "torch for --device cuda")
    return None


class DeviceInput:
    """A host uint8 NHWC batch -> normalised NCHW on the device: the copy moves uint8 (a
    quarter of the bytes of float32) and the normalisation runs on the GPU."""

    def __init__(self, torch: Any, model: ModelRef, dtype: Any, channels_last: bool,
                 device: str = "cuda") -> None:
        self._torch = torch
        self._dev = torch.device(device)
        std = torch.tensor(model.std, device=self._dev).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._shift = -torch.tensor(model.mean, device=self._dev).view(1, 3, 1, 1) / std
        self._dtype = dtype
        self._format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, batch: np.ndarray) -> Any:
        x = self._torch.from_numpy(batch).to(self._dev).permute(0, 3, 1, 2).float()
        x = (x * self._scale + self._shift).to(self._dtype)
        return x.contiguous(memory_format=self._format)


class CudaTimed:
    """What every CUDA session reports besides the host clock: the device time of each run
    from a pair of CUDA events (read after the loop: reading them inside it would add host
    round trips), and framework and driver memory."""

    _torch: Any

    def __init__(self) -> None:
        self._events: list[tuple[Any, Any]] = []

    def _event_pair(self) -> tuple[Any, Any]:
        cuda = self._torch.cuda
        pair = (cuda.Event(enable_timing=True), cuda.Event(enable_timing=True))
        self._events.append(pair)
        return pair

    def device_samples_ns(self) -> list[int]:
        """Device time of each run so far (model call only), from the CUDA events."""
        self._torch.cuda.synchronize()
        return [int(s.elapsed_time(e) * 1e6) for s, e in self._events]

    def reset_device_samples(self) -> None:
        self._events.clear()

    def device_memory_mb(self) -> dict[str, float]:
        from ..measure.gpu import nvml_memory_mb, torch_memory_mb

        allocated, reserved = torch_memory_mb(self._torch)
        return {"torch_peak_allocated": allocated, "torch_peak_reserved": reserved,
                **nvml_memory_mb(self._torch.cuda.current_device())}


class TorchCudaSession(CudaTimed):
    def __init__(self, torch: Any, fn: Any, model: ModelRef, recipe: Any, batch: int,
                 info: dict[str, str]) -> None:
        super().__init__()
        self._torch = torch
        self._recipe = recipe
        self._dev = torch.device("cuda")
        self._dtype = torch.float16 if recipe.fp16 else torch.float32
        self._input = DeviceInput(torch, model, self._dtype, recipe.channels_last)
        self._fn = fn
        self._info = info
        self._graph = None
        self._static_in = self._static_out = None
        if recipe.cuda_graph:
            self._capture(batch, model)

    def _call(self, x: Any) -> Any:
        torch = self._torch
        # No autocast weight cache: PyTorch advises it off under graph capture, and a convnet
        # casts each weight once per call anyway.
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16,
                                                   enabled=self._recipe.bf16,
                                                   cache_enabled=False):
            return self._fn(x)

    def _capture(self, batch: int, model: ModelRef) -> None:
        torch = self._torch
        fmt = torch.channels_last if self._recipe.channels_last else torch.contiguous_format
        static = torch.zeros(batch, *model.input_shape, device=self._dev,
                             dtype=self._dtype).contiguous(memory_format=fmt)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_GRAPH_WARMUP):
                self._call(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._call(static)
        self._graph, self._static_in, self._static_out = graph, static, out

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        batch = image_batch(inputs)
        return self._input(batch)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        start, end = self._event_pair()
        start.record()
        if self._graph is not None:
            self._static_in.copy_(feed)  # type: ignore[attr-defined]
            self._graph.replay()
            y = self._static_out
        else:
            y = self._call(feed)
        end.record()
        return [y.float().cpu().numpy()]  # type: ignore[union-attr]  # D2H: synchronises

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._graph = self._fn = None


def load_cuda(torch: Any, net: Any, model: ModelRef, recipe: Any, options: LoadOptions,
              v: Variant) -> TorchCudaSession:
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    net = net.to(dev)
    if recipe.fp16:
        net = net.half()
    if recipe.channels_last:
        net = net.to(memory_format=torch.channels_last)
    call: Any = net
    if recipe.compile:
        call = torch.compile(net)
    info = {"variant": v.help, "device": torch.cuda.get_device_name(dev),
            "cuda": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version()),
            "precision": recipe.precision,
            "autocast": "bf16" if recipe.bf16 else "off",
            "timed": "end to end: host uint8 -> device -> output on host; device compute "
                     "from CUDA events"}
    if recipe.compile:
        info["compile"] = "first inference includes torch.compile's compilation"
    return TorchCudaSession(torch, call, model, recipe, options.batch, info)
