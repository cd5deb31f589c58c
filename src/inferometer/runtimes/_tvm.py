"""Apache TVM (Relax), compiled from the same ONNX export for the host CPU (LLVM with the
host's -mcpu, so AVX-512 is used where the CPU has it) and cached as a shared library.

The default Relax pipeline applies no schedules to CPU kernels: untuned, a ResNet-50 takes
seconds per image.  That is TVM's honest out-of-the-box number and is labelled `untuned`.
Threads: TVM_NUM_THREADS, set by the runner before the worker starts.

A one-image model compiles once with its batch symbolic.  Any other model compiles per cell
shape, from the ONNX file with its inputs fixed and simplified by onnxsim: the Relax frontend
cannot read a transformer's dynamic shape arithmetic (ConstantOfShape on a computed shape:
"broadcast_to expects the input shape to have the number of ndim at least as the input
tensor's"), and reads the folded graph.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from ._onnx_edit import Shapes, static_graph
from .base import (
    Availability,
    LoadOptions,
    Variant,
    installed,
    per_shape,
    per_shape_key,
    refuse_dynamic_batch,
)


def _host_cpu() -> str:
    import tvm

    return tvm.target.codegen.llvm_get_system_cpu()


def _target() -> dict[str, Any]:
    return {"kind": "llvm", "mcpu": _host_cpu()}


def _lib(model: ModelRef, variant: str, shapes: Shapes | None = None) -> Path:
    stem = f"{model.sha256[:16]}-{variant}-{_host_cpu()}"
    if key := per_shape_key(model, shapes):
        stem += f"-{key}"
    return cache_dir() / "converted" / "tvm" / f"{stem}.so"


def _compile(model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
    lib = _lib(model, variant, shapes)
    if lib.exists():
        return f"cached in {lib}"
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    t0 = time.monotonic()
    if per_shape(model):
        graph = static_graph(model.onnx_path, shapes or {})
    else:  # batch stays symbolic: one library serves every batch
        graph = onnx.load(model.onnx_path)
    inits = {t.name for t in graph.graph.initializer}
    # the order main() takes its inputs in (onnxsim may drop one the graph does not use)
    names = [i.name for i in graph.graph.input if i.name not in inits]
    mod = from_onnx(graph, keep_params_in_input=True)
    mod, params = relax.frontend.detach_params(mod)
    executable = tvm.compile(mod, tvm.target.Target(_target()))
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
    os.close(fd)
    executable.export_library(tmp)
    np.savez(str(lib) + ".params.npz", *[p.numpy() for p in params["main"]])
    Path(str(lib) + ".inputs.json").write_text(json.dumps(names))
    os.replace(tmp, lib)
    at = f" at {dict(shapes or {})}" if per_shape(model) else ""
    return f"compiled for {_host_cpu()}{at} in {time.monotonic() - t0:.1f} s"


class _TvmSession:
    def __init__(self, tvm: Any, vm: Any, params: list, model: ModelRef, names: list[str],
                 info: dict[str, str]) -> None:
        self._tvm = tvm
        self._vm = vm
        self._params = params
        self._arrays = ModelArrays(model)
        self._names = names
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        arrays = self._arrays(inputs)
        return [self._tvm.runtime.tensor(arrays[n]) for n in self._names]

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        out = self._vm["main"](*feed, *self._params)
        items = [out] if hasattr(out, "numpy") else list(out)  # several outputs: a tuple
        return [o.numpy() for o in items]  # numpy() copies to the host after the work

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._vm = None


class Tvm:
    name: ClassVar[str] = "tvm"
    environment: ClassVar[str] = "tvm"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("untuned", "fp32", "Relax default pipeline, no tuning (naive CPU schedules)"),)
    default_variants: ClassVar[tuple[str, ...]] = ("untuned",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "untuned"}

    def available(self) -> Availability:
        return installed("tvm", ("apache-tvm",), "inferometer env create tvm")

    def version(self) -> str:
        import tvm
        return tvm.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    converts_per_shape = staticmethod(per_shape)

    def convert(self, model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
        return _compile(model, variant, shapes)

    def load(self, model: ModelRef, options: LoadOptions) -> _TvmSession:
        import tvm
        from tvm import relax

        refuse_dynamic_batch(model, options, self.name)
        lib = _lib(model, options.variant, dict(options.shapes))
        if not lib.exists():
            raise FileNotFoundError(f"{model.name} has no TVM library {lib.name} "
                                    "(the runner compiles before the cells)")
        inputs = Path(str(lib) + ".inputs.json")  # libraries compiled before it was written
        names = (json.loads(inputs.read_text()) if inputs.exists()
                 else [i.name for i in model.io.inputs])
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib)), tvm.cpu())
        with np.load(str(lib) + ".params.npz") as f:
            params = [tvm.runtime.tensor(f[k]) for k in sorted(f.files,
                                                                key=lambda k: int(k[4:]))]
        info = {"target": str(_target()), "TVM_NUM_THREADS":
                os.environ.get("TVM_NUM_THREADS", "default"), "library": lib.name}
        return _TvmSession(tvm, vm, params, model, names, info)

