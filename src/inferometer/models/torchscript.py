"""The user's TorchScript module (`torch.jit.save`, usually .pt).  Its code is TorchScript, run
by PyTorch's own interpreter, and `torch.jit.load` rebuilds only TorchScript types: loading it
runs no Python from the file, unlike a `torch.save` pickle, which is refused.

TorchScript keeps no input shapes or dtypes; `torch.jit.trace` stores its example inputs in
the archive (traced_inputs.pkl).  They are read here by an unpickler that builds nothing but
(dtype, shape) pairs, and become the I/O description: the leading dim, when every input
shares it, is the batch; the rest stay as traced.  A scripted module (no example inputs) is
refused with the way out.  Like a .pt2 program, the module is exported once to ONNX (cached by
the file's hash) so every other runtime runs the same weights."""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .export import file_sha256
from .io import Dim, Input, ModelIO, Tensor, output_kind
from .onnxfile import default_values
from .ref import ModelRef
from .torchfile import export_onnx

_EXPORT_VERSION = 1  # bump when the ONNX export settings change
_STORAGE_DTYPES = {"FloatStorage": "float32", "DoubleStorage": "float64",
                   "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                   "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                   "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive holds code/ and constants.pkl; a torch.save zip holds neither."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("/constants.pkl")
                                                     for n in names)


class _Shapes(pickle.Unpickler):
    """Reads traced_inputs.pkl into (dtype, shape) pairs without building a tensor or calling
    anything the file names, beyond the four functions such a file uses."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch.jit._pickle", "restore_type_tag"):
            return lambda value, _tag: value
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, _offset, size, *_rest: (storage, tuple(size))
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"traced inputs name {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return pid[1]  # ('storage', dtype, key, location, numel): the dtype


def traced_inputs(path: Path) -> list[tuple[str, tuple[int, ...]]] | None:
    """The (dtype, shape) of each example input `forward` was traced with; None when the
    archive keeps none."""
    with zipfile.ZipFile(path) as z:
        found = [n for n in z.namelist() if n.endswith("/traced_inputs.pkl")]
        if not found:
            return None
        data = z.read(found[0])
    try:
        stored = _Shapes(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{path}: its traced inputs are not plain tensors ({exc})") from None
    forward = stored.get("forward") if isinstance(stored, dict) else None
    if not forward or not all(isinstance(t, tuple) and len(t) == 2 for t in forward):
        return None
    return list(forward)


def load_script(path: str) -> Any:
    import torch

    try:
        return torch.jit.load(path, map_location="cpu").eval()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path}: not a TorchScript archive PyTorch loads "
                         f"({type(exc).__name__}: {first[:200]})") from None


def _examples(torch: Any, traced: list[tuple[str, tuple[int, ...]]]) -> tuple[Any, ...]:
    # zeros are valid indices and masks alike; the export reads the graph, not the values
    return tuple(torch.zeros(shape, dtype=getattr(torch, dtype)) for dtype, shape in traced)


def _outputs(result: Any) -> list[Any]:
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    if not all(hasattr(t, "shape") and hasattr(t, "dtype") for t in items):
        raise ModelError("the module's forward returns something other than tensors "
                         f"({type(result).__name__})")
    return items


def _traced(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    traced = traced_inputs(path)
    if traced is None:
        raise ModelError(f"{path}: this TorchScript module keeps no example inputs "
                         "(torch.jit.script, or traced with _store_inputs=False), so its input "
                         "shapes and dtypes are unknown: save it with torch.jit.trace, or as a "
                         "torch.export program (.pt2)")
    return traced


def describe_script(path: Path, module: Any,
                    traced: list[tuple[str, tuple[int, ...]]]) -> ModelIO:
    """The module's I/O from its traced inputs and one forward pass on them; values by name
    and dtype (the caller refines them from the ONNX export)."""
    import torch

    names = [a.name for a in module.forward.schema.arguments[1:]]
    if len(names) != len(traced):
        raise ModelError(f"{path}: forward takes {names} but was traced with "
                         f"{len(traced)} inputs")
    leads = {shape[0] for _, shape in traced if shape}
    batch = "batch" if len(leads) == 1 and all(shape for _, shape in traced) else None
    lead = next(iter(leads)) if batch else None

    def dims(shape: tuple[int, ...]) -> tuple[Dim, ...]:
        if batch and shape and shape[0] == lead:
            return (batch, *shape[1:])
        return tuple(shape)

    with torch.no_grad():
        outs = _outputs(module(*_examples(torch, traced)))
    inputs = []
    for name, (dtype, shape) in zip(names, traced, strict=True):
        t = Tensor(name, dtype, dims(shape))
        inputs.append(Input(t, default_values(None, t)))
    plain = [Tensor(f"output_{k}", str(o.dtype).removeprefix("torch."), dims(tuple(o.shape)))
             for k, o in enumerate(outs)]
    outputs = tuple(replace(t, kind=output_kind(t, len(plain))) for t in plain)
    return ModelIO(tuple(inputs), outputs, batch)


def _export(module: Any, io_desc: ModelIO, traced: list[tuple[str, tuple[int, ...]]],
            out: Path) -> str | None:
    """The TorchScript exporter (the dynamo one cannot take a ScriptModule); None when it
    worked, else the exporter's message."""
    import torch

    names = [i.name for i in io_desc.inputs]
    outs = [o.name for o in io_desc.outputs]
    dynamic = {n: {0: "batch"} for n in names + outs} if io_desc.batch_dim else None
    return export_onnx(out, lambda f: torch.onnx.export(
        module, _examples(torch, traced), f, dynamo=False, input_names=names,
        output_names=outs, dynamic_axes=dynamic, opset_version=17))


def inspect_script(path: Path, cache: Path) -> ModelRef:
    if not path.is_file():
        raise ModelError(f"cannot read model file {path}: no such file")
    module = load_script(str(path))
    traced = _traced(path)
    io_desc = describe_script(path, module, traced)
    sha = file_sha256(path)
    onnx_path = cache / "models" / f"ts-{sha[:16]}-v{_EXPORT_VERSION}" / "model.onnx"
    error = None if onnx_path.exists() else _export(module, io_desc, traced, onnx_path)
    if error is None:  # the export shows which integer inputs index an embedding table
        import onnx

        proto = onnx.load(str(onnx_path), load_external_data=False)
        io_desc = replace(io_desc, inputs=tuple(replace(i, values=default_values(proto, i.tensor))
                                                for i in io_desc.inputs))
    return ModelRef(name=path.stem, onnx_path=str(onnx_path), io=io_desc,
                    mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), sha256=sha,
                    torch_program=str(path.resolve()), onnx_error=error)
