"""Tencent ncnn, converted from the same ONNX export by pnnx (so integrity is comparable) and
cached by the ONNX file's content hash.  ncnn runs one image per extractor: a batch is a loop,
as ncnn applications do it.  Lives in its own environment (pnnx pulls in torch)."""

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

from ..models.preprocess import Normalizer
from ..models.ref import ModelRef, image_only
from ..models.resolve import cache_dir
from .base import Availability, LoadOptions, Variant, image_batch, installed

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


def _files(model: ModelRef) -> tuple[Path, Path, Path]:
    _, h, w = model.input_shape
    out = cache_dir() / "converted" / "ncnn" / f"{model.sha256[:16]}-{h}x{w}"
    return out, out / "model.ncnn.param", out / "model.ncnn.bin"


def _convert(model: ModelRef) -> str:
    """ONNX -> ncnn param/bin, cached; pnnx writes fp32 weights with fp16=0."""
    c, h, w = model.input_shape
    out, param, weights = _files(model)
    if param.exists() and weights.exists():
        return f"cached in {out}"
    t0 = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent))
    try:
        shutil.copy(model.onnx_path, work / "model.onnx")
        r = subprocess.run([_pnnx_binary(), "model.onnx", f"inputshape=[1,{c},{h},{w}]",
                            "fp16=0"], cwd=work, capture_output=True, text=True)
        if r.returncode != 0 or not (work / "model.ncnn.param").exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"pnnx failed (exit {r.returncode}): {tail[0]}")
        final = work / "final"
        final.mkdir()
        for name in ("model.ncnn.param", "model.ncnn.bin"):
            shutil.move(str(work / name), final / name)
        with contextlib.suppress(OSError):  # another worker converted it meanwhile
            final.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return f"converted by pnnx in {time.monotonic() - t0:.1f} s"


class _NcnnSession:
    def __init__(self, ncnn: Any, net: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._ncnn = ncnn
        self._net = net
        self._norm = Normalizer.of(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        batch = image_batch(inputs)
        x = self._norm.nchw(batch)
        # ncnn.Mat(ndarray) wraps the buffer without owning it: the arrays must live as long
        # as the Mats, so the feed carries both.
        return x, [self._ncnn.Mat(img) for img in x]

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        outs = []
        for mat in feed[1]:
            ex = self._net.create_extractor()
            ex.input("in0", mat)
            _, out = ex.extract("out0")
            outs.append(np.array(out).reshape(-1))
        return [np.stack(outs)]

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
        return image_only(model, self.name)

    def convert(self, model: ModelRef, variant: str) -> str:
        return _convert(model)  # one fp32 file serves every variant: precision is a load option

    def load(self, model: ModelRef, options: LoadOptions) -> _NcnnSession:
        import ncnn

        _, param, weights = _files(model)
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
