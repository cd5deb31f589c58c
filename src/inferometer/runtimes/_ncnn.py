"""Tencent ncnn, converted from the same ONNX export by pnnx (so integrity is comparable) and
cached by the ONNX file's content hash.  ncnn runs one item per extractor: a batch is a loop,
as ncnn applications do it.  Lives in its own environment (pnnx pulls in torch).

A one-image model converts once and is fed [C, H, W] per image.  Any other model converts per
item shape (pnnx bakes sequence lengths into its Gemm layers) at batch 1, so one conversion
serves every batch, dynamic batching included; each item is fed
with its leading 1 kept: pnnx keeps that axis for rank-3 activations, and a Mat without it is
broadcast wrongly ([5, 16] in, [5, 16, 16] out, measured).  ncnn has no int64: integer inputs
travel as int32 (its Embed layer reads int32), inputs in0..N and outputs out0..N in the
model's order."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays, Normalizer
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from ._onnx_edit import Shapes
from .base import Availability, LoadOptions, Variant, image_batch, installed, per_shape, shape_key

# variant -> net.opt settings
_OPTS = {
    "fp32": {"use_fp16_packed": False, "use_fp16_storage": False, "use_fp16_arithmetic": False,
             "use_bf16_storage": False},
    "fp16": {"use_fp16_packed": True, "use_fp16_storage": True, "use_fp16_arithmetic": True,
             "use_bf16_storage": False},
    "bf16": {"use_fp16_packed": False, "use_fp16_storage": False, "use_fp16_arithmetic": False,
             "use_bf16_storage": True},
}


def _pnnx_binary() -> str:
    spec = importlib.util.find_spec("pnnx")  # without importing it (that would import torch)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pnnx is not installed in this environment: inferometer env create ncnn")
    return os.path.join(next(iter(spec.submodule_search_locations)), "pnnx")

_PNNX_TYPES = {"float32": "", "float16": "f16", "int64": "i64", "int32": "i32", "int8": "i8",
               "uint8": "u8", "bool": "i8"}


def _inputshape(model: ModelRef, shapes: Shapes | None) -> tuple[str, str]:
    """pnnx's `inputshape=` argument and the cache key it makes: every input's shape for one
    item (batch 1), in the model's order."""
    if not per_shape(model):
        c, h, w = model.input_shape
        return f"[1,{c},{h},{w}]", f"{h}x{w}"
    if shapes is None:
        raise ValueError(f"{model.name} converts per cell shape: the shapes are needed")
    items = {i.name: (1, *shapes[i.name][1:]) for i in model.io.inputs}
    parts = []
    for i in model.io.inputs:
        shape = items[i.name]
        if len(shape) > 4:
            raise NotImplementedError(f"ncnn's Mat holds 4 dims; input '{i.name}' has "
                                      f"{len(shape)}")
        if i.tensor.dtype not in _PNNX_TYPES:
            raise NotImplementedError(f"pnnx takes no {i.tensor.dtype} input ('{i.name}')")
        parts.append(f"[{','.join(map(str, shape))}]{_PNNX_TYPES[i.tensor.dtype]}")
    return ",".join(parts), shape_key(items)


def _files(model: ModelRef, shapes: Shapes | None = None) -> tuple[Path, Path, Path]:
    key = _inputshape(model, shapes)[1]
    out = cache_dir() / "converted" / "ncnn" / f"{model.sha256[:16]}-{key}"
    return out, out / "model.ncnn.param", out / "model.ncnn.bin"


def _convert(model: ModelRef, shapes: Shapes | None = None) -> str:
    """ONNX -> ncnn param/bin, cached; pnnx writes fp32 weights with fp16=0."""
    inputshape, _ = _inputshape(model, shapes)
    out, param, weights = _files(model, shapes)
    if param.exists() and weights.exists():
        _refuse_unknown_layers(param)  # a file cached before this check was made
        return f"cached in {out}"
    t0 = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent))
    try:
        shutil.copy(model.onnx_path, work / "model.onnx")
        r = subprocess.run([_pnnx_binary(), "model.onnx", f"inputshape={inputshape}",
                            "fp16=0"], cwd=work, capture_output=True, text=True)
        if r.returncode != 0 or not (work / "model.ncnn.param").exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            why = ""
            if "out of data bounds" in r.stdout + r.stderr:
                why = ("; pnnx infers shapes by running the model on random integers, which "
                       "overrun a small embedding table (segment ids): ")
            raise RuntimeError(f"pnnx failed (exit {r.returncode}){why or ': '}{tail[0]}")
        _refuse_unknown_layers(work / "model.ncnn.param")
        final = work / "final"
        final.mkdir()
        for name in ("model.ncnn.param", "model.ncnn.bin"):
            shutil.move(str(work / name), final / name)
        with contextlib.suppress(OSError):  # another worker converted it meanwhile
            final.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    at = f" at {inputshape}" if per_shape(model) else ""
    return f"converted by pnnx{at} in {time.monotonic() - t0:.1f} s"


