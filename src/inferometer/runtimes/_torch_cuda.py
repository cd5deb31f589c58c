"""PyTorch sessions on a CUDA device.

Two figures per run, as GPU benchmarks report them:
- end to end (the harness's host clock): host inputs (an image as a uint8 NHWC buffer) ->
  device -> normalised input -> model -> every output copied back to the host.  `run`
  returns only after that copy, which synchronises the device, so the host clock brackets
  finished work.
- device compute only: CUDA events recorded around the model call on the same stream, read
  after the run (reading them inside the timed loop would add host round trips).

CUDA graphs: captured once at load on a side stream after a few warm-up calls (cuDNN picks its
algorithms and the allocator settles before capture), then each run copies the input into the
graph's static input buffers and replays the graph: one launch instead of one per kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..models.ref import ModelRef
from .base import LoadOptions, Variant

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


class DeviceFeed:
    """Every named host input -> its device tensor, in the model's input order.  An image is
    copied as uint8 and normalised on the device (`DeviceInput`); any other input is copied in
    its own dtype, except floats, which take the session's float dtype when it has one (a half
    model takes half inputs; None keeps them as they are).  `dtypes` overrides per input (a
    TensorRT engine states each one).  The CPU torch session uses it too, on device "cpu"."""

    def __init__(self, torch: Any, model: ModelRef, float_dtype: Any, channels_last: bool,
                 device: str = "cuda", dtypes: Mapping[str, Any] | None = None) -> None:
        self._torch = torch
        self._dev = torch.device(device)
        self._names = [i.name for i in model.io.inputs]
        dtypes = dict(dtypes or {})
        image_dtype = float_dtype or torch.float32
        self._images = {i.name: DeviceInput(torch, model, dtypes.get(i.name, image_dtype),
                                            channels_last, device)
                        for i in model.io.inputs if i.is_image}
        self._float, self._dtypes = float_dtype, dtypes
        self._channels_last = channels_last

    def _tensor(self, name: str, value: np.ndarray) -> Any:
        if name in self._images:
            return self._images[name](value)
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(value)).to(self._dev)
        want = self._dtypes.get(name, self._float if x.is_floating_point() else None)
        if want is not None and x.dtype != want:
            x = x.to(want)
        if self._channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
        return tuple(self._tensor(n, inputs[n]) for n in self._names)


def host_outputs(y: Any) -> list[np.ndarray]:
    """A device result (a tensor, or a tuple/list of them) -> host arrays in order; reduced
    precision floats come back as float32.  The copies synchronise the device."""
    items = y if isinstance(y, (tuple, list)) else (y,)
    return [(t.float() if t.is_floating_point() else t).cpu().numpy() for t in items]


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
    def __init__(self, torch: Any, fn: Any, model: ModelRef, recipe: Any,
                 shapes: Mapping[str, tuple[int, ...]], info: dict[str, str],
                 device: str = "cuda") -> None:
        super().__init__()
        self._torch = torch
        self._recipe = recipe
        self._dtype = torch.float16 if recipe.fp16 else torch.float32
        self._feed = DeviceFeed(torch, model, self._dtype, recipe.channels_last, device)
        self._fn = fn
        self._info = info
        self._graph = None
        self._static_in: tuple[Any, ...] = ()
        self._static_out: Any = None
        if recipe.cuda_graph:
            self._capture(model, shapes)

    def _call(self, xs: tuple[Any, ...]) -> Any:
        torch = self._torch
        # No autocast weight cache: PyTorch advises it off under graph capture, and a convnet
        # casts each weight once per call anyway.
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16,
                                                   enabled=self._recipe.bf16,
                                                   cache_enabled=False):
            return self._fn(*xs)

    def _capture(self, model: ModelRef, shapes: Mapping[str, tuple[int, ...]]) -> None:
        from ..models.inputs import generate_all

        torch = self._torch
        # the static buffers start from the generated inputs: valid token ids and masks, so
        # the warm-up calls run the model as it will run
        static = self._feed(generate_all(model.io, shapes))  # model shapes in, host arrays out
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
        return self._feed(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        start, end = self._event_pair()
        start.record()
        if self._graph is not None:
            for buf, x in zip(self._static_in, feed, strict=True):
                buf.copy_(x)
            self._graph.replay()
            y = self._static_out
        else:
            y = self._call(feed)
        end.record()
        return host_outputs(y)

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._graph = self._fn = None


def load_cuda(torch: Any, net: Any, model: ModelRef, recipe: Any, options: LoadOptions,
              v: Variant) -> TorchCudaSession:
    if recipe.cuda_graph and options.dynamic_batch:
        raise NotImplementedError("a CUDA graph replays the one batch size it captured; "
                                  "dynamic batching needs every batch up to the max")
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    net = net.to(dev)
    if recipe.fp16:
        net = net.half()
    if recipe.channels_last and not model.torch_program:  # a program's layout is fixed
        net = net.to(memory_format=torch.channels_last)
    call: Any = net
    if recipe.compile:
        call = torch.compile(net)
    info = {"variant": v.help, "device": torch.cuda.get_device_name(dev),
            "cuda": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version()),
            "precision": recipe.precision,
            "autocast": "bf16" if recipe.bf16 else "off",
            "timed": "end to end: host inputs (an image as uint8) -> device -> outputs on "
                     "host; device compute from CUDA events"}
    if recipe.compile:
        info["compile"] = "first inference includes torch.compile's compilation"
    return TorchCudaSession(torch, call, model, recipe, dict(options.shapes), info)
