"""A user's .onnx file -> ModelRef with its I/O description, with every way it can be wrong
said in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError
from .export import file_sha256
from .io import Dim, Input, ModelIO, Tensor, Values, output_kind
from .ref import ModelRef

# onnx.TensorProto element types -> numpy dtype names (string inputs are refused)
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
           9: "bool", 10: "float16", 11: "float64"}
_STRING = 8


def load_checked(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise ModelError(f"cannot read model file {path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        raise ModelError(f"{path} is not an ONNX model: {type(exc).__name__}: {exc}") from None
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is a malformed ONNX model: {first}") from None
    return proto


def _tensor(path: Path, vi: Any, role: str) -> tuple[Tensor, list[bool]]:
    ttype = vi.type.tensor_type
    if ttype.elem_type == _STRING:
        raise ModelError(f"{path}: {role} '{vi.name}' is a string tensor; string inputs "
                         "(tokenizers inside the graph) are not supported: export the model "
                         "from token ids")
    dtype = _DTYPES.get(ttype.elem_type)
    if dtype is None:
        raise ModelError(f"{path}: {role} '{vi.name}' has ONNX element type {ttype.elem_type}, "
                         f"which inferometer cannot generate; supported: "
                         f"{', '.join(sorted(set(_DTYPES.values())))}")
    dims: list[Dim] = []
    unnamed = []
    for axis, d in enumerate(ttype.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
            unnamed.append(False)
        else:
            dims.append(d.dim_param or f"{vi.name}_{axis}")
            unnamed.append(not d.dim_param)
    return Tensor(vi.name, dtype, tuple(dims)), unnamed


def _vocab(proto: Any, name: str) -> tuple[int, str] | None:
    """Rows of the embedding table that `name` indexes (a Gather on an initializer, maybe
    through a Cast), so token ids stay in range; None where the graph does not show it."""
    inits = {i.name: i for i in proto.graph.initializer}
    names = {name}
    for node in proto.graph.node:  # one level of Cast/Unsqueeze/Reshape in between
        if node.op_type in ("Cast", "Unsqueeze", "Reshape", "Flatten") and node.input[0] in names:
            names.update(node.output)
    rows = [(int(inits[n.input[0]].dims[0]), n.input[0]) for n in proto.graph.node
            if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] in names
            and n.input[0] in inits and inits[n.input[0]].dims]
    return min(rows) if rows else None


def default_values(proto: Any, t: Tensor) -> Values:
    """The safe generator for an input, from its name, dtype and the graph."""
    low = t.name.lower()
    if t.dtype.startswith("float"):
        if len(t.shape) == 4 and t.shape[1] == 3:
            return Values("image", why="NCHW float, 3 channels: decoded uint8 RGB, timed "
                                       "conversion")
        return Values("normal", why="float: standard normal")
    if "mask" in low:
        return Values("ones", why="a mask: all ones")
    if "token_type" in low or "segment" in low:
        return Values("zeros", why="segment ids: zeros")
    if "position" in low:
        return Values("positions", why="position ids: 0..n-1")
    if t.dtype == "bool":
        return Values("bool", why="random booleans")
    vocab = _vocab(proto, t.name) if proto is not None else None
    if vocab:
        return Values("tokens", 0, vocab[0], f"below the {vocab[0]} rows of '{vocab[1]}'")
    return Values("range", why="integer input of unknown range: give --value-range")


def describe_graph(path: Path, proto: Any) -> ModelIO:
    inits = {i.name for i in proto.graph.initializer}
    raw = [_tensor(path, vi, "input") for vi in proto.graph.input if vi.name not in inits]
    if not raw:
        raise ModelError(f"{path}: the graph has no inputs")
    # The batch dim: a symbolic leading dim shared by every input (an unnamed one counts as
    # the same), named "batch" when the file gives it no name.
    leads = [(t.shape[0], un[0]) for t, un in raw if t.shape]
    batch = None
    if len(leads) == len(raw) and all(isinstance(d, str) for d, _ in leads):
        named = {d for d, un in leads if not un}
        if len(named) <= 1:
            batch = next(iter(named)) if named else "batch"
    tensors = [t if batch is None else Tensor(t.name, t.dtype, (batch, *t.shape[1:]))
               for t, _ in raw]
    outs = []
    for vi in proto.graph.output:
        t, un = _tensor(path, vi, "output")
        if batch is not None and t.shape and un[0]:
            t = Tensor(t.name, t.dtype, (batch, *t.shape[1:]))
        outs.append(Tensor(t.name, t.dtype, t.shape, output_kind(t, len(proto.graph.output))))
    return ModelIO(inputs=tuple(Input(t, default_values(proto, t)) for t in tensors),
                   outputs=tuple(outs), batch_dim=batch)


def inspect_onnx(path: Path) -> ModelRef:
    proto = load_checked(path)
    io = describe_graph(path, proto)
    return ModelRef(name=path.stem, onnx_path=str(path.resolve()), io=io, mean=(0.0, 0.0, 0.0),
                    std=(1.0, 1.0, 1.0), sha256=file_sha256(path))
