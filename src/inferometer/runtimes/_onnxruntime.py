"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import Normalizer
from ..models.ref import ModelRef
from .base import Availability, LoadOptions, Variant, installed

_LEVELS = {"default": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
           "basic": "ORT_ENABLE_BASIC", "disabled": "ORT_DISABLE_ALL"}


class _OrtSession:
    def __init__(self, sess: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._sess = sess
        self._norm = Normalizer(model)
        self._input = model.input_name
        self._info = info

    def prepare(self, batch: np.ndarray) -> Any:
        return {self._input: self._norm.nchw(batch)}

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        return self._sess.run(None, feed)

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._sess = None


class OnnxRuntime:
    name: ClassVar[str] = "onnxruntime"
    variants: ClassVar[tuple[Variant, ...]] = tuple(
        Variant(k, "fp32", f"graph optimization level {v}") for k, v in _LEVELS.items())
    default_variants: ClassVar[tuple[str, ...]] = ("default",)

    def available(self) -> Availability:
        return installed("onnxruntime", ("onnxruntime", "onnxruntime-openvino",
                                         "onnxruntime-gpu"), "pip install onnxruntime")

    def version(self) -> str:
        import onnxruntime
        return onnxruntime.__version__

    def supports(self, model: ModelRef) -> str | None:
        return None

    def load(self, model: ModelRef, options: LoadOptions) -> _OrtSession:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                              _LEVELS[options.variant])
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if options.threads is not None:
            so.intra_op_num_threads = options.threads
        sess = ort.InferenceSession(model.onnx_path, so, providers=["CPUExecutionProvider"])
        info = {"providers": ",".join(sess.get_providers()),
                "graph_optimization_level": _LEVELS[options.variant],
                "intra_op_num_threads": str(options.threads or "default"),
                "inter_op_num_threads": "1", "execution_mode": "ORT_SEQUENTIAL"}
        return _OrtSession(sess, model, info)
