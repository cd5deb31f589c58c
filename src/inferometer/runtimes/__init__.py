"""Runtime registry: built-ins, the `inferometer.runtimes` entry-point group, and the
INFEROMETER_RUNTIMES variable ("name=module:Class;...") for plug-ins without packaging
(the test suite's faulty runtimes use it).  Classes are imported only when asked for."""

from __future__ import annotations

import importlib
import importlib.metadata
import os

from ..errors import UsageError
from .base import Availability, LoadOptions, Runtime, Session, Variant

__all__ = ["Availability", "LoadOptions", "Runtime", "Session", "Variant", "get", "names"]

_BUILTIN = {
    "onnxruntime": "inferometer.runtimes._onnxruntime:OnnxRuntime",
    "openvino": "inferometer.runtimes._openvino:OpenVino",
    "torch": "inferometer.runtimes._torch:Torch",
    "null": "inferometer.runtimes._null:Null",
    "onnxruntime_openvino": "inferometer.runtimes._onnxruntime:OnnxRuntimeOpenVino",
    "mxnet": "inferometer.runtimes._mxnet:MXNet",
    "ncnn": "inferometer.runtimes._ncnn:Ncnn",
    "tensorflow": "inferometer.runtimes._tensorflow:TensorFlow",
    "tflite": "inferometer.runtimes._tensorflow:LiteRT",
    "keras": "inferometer.runtimes._tensorflow:Keras",
    "tvm": "inferometer.runtimes._tvm:Tvm",
    "paddle": "inferometer.runtimes._paddle:Paddle",
    "jax": "inferometer.runtimes._jax:Jax",
    "tensorrt": "inferometer.runtimes._tensorrt:TensorRT",
    # Rows of the studies that cannot run on these machines keep their place, with the reason.
    "onnxruntime_dnnl": "inferometer.runtimes._unavailable:OnnxRuntimeDnnl",
    "caffe2": "inferometer.runtimes._unavailable:Caffe2",
    "oneflow": "inferometer.runtimes._unavailable:OneFlow",
}


def _specs() -> dict[str, str]:
    specs = dict(_BUILTIN)
    for ep in importlib.metadata.entry_points(group="inferometer.runtimes"):
        specs[ep.name] = ep.value
    for item in filter(None, os.environ.get("INFEROMETER_RUNTIMES", "").split(";")):
        name, _, target = item.partition("=")
        specs[name.strip()] = target.strip()
    return specs


def names() -> list[str]:
    return list(_specs())


def get(name: str) -> type[Runtime]:
    """The class for `name`; 'onnxruntime@1.20.1' is onnxruntime run in another environment."""
    name = name.partition("@")[0]
    specs = _specs()
    if name not in specs:
        raise UsageError(f"unknown runtime '{name}'; valid: {', '.join(specs)}")
    module, _, cls = specs[name].partition(":")
    return getattr(importlib.import_module(module), cls)
