"""Apache MXNet 1.9.1 through its ONNX importer and the Module API.  Lives in its own
environment: it imports only with numpy<1.24.  Threads come from OMP_NUM_THREADS, which the
runner sets before the worker starts.  Any model the importer takes runs: every graph input
is bound at the cell's shape and dtype (an image as normalised NCHW float), every output is
returned; an op the importer lacks fails the cell at load with the importer's message."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays
from ..models.ref import ModelRef, onnx_missing
from ._onnx_edit import inline_constant_identities
from .base import Availability, LoadOptions, Variant, installed


class _MXSession:
    def __init__(self, mx: Any, mod: Any, model: ModelRef, names: Sequence[str],
                 info: dict[str, str]) -> None:
        self._mx = mx
        self._mod = mod
        self._arrays = ModelArrays(model)
        self._names = names  # the module's data names, in its binding order
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        arrays = self._arrays(inputs)
        nd = self._mx.nd
        return self._mx.io.DataBatch([nd.array(arrays[n], dtype=arrays[n].dtype)
                                      for n in self._names])

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        self._mod.forward(feed, is_train=False)
        return [o.asnumpy() for o in self._mod.get_outputs()]  # asnumpy() waits for the engine

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._mod = None


def _for_mxnet(path: str) -> str:
    """A temporary copy of the file that MXNet 1.9's importer (written for opset <= 13) reads
    right; returns its path.  Four edits, each for something current exporters write:
    - Identity copies of weights become weights (see _onnx_edit);
    - PReLU slopes of shape [C,1,1] become [C]: the importer hands the slope to LeakyReLU as
      its gamma, which must be one value per channel ("Cannot broadcast gamma to data");
    - no `training_mode` attribute on BatchNormalization (opset 14), which the importer passes
      on to BatchNorm ("Cannot find argument 'training_mode'"); exporters fold most
      BatchNorms into a convolution, ArcFace's pre-activation blocks keep theirs;
    - every initializer also declared as a graph input, as the importer expects."""
    import onnx
    from onnx import helper

    proto = onnx.load(path)
    inline_constant_identities(proto)
    inits = {t.name: t for t in proto.graph.initializer}
    users: dict[str, set[str]] = {}
    for node in proto.graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.op_type)
    for node in proto.graph.node:
        slope = inits.get(node.input[1]) if node.op_type == "PRelu" else None
        if (slope is not None and users[slope.name] == {"PRelu"}
                and len(slope.dims) >= 2 and all(d == 1 for d in slope.dims[-2:])):
            channels = max(slope.dims)
            del slope.dims[:]
            slope.dims.append(channels)
        if node.op_type == "BatchNormalization":
            keep = [a for a in node.attribute
                    if not (a.name == "training_mode" and a.i == 0)]  # 0: inference, the default
            del node.attribute[:]
            node.attribute.extend(keep)
    declared = {i.name for i in proto.graph.input}
    for init in proto.graph.initializer:
        if init.name not in declared:
            proto.graph.input.append(
                helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    fd, out = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    onnx.save(proto, out)
    return out


def _refuse_unknown_ops(path: str, known: Mapping[str, Any]) -> None:
    """Name the ops the importer has no translation for: it would stop at the first one with
    a bare KeyError."""
    import onnx

    ops = {n.op_type for n in onnx.load(path, load_external_data=False).graph.node}
    unknown = sorted(ops - set(known))
    if unknown:
        raise NotImplementedError(f"MXNet's ONNX importer has no translation for {unknown}")


class MXNet:
    name: ClassVar[str] = "mxnet"
    environment: ClassVar[str] = "mxnet"
    variants: ClassVar[tuple[Variant, ...]] = (Variant("default", "fp32", "ONNX import, Module"),)
    default_variants: ClassVar[tuple[str, ...]] = ("default",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "default"}

    def available(self) -> Availability:
        return installed("mxnet", ("mxnet",), "inferometer env create mxnet")

    def version(self) -> str:
        import mxnet
        return mxnet.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    def load(self, model: ModelRef, options: LoadOptions) -> _MXSession:
        import mxnet as mx
        from mxnet.contrib import onnx as onnx_mxnet
        from mxnet.contrib.onnx.onnx2mx._import_helper import _convert_map

        fixed = _for_mxnet(model.onnx_path)
        try:
            _refuse_unknown_ops(fixed, _convert_map)
            sym, args, aux = onnx_mxnet.import_model(fixed)
        finally:
            os.unlink(fixed)
        data_names = [n for n in sym.list_inputs() if n not in args and n not in aux]
        shapes = dict(options.shapes)
        unknown = sorted(set(data_names) - set(shapes))
        if unknown:
            raise RuntimeError(f"MXNet's importer made inputs the model does not have: {unknown}"
                               f" (the model's: {sorted(shapes)})")
        dtypes = {i.name: np.dtype(i.tensor.dtype) for i in model.io.inputs}
        dtypes.update({i.name: np.dtype(np.float32) for i in model.io.inputs if i.is_image})
        mod = mx.mod.Module(symbol=sym, data_names=data_names, label_names=None,
                            context=mx.cpu())
        mod.bind(for_training=False,
                 data_shapes=[mx.io.DataDesc(n, shapes[n], dtypes[n]) for n in data_names])
        mod.set_params(args, aux, allow_missing=True, allow_extra=True)
        info = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "default"),
                "api": "mx.mod.Module", "context": "cpu"}
        return _MXSession(mx, mod, model, data_names, info)
