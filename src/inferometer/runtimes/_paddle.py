"""PaddlePaddle inference (oneDNN on CPU), from the same ONNX export through x2paddle.

x2paddle accepts opset <= 15 and rejects MaxPool nodes that carry an explicit `dilations`
attribute, so the conversion first down-converts the opset and strips those attributes (they
are all 1 in the zoo).  x2paddle's feedback ping is disabled: nothing touches the network.

A one-image model converts once, batch dynamic.  Any other model converts per cell shape from
the graph with its inputs fixed and folded by onnxsim (x2paddle makes a parameter of shape
[-1] from a transformer's empty shape constant and fails), its LayerNormalization (opset 17)
spelled in opset-13 ops, and its Gathers with N-d indices flattened (paddle.gather takes 1-D
indices; the attention-mask gather has 4).  Every conversion spells a division by a constant
as a product (`constant_divisions_as_products`: Paddle's oneDNN divide overwrote its input).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from ._onnx_edit import (
    Shapes,
    constant_divisions_as_products,
    decompose_layernorm,
    flatten_gather_indices,
    static_graph,
)
from .base import (
    Availability,
    LoadOptions,
    Variant,
    installed,
    per_shape,
    per_shape_key,
    refuse_dynamic_batch,
)

_OPSET = 15
# Operators whose every change after opset 15 only widened the types they take: a graph whose
# newer operators are all of these means the same at opset 15 (onnx's converter has no
# adapter for some of them, Identity and GreaterOrEqual among them, and fails an assert).
_TYPES_ONLY = {"Identity", "Where", "GreaterOrEqual", "LessOrEqual", "LeakyRelu", "PRelu"}


_EDITS_VERSION = 2  # bump when the edits made before x2paddle change: caches then convert anew


def _out(model: ModelRef, shapes: Shapes | None = None) -> Path:
    key = f"{model.sha256[:16]}-v{_EDITS_VERSION}"
    if shape := per_shape_key(model, shapes):
        key += f"-{shape}"
    return cache_dir() / "converted" / "paddle" / key


def _model_files(out: Path) -> tuple[Path, Path]:
    base = out / "inference_model"
    for graph in ("model.json", "model.pdmodel"):  # Paddle 3 writes PIR json, Paddle 2 pdmodel
        if (base / graph).exists():
            return base / graph, base / "model.pdiparams"
    raise RuntimeError(f"no Paddle inference model under {base}")


def _refuse_newer_ops(proto: Any) -> None:
    """x2paddle reads opset <= 15; an operator first defined later (LayerNormalization is
    17) has no earlier form to convert to, and onnx's converter would only fail an assert."""
    import onnx

    newer = set()
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, _OPSET)
        except onnx.defs.SchemaError:
            newer.add(node.op_type)
    if newer:
        raise NotImplementedError(
            f"x2paddle reads ONNX opset <= {_OPSET}; {sorted(newer)} first appear in a later "
            "opset and have no earlier form")


def _opset(proto: Any) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _to_opset15(proto: Any) -> Any:
    import onnx
    from onnx import version_converter

    version = _opset(proto)
    if version <= _OPSET:
        return proto
    changed = {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")
               and onnx.defs.get_schema(n.op_type, version).since_version > _OPSET}
    if changed <= _TYPES_ONLY:
        for o in proto.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = _OPSET
        return proto
    return version_converter.convert_version(proto, _OPSET)


def _convert(model: ModelRef, shapes: Shapes | None = None) -> str:
    out = _out(model, shapes)
    if out.exists():
        return f"cached in {out}"
    import onnx
    from x2paddle.convert import onnx2paddle

    t0 = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent))
    try:
        if per_shape(model):
            proto = static_graph(model.onnx_path, shapes or {})
            if _opset(proto) <= 17:  # the ReduceMean it writes takes axes as an attribute
                decompose_layernorm(proto)
            flatten_gather_indices(proto)
        else:
            proto = onnx.load(model.onnx_path)
        constant_divisions_as_products(proto)
        _refuse_newer_ops(proto)
        proto = _to_opset15(proto)
        for node in proto.graph.node:
            if node.op_type == "MaxPool":
                keep = [a for a in node.attribute if a.name != "dilations"]
                del node.attribute[:]
                node.attribute.extend(keep)
        onnx.save(proto, str(work / "model.onnx"))
        with contextlib.redirect_stdout(None):  # a line per node converted
            onnx2paddle(str(work / "model.onnx"), str(work / "out"), convert_to_lite=False,
                        disable_feedback=True)
        _model_files(work / "out")
        with contextlib.suppress(OSError):
            (work / "out").rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    at = f" at {dict(shapes or {})}" if per_shape(model) else ""
    return f"converted by x2paddle (opset {_OPSET}){at} in {time.monotonic() - t0:.1f} s"


def _input_names(predictor: Any, model: ModelRef) -> dict[str, str]:
    """The model's input names -> the predictor's.  x2paddle keeps a graph's input names,
    except where they are not valid Paddle variable names; then the order decides."""
    theirs = list(predictor.get_input_names())
    ours = [i.name for i in model.io.inputs]
    if set(ours) == set(theirs):
        return {n: n for n in ours}
    if len(ours) != len(theirs):
        raise RuntimeError(f"the converted model takes inputs {theirs}, the ONNX file {ours}")
    return dict(zip(ours, theirs, strict=True))


class _PaddleSession:
    def __init__(self, predictor: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._pred = predictor
        self._in = {ours: predictor.get_input_handle(theirs)
                    for ours, theirs in _input_names(predictor, model).items()}
        self._out = [predictor.get_output_handle(n) for n in predictor.get_output_names()]
        self._arrays = ModelArrays(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self._arrays(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        for name, handle in self._in.items():
            handle.reshape(feed[name].shape)
            handle.copy_from_cpu(feed[name])
        self._pred.run()
        return [o.copy_to_cpu() for o in self._out]

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._pred = None


class Paddle:
    name: ClassVar[str] = "paddle"
    environment: ClassVar[str] = "paddle"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("onednn", "fp32", "Paddle Inference, oneDNN (MKLDNN) enabled"),
        Variant("native", "fp32", "Paddle Inference without oneDNN"))
    default_variants: ClassVar[tuple[str, ...]] = ("onednn",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "onednn"}

    def available(self) -> Availability:
        return installed("paddle", ("paddlepaddle",), "inferometer env create paddle")

    def version(self) -> str:
        import paddle
        return paddle.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    converts_per_shape = staticmethod(per_shape)

    def convert(self, model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
        # one conversion serves both variants: oneDNN is a load option
        return _convert(model, shapes)

    def load(self, model: ModelRef, options: LoadOptions) -> _PaddleSession:
        from paddle import inference

        refuse_dynamic_batch(model, options, self.name)
        graph, params = _model_files(_out(model, dict(options.shapes)))
        config = inference.Config(str(graph), str(params))
        config.disable_gpu()
        if options.variant == "onednn":
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
        config.set_cpu_math_library_num_threads(options.threads or os.cpu_count() or 1)
        config.disable_glog_info()
        predictor = inference.create_predictor(config)
        info = {"onednn": str(config.mkldnn_enabled()),
                "cpu_math_threads": str(config.cpu_math_library_num_threads())}
        return _PaddleSession(predictor, model, info)
