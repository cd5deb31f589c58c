"""OpenVINO on the CPU plugin, reading the ONNX file directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import Normalizer
from ..models.ref import ModelRef
from .base import Availability, LoadOptions, Variant, installed

# variant -> (performance hint, inference precision hint)
_VARIANTS = {"latency": ("LATENCY", "f32"), "throughput": ("THROUGHPUT", "f32"),
             "bf16": ("LATENCY", "bf16"), "throughput_bf16": ("THROUGHPUT", "bf16")}
_REPORTED = ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS",
             "NUM_STREAMS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING")


class _OvSession:
    def __init__(self, compiled: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._request = compiled.create_infer_request()
        self._norm = Normalizer(model)
        self._info = info

    def prepare(self, batch: np.ndarray) -> Any:
        return self._norm.nchw(batch)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        self._request.infer({0: feed})
        return [self._request.get_output_tensor(0).data]

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._request = None


class OpenVino:
    name: ClassVar[str] = "openvino"
    variants: ClassVar[tuple[Variant, ...]] = tuple(
        Variant(k, "bf16" if p == "bf16" else "fp32", f"{h} hint, {p} precision")
        for k, (h, p) in _VARIANTS.items())
    default_variants: ClassVar[tuple[str, ...]] = ("latency",)

    def available(self) -> Availability:
        return installed("openvino", ("openvino",), "pip install openvino")

    def version(self) -> str:
        import openvino
        return openvino.get_version()

    def supports(self, model: ModelRef) -> str | None:
        return None

    def load(self, model: ModelRef, options: LoadOptions) -> _OvSession:
        import openvino as ov

        hint, precision = _VARIANTS[options.variant]
        core = ov.Core()
        net = core.read_model(model.onnx_path)
        # A static batch lets the CPU plugin pick its kernels once, as benchmark_app does.
        net.reshape({net.inputs[0].get_any_name(): [options.batch, *model.input_shape]})
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision}
        if options.threads is not None:
            config["INFERENCE_NUM_THREADS"] = options.threads
        compiled = core.compile_model(net, "CPU", config)
        info = {}
        for key in _REPORTED:
            try:
                info[key] = str(compiled.get_property(key))
            except RuntimeError:
                continue
        return _OvSession(compiled, model, info)
