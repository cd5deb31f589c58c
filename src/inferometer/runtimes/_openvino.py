"""OpenVINO on the CPU plugin, reading the ONNX file directly."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays, calibration_feeds
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from .base import Availability, LoadOptions, Variant, installed

# variant -> (performance hint, inference precision hint)
_VARIANTS = {"latency": ("LATENCY", "f32"), "throughput": ("THROUGHPUT", "f32"),
             "bf16": ("LATENCY", "bf16"), "throughput_bf16": ("THROUGHPUT", "bf16"),
             "int8": ("LATENCY", "f32")}


def _int8_path(model: ModelRef) -> Path:
    cid = calibration_feeds(model)[1]
    return cache_dir() / "converted" / "ov-int8" / f"{model.sha256[:16]}-{cid}" / "model.xml"


def quantize_int8(model: ModelRef) -> str:
    """NNCF post-training quantisation (the default mixed int8 preset; the transformer model
    type for models without an image input, which keeps attention's softmax and layer norms
    in float), calibrated on the model's calibration data, saved as OpenVINO IR."""
    out = _int8_path(model)
    if out.exists():
        return f"cached in {out.parent}"
    import nncf
    import openvino as ov

    feeds, cid = calibration_feeds(model)
    net = ov.Core().read_model(model.onnx_path)
    extra = {} if model.io.has_image else {"model_type": nncf.ModelType.TRANSFORMER}
    quantized = nncf.quantize(net, nncf.Dataset(feeds), subset_size=len(feeds), **extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.xml")
    ov.save_model(quantized, str(tmp))
    os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(tmp, out)
    kind = "" if model.io.has_image else " (transformer preset)"
    return f"NNCF int8 post-training quantisation{kind} on {len(feeds)} samples [{cid}]"
_REPORTED = ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS",
             "NUM_STREAMS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING")


class _OvSession:
    def __init__(self, compiled: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._request = compiled.create_infer_request()
        self._arrays = ModelArrays(model)
        self._outputs = len(compiled.outputs)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self._arrays(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        self._request.infer(feed)
        return [self._request.get_output_tensor(k).data for k in range(self._outputs)]

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._request = None


class OpenVino:
    name: ClassVar[str] = "openvino"
    # Why there is no cuda variant (said by `runtimes` and by --device cuda).
    device_notes: ClassVar[dict[str, str]] = {
        "cuda": "OpenVINO's GPU plugin runs on Intel GPUs, not on NVIDIA CUDA devices"}
    variants: ClassVar[tuple[Variant, ...]] = (
        *(Variant(k, "bf16" if p == "bf16" else "fp32", f"{h} hint, {p} precision")
          for k, (h, p) in _VARIANTS.items() if k != "int8"),
        Variant("int8", "int8", "NNCF post-training int8, LATENCY hint"))
    default_variants: ClassVar[tuple[str, ...]] = ("latency",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "latency", "bf16": "bf16", "int8": "int8"}
    convert_variants: ClassVar[tuple[str, ...]] = ("int8",)

    def convert(self, model: ModelRef, variant: str) -> str:
        return quantize_int8(model)

    def available(self) -> Availability:
        return installed("openvino", ("openvino",), "pip install openvino")

    def version(self) -> str:
        import openvino
        return openvino.get_version()

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    def deploy_snippet(self, variant: str, threads: int | None) -> str:
        """The compile settings a cell of `variant` used, for a user's own server."""
        hint, precision = _VARIANTS[variant]
        config = f'"PERFORMANCE_HINT": "{hint}", "INFERENCE_PRECISION_HINT": "{precision}"'
        if threads is not None:
            config += f', "INFERENCE_NUM_THREADS": {threads}'
        lines = ["import openvino as ov", "core = ov.Core()"]
        if variant == "int8":
            lines += ["# the NNCF int8 IR: inferometer's cache, converted/ov-int8/",
                      'net = core.read_model("model.xml")']
        else:
            lines.append('net = core.read_model("model.onnx")')
        return "\n".join([*lines, f'compiled = core.compile_model(net, "CPU", {{{config}}})',
                          "request = compiled.create_infer_request()  # one per process"])

    def load(self, model: ModelRef, options: LoadOptions) -> _OvSession:
        import openvino as ov

        hint, precision = _VARIANTS[options.variant]
        core = ov.Core()
        quantized = options.variant == "int8"
        net = core.read_model(str(_int8_path(model)) if quantized else model.onnx_path)
        # Static shapes let the CPU plugin pick its kernels once, as benchmark_app does with
        # -shape/-data_shape: every input reshaped to the cell's shape.
        # With dynamic batching the leading dim is bounded instead, 1..batch.
        shapes: dict[str, Any] = {k: list(v) for k, v in options.shapes}
        if options.dynamic_batch:
            shapes = {k: ov.PartialShape([ov.Dimension(1, options.batch), *v[1:]])
                      for k, v in shapes.items()}
        net.reshape({i.get_any_name(): shapes[i.get_any_name()] for i in net.inputs
                     if i.get_any_name() in shapes})
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision}
        if options.threads is not None:
            config["INFERENCE_NUM_THREADS"] = options.threads
        compiled = core.compile_model(net, "CPU", config)
        info = {}
        for key in _REPORTED:
            try:
                value = compiled.get_property(key)
            except RuntimeError:
                continue
            # an element type prints as "<Type: 'float32'>"; its name is OpenVINO's "f32"
            info[key] = value.get_type_name() if isinstance(value, ov.Type) else str(value)
        return _OvSession(compiled, model, info)