def _refuse_unknown_layers(param: Path) -> None:
    """pnnx writes the ops it cannot lower under their torch names (torch.where, IsNaN): ncnn
    then refuses the whole file with no reason given, so name them at conversion instead."""
    import ncnn

    lines = param.read_text().splitlines()[2:]  # magic, then layer and blob counts
    unknown = sorted({t for t in (ln.split()[0] for ln in lines if ln.strip())
                      if ncnn.layer_to_index(t) < 0})
    if unknown:
        raise NotImplementedError(f"pnnx left ops ncnn has no layer for: {unknown}")


class _NcnnSession:
    def __init__(self, ncnn: Any, net: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._ncnn = ncnn
        self._net = net
        self._named = per_shape(model)
        self._names = [i.name for i in model.io.inputs]
        self._ranks = [len(o.shape) for o in model.io.outputs]
        self._norm = Normalizer.of(model)
        self._arrays = ModelArrays(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        # ncnn.Mat(ndarray) wraps the buffer without owning it: the arrays must live as long
        # as the Mats, so the feed carries both.
        if not self._named:
            x = self._norm.nchw(image_batch(inputs))
            return x, [[self._ncnn.Mat(img)] for img in x]
        arrays = self._arrays(inputs)
        host = [np.ascontiguousarray(arrays[n].astype(
            np.int32 if arrays[n].dtype.kind in "iub" else np.float32, copy=False))
            for n in self._names]
        items = len(host[0])
        return host, [[self._ncnn.Mat(x[k:k + 1]) for x in host] for k in range(items)]

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        per_item: list[list[np.ndarray]] = []
        for mats in feed[1]:
            ex = self._net.create_extractor()
            for k, mat in enumerate(mats):
                ex.input(f"in{k}", mat)
            if not self._named:
                _, out = ex.extract("out0")
                per_item.append([np.array(out).reshape(1, -1)])
                continue
            outs = []
            for j, rank in enumerate(self._ranks):
                _, out = ex.extract(f"out{j}")
                y = np.array(out)
                outs.append(y.reshape((1,) * (rank - y.ndim) + y.shape))  # the axes ncnn drops
            per_item.append(outs)
        return [np.concatenate(ys) for ys in zip(*per_item, strict=True)]

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._net = None


class Ncnn:
    name: ClassVar[str] = "ncnn"
    environment: ClassVar[str] = "ncnn"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("fp32", "fp32", "fp32 storage and arithmetic (strict)"),
        Variant("fp16", "fp16", "fp16 packed storage and arithmetic"),
        Variant("bf16", "bf16", "bf16 storage"))
    default_variants: ClassVar[tuple[str, ...]] = ("fp32",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}

    def available(self) -> Availability:
        return installed("ncnn", ("ncnn",), "inferometer env create ncnn")

    def version(self) -> str:
        import ncnn
        return ncnn.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    converts_per_shape = staticmethod(per_shape)

    def convert(self, model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
        # one fp32 file serves every variant: precision is a load option
        return _convert(model, shapes)

    def load(self, model: ModelRef, options: LoadOptions) -> _NcnnSession:
        import ncnn

        _, param, weights = _files(model, dict(options.shapes))
        if not param.exists():
            raise FileNotFoundError(f"{model.name} has no pnnx conversion in {param.parent} "
                                    "(the runner converts before the cells)")
        opts = _OPTS[options.variant]
        net = ncnn.Net()
        for key, value in opts.items():
            setattr(net.opt, key, value)
        if options.threads is not None:
            net.opt.num_threads = options.threads
        if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
            raise RuntimeError(f"ncnn could not load {param}")
        info = {"num_threads": str(net.opt.num_threads), "model": str(param),
                **{k: str(v) for k, v in opts.items()}}
        return _NcnnSession(ncnn, net, model, info)
