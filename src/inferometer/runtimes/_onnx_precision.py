"""ONNX files derived from a model's ONNX file for reduced precision, made with onnxruntime's
tools and cached by the source's hash (and the calibration images' id for int8).

int8 comes in two flavours of static QDQ quantisation, per-channel int8 weights:
- "cpu": uint8 asymmetric activations, min-max calibration: what MLAS's u8s8 kernels run
  fastest (ONNX Runtime's CPU int8 variant).
- "tensorrt": int8 symmetric activations (zero point 0), entropy calibration: TensorRT takes
  only symmetric int8 Q/DQ, and its own calibrator was the entropy one.  TensorRT 11 removed
  implicit (calibrator) int8, so a calibrated QDQ file is how both TensorRT paths get int8.

fp16: float initialisers and tensors in half, float32 kept at the graph's inputs and outputs
(TensorRT 11 builds strongly typed networks only: precision comes from the file, not a flag).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..models.preprocess import calibration_feeds
from ..models.ref import ModelRef
from ..models.resolve import cache_dir, write_cached

# flavour -> (activation type, calibration method, symmetric activations); weights are
# always symmetric per-channel int8
_INT8 = {"cpu": ("QUInt8", "MinMax", False), "tensorrt": ("QInt8", "Entropy", True)}


def int8_path(model: ModelRef, flavour: str = "cpu") -> Path:
    if flavour == "dynamic":  # no calibration: the file depends on the source alone
        return cache_dir() / "converted" / "ort-int8-dynamic" / f"{model.sha256[:16]}.onnx"
    _, calib_id = calibration_feeds(model)
    folder = "ort-int8" if flavour == "cpu" else f"{flavour}-int8"
    return cache_dir() / "converted" / folder / f"{model.sha256[:16]}-{calib_id}.onnx"


def quantize_dynamic_int8(model: ModelRef) -> str:
    """Dynamic int8: int8 weights, activations quantised per batch at run time: the usual
    choice for transformers on the CPU (no calibration data, MatMulInteger kernels)."""
    out = int8_path(model, "dynamic")
    if out.exists():
        return f"cached in {out}"
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise _missing_onnxruntime("int8 quantisation", exc) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        q = Path(tmp) / "int8.onnx"
        quantize_dynamic(model.onnx_path, str(q), weight_type=QuantType.QInt8)
        os.replace(q, out)
    return "dynamic int8 (int8 weights, activations quantised per run)"


def fp16_path(model: ModelRef) -> Path:
    return cache_dir() / "converted" / "fp16" / f"{model.sha256[:16]}.onnx"


def _missing_onnxruntime(what: str, exc: ImportError) -> RuntimeError:
    return RuntimeError(f"{what} needs onnxruntime's tools ({exc}): pip install onnxruntime onnx")


def quantize_int8(model: ModelRef, flavour: str = "cpu") -> str:
    """Static int8 in QDQ format, calibrated on the model's calibration images.  (Dynamic
    quantisation is slower on the CPU: measured.)"""
    out = int8_path(model, flavour)
    if out.exists():
        return f"cached in {out}"
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise _missing_onnxruntime("int8 quantisation", exc) from exc

    activations, method, symmetric = _INT8[flavour]
    batches, calib_id = calibration_feeds(model)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict | None:
            return next(self._it, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(model.onnx_path, str(pre))
        except Exception:  # symbolic shape inference gives up on some dynamic-dim graphs
            # (BERT's attention masks): the rest of the pre-processing still applies
            quant_pre_process(model.onnx_path, str(pre), skip_symbolic_shape=True)
        q = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(q), _Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=getattr(QuantType, activations),
                        weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method),
                        extra_options={"ActivationSymmetric": symmetric,
                                       "WeightSymmetric": True})
        os.replace(q, out)
    kind = "symmetric int8" if symmetric else "uint8"
    return (f"static int8 (QDQ, per-channel weights, {kind} activations, {method} "
            f"calibration on {len(batches)} samples [{calib_id}])")


def convert_fp16(model: ModelRef) -> str:
    out = fp16_path(model)
    if out.exists():
        return f"cached in {out}"
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise _missing_onnxruntime("the fp16 conversion", exc) from exc
    half = convert_float_to_float16(onnx.load(model.onnx_path), keep_io_types=True)
    topological_sort(half.graph)  # the converter appends its input casts at the end
    onnx.checker.check_model(half)
    write_cached(out, half.SerializeToString())
    return "fp16 weights and tensors, float32 inputs and outputs (cast inside the graph)"


def topological_sort(graph: Any) -> None:
    """Reorder an ONNX graph's nodes so each comes after the producers of its inputs, as the
    ONNX spec (and TensorRT's parser) require (Kahn's algorithm)."""
    produced = {o: i for i, n in enumerate(graph.node) for o in n.output}
    waiting = [sum(1 for x in set(n.input) if x in produced) for n in graph.node]
    users: dict[int, list[int]] = {}
    for i, n in enumerate(graph.node):
        for x in set(n.input):
            if x in produced:
                users.setdefault(produced[x], []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in users.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(graph.node):
        raise ValueError("the ONNX graph has a cycle")
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)
