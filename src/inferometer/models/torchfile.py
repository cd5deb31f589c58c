"""The user's PyTorch program: a `torch.export` ExportedProgram (.pt2).  Its I/O description
comes from the program's signature (symbolic dims keep the program's names); PyTorch runs the
program itself, and it is exported once to ONNX (cached by the file's hash) so every other
runtime runs the same weights.  When that export fails, the message is kept: PyTorch still
runs, the other runtimes say why they cannot."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .export import file_sha256
from .io import Dim, Input, ModelIO, Tensor, output_kind
from .onnxfile import default_values
from .ref import ModelRef

_EXPORT_VERSION = 1  # bump when the ONNX export settings change


@contextlib.contextmanager
def _weights_only(torch: Any) -> Iterator[None]:
    """torch.export.load falls back to a full unpickle when a weights-only load fails; a
    benchmark must never run code hidden in a model file, so the fallback is closed."""
    real = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = real


def load_program(path: str) -> Any:
    import torch

    with _weights_only(torch):
        try:
            return torch.export.load(path)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"{path}: not a torch.export program that loads without "
                             f"unpickling code ({type(exc).__name__}: {first[:200]})") from None


def _tensor(name: str, val: Any) -> Tensor:
    dims: list[Dim] = [int(d) if str(d).isdigit() else str(d) for d in val.shape]
    return Tensor(name, str(val.dtype).removeprefix("torch."), tuple(dims))


def describe_program(path: Path, ep: Any, proto: Any = None) -> ModelIO:
    """The program's inputs and outputs; `proto` (its ONNX export) shows which integer inputs
    index an embedding table, and how many rows it has."""
    sig = ep.graph_signature
    inputs, outputs = [], []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in sig.user_inputs:
            t = _tensor(node.name, node.meta["val"])
            if t.dtype not in ("float32", "float16", "bfloat16", "float64", "int64", "int32",
                               "bool", "uint8", "int8"):
                raise ModelError(f"{path}: input '{t.name}' is {t.dtype}, which inferometer "
                                 "cannot generate")
            inputs.append(t)
        elif node.op == "output":
            for k, v in enumerate(node.args[0]):
                if hasattr(v, "meta") and "val" in v.meta:
                    outputs.append(_tensor(sig.user_outputs[k] or f"output_{k}", v.meta["val"]))
    leads = {t.shape[0] for t in inputs if t.shape}
    batch = next(iter(leads)) if len(leads) == 1 and isinstance(next(iter(leads)), str) else None
    outs = tuple(Tensor(o.name, o.dtype, o.shape, output_kind(o, len(outputs)))
                 for o in outputs)
    return ModelIO(tuple(Input(t, default_values(proto, t)) for t in inputs), outs, batch)


def inspect_program(path: Path, cache: Path) -> ModelRef:
    if not path.is_file():
        raise ModelError(f"cannot read model file {path}: no such file")
    ep = load_program(str(path))
    sha = file_sha256(path)
    onnx_path = cache / "models" / f"pt2-{sha[:16]}-v{_EXPORT_VERSION}" / "model.onnx"
    error = None
    if not onnx_path.exists():
        error = _export(ep, onnx_path)
    proto = None
    if error is None:
        import onnx

        proto = onnx.load(str(onnx_path), load_external_data=False)
    io = describe_program(path, ep, proto)
    ref = ModelRef(name=path.stem, onnx_path=str(onnx_path), io=io, mean=(0.0, 0.0, 0.0),
                   std=(1.0, 1.0, 1.0), sha256=sha, torch_program=str(path.resolve()),
                   onnx_error=error)
    return ref


def _export(ep: Any, out: Path) -> str | None:
    """ExportedProgram -> ONNX with the dynamo exporter (the TorchScript one cannot take an
    exported program); None when it worked, else the exporter's message."""
    import torch

    return export_onnx(out, lambda f: torch.onnx.export(ep, f=f, dynamo=True, opset_version=18,
                                                        external_data=False))


def export_onnx(out: Path, export: Callable[[str], Any]) -> str | None:
    """Run `export(path)` to write `out` atomically, quietly; None when it worked, else the
    exporter's own message (kept: PyTorch still runs, the other runtimes say why not)."""
    import os
    import tempfile
    import warnings

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=out.parent)
    os.close(fd)
    # the dynamo exporter logs each torchvision op it skips ("torchvision is not installed")
    # through torch's own handler on stderr, however it is called: silenced for the export
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            onnx_log.setLevel(logging.ERROR)
            try:
                export(tmp)
            finally:
                onnx_log.setLevel(level)
        os.replace(tmp, out)
        return None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"the ONNX export failed ({type(exc).__name__}: {first[:300]})"
    finally:
        Path(tmp).unlink(missing_ok=True)
