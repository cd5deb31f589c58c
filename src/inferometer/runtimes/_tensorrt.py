"""Native TensorRT on CUDA.  TensorRT's ONNX parser builds one engine per (model file, batch
size) for a one-image model, per (model file, every input's shape) for any other, cached on
disk under a key with TensorRT's version and the GPU's name: an engine runs only on the kind
of GPU and the TensorRT that built it.

Precision comes from the file, in a strongly typed network (the only kind TensorRT 11 builds;
it removed the fp16/int8 builder flags and the int8 calibrator): fp32 from the model's file,
fp16 from its half conversion, int8 from its calibrated symmetric-int8 QDQ conversion (entropy
calibration on the model's calibration images, as TensorRT's own calibrator did).  Those
conversions run once before the cells, like every runtime's; the engine is built at the first
load of each batch size, and the session says how long that took.

Device buffers, the copy in and the stream come from PyTorch's CUDA build, the GPU framework
the harness already drives.  TensorRT allocates its activation memory itself: NVML's device
figure includes it, PyTorch's figures do not."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir, write_cached
from ._onnx_precision import convert_fp16, fp16_path, int8_path, quantize_int8
from ._torch_cuda import CudaTimed, DeviceFeed, host_outputs, torch_cuda_missing
from .base import (
    Availability,
    LoadOptions,
    Variant,
    installed,
    per_shape_key,
    variant,
)

_CUDA = ("cuda",)


def model_file(model: ModelRef, variant: str) -> Path:
    """The ONNX file the engine of `variant` is built from."""
    if variant == "fp16":
        return fp16_path(model)
    if variant == "int8":
        return int8_path(model, "tensorrt")
    return Path(model.onnx_path)


def engine_path(model: ModelRef, variant: str, batch: int, trt_version: str,
                gpu: str, shapes: Mapping[str, Sequence[int]] | None = None) -> Path:
    source = model.sha256[:16] if variant == "fp32" else model_file(model, variant).stem
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", gpu).strip("-")
    shape = per_shape_key(model, shapes) or f"b{batch}"
    return (cache_dir() / "tensorrt-engines" /
            f"{source}-{variant}-{shape}-trt{trt_version}-{slug}.engine")


@functools.cache
def _logger(trt: Any) -> Any:
    """One logger per process: TensorRT warns when its builder and runtime get different ones."""
    return trt.Logger(trt.Logger.WARNING)


def build_engine(trt: Any, onnx_file: Path, shapes: Mapping[str, tuple[int, ...]]) -> bytes:
    """Parse the ONNX file and build a serialised engine for exactly `shapes` (every input's):
    one profile of one shape per dynamic input lets TensorRT pick the best kernels for that
    cell.  An input whose shape the file fixes takes no profile entry."""
    logger = _logger(trt)
    builder = trt.Builder(logger)
    typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if typed is None else 1 << int(typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_file}: {errors}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    dynamic = 0
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(d < 0 for d in tuple(tensor.shape)):
            if tensor.name not in shapes:
                raise RuntimeError(f"no shape for the engine's input '{tensor.name}'")
            shape = tuple(shapes[tensor.name])
            profile.set_shape(tensor.name, shape, shape, shape)
            dynamic += 1
    if dynamic:
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT built no engine from {onnx_file} (its log says why)")
    return bytes(plan)


def _torch_dtype(torch: Any, trt: Any, dtype: Any) -> Any:
    return torch.from_numpy(np.empty(0, trt.nptype(dtype))).dtype


class _TrtSession(CudaTimed):
    def __init__(self, torch: Any, trt: Any, plan: bytes, model: ModelRef,
                 shapes: Mapping[str, tuple[int, ...]], info: dict[str, str],
                 device: str = "cuda") -> None:
        super().__init__()
        self._torch = torch
        self._runtime = trt.Runtime(_logger(trt))  # must outlive its engine
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise RuntimeError("TensorRT could not load the cached engine; delete it to rebuild")
        self._engine = engine
        self._ctx = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        wanted = [i.name for i in model.io.inputs]
        if sorted(inputs) != sorted(wanted):
            raise RuntimeError(f"the engine's inputs are {inputs}, the model's {wanted}")
        self._in_names = wanted  # the feed's order
        for name in wanted:
            self._ctx.set_input_shape(name, tuple(shapes[name]))
        # outputs in the model's order where the engine has them all (it keeps ONNX names)
        outs = [n for n in names if n not in inputs]
        declared = [o.name for o in model.io.outputs]
        if sorted(declared) == sorted(outs):
            outs = declared
        self._outputs = []
        for name in outs:
            out = torch.empty(tuple(self._ctx.get_tensor_shape(name)), device=device,
                              dtype=_torch_dtype(torch, trt, engine.get_tensor_dtype(name)))
            self._ctx.set_tensor_address(name, out.data_ptr())
            self._outputs.append(out)
        dtypes = {n: _torch_dtype(torch, trt, engine.get_tensor_dtype(n)) for n in wanted}
        self._input = DeviceFeed(torch, model, torch.float32, channels_last=False,
                                 device=device, dtypes=dtypes)
        self._stream = torch.cuda.Stream()  # TensorRT warns against the default stream
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self._input(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        current = self._torch.cuda.current_stream()
        self._stream.wait_stream(current)  # the feed was written on the current stream
        start, end = self._event_pair()
        start.record(self._stream)
        for name, x in zip(self._in_names, feed, strict=True):
            self._ctx.set_tensor_address(name, x.data_ptr())
        if not self._ctx.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT's execute_async_v3 failed (its log says why)")
        end.record(self._stream)
        current.wait_stream(self._stream)
        return host_outputs(self._outputs)  # D2H: synchronises

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._ctx = self._engine = self._outputs = None  # type: ignore[assignment]


class TensorRT:
    name: ClassVar[str] = "tensorrt"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("fp32", "fp32", "engine from the model's ONNX file (TensorRT's default "
                "TF32 math)", _CUDA),
        Variant("fp16", "fp16", "engine from the fp16 conversion (float32 in and out)", _CUDA),
        Variant("int8", "int8", "engine from the calibrated symmetric-int8 QDQ conversion "
                "(entropy calibration)", _CUDA))
    default_variants: ClassVar[tuple[str, ...]] = ("fp32",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "fp32", "fp16": "fp16", "int8": "int8"}
    convert_variants: ClassVar[tuple[str, ...]] = ("fp16", "int8")
    device_notes: ClassVar[dict[str, str]] = {"cpu": "TensorRT runs on NVIDIA GPUs only"}

    def available(self) -> Availability:
        return installed("tensorrt", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12",
                                      "tensorrt_cu13", "tensorrt_cu12"),
                         "pip install tensorrt (on a machine with an NVIDIA GPU, beside a "
                         "CUDA build of torch and onnxruntime)")

    def version(self) -> str:
        import tensorrt
        return tensorrt.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    def device_unavailable(self, device: str) -> str | None:
        why = torch_cuda_missing()
        return f"its device buffers come from PyTorch: {why}" if why else None

    def convert(self, model: ModelRef, variant: str) -> str:
        return convert_fp16(model) if variant == "fp16" else quantize_int8(model, "tensorrt")

    def load(self, model: ModelRef, options: LoadOptions) -> _TrtSession:
        import tensorrt as trt
        import torch

        if options.dynamic_batch:
            raise NotImplementedError("a TensorRT engine is built here for one shape (batch "
                                      f"{options.batch}); dynamic batching needs every batch "
                                      "up to it")
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
        gpu = torch.cuda.get_device_name()
        shapes = dict(options.shapes)
        path = engine_path(model, options.variant, options.batch, trt.__version__, gpu,
                           shapes)
        if path.exists():
            how = f"loaded from the cache ({path.name})"
        else:
            t0 = time.perf_counter()
            write_cached(path, build_engine(trt, model_file(model, options.variant), shapes))
            how = f"built in {time.perf_counter() - t0:.1f} s, then cached ({path.name})"
        v = variant(self, options.variant)
        info = {"variant": v.help, "device": gpu, "tensorrt": trt.__version__,
                "engine": how, "precision": v.precision,
                "timed": "end to end: host inputs (an image as uint8) -> device -> engine -> "
                         "outputs on host; "
                         "device compute from CUDA events around execute_async_v3",
                "memory": "TensorRT's activation memory counts in NVML's device figure only"}
        return _TrtSession(torch, trt, path.read_bytes(), model, shapes, info)
