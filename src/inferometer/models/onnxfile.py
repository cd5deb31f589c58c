"""A user's .onnx file -> ModelRef, with every way it can be wrong said in one line."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from .export import file_sha256
from .ref import ModelRef

_FLOAT = 1  # onnx.TensorProto.FLOAT


def inspect_onnx(path: Path, shape: tuple[int, int, int] | None = None) -> ModelRef:
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
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelError(f"{path}: need exactly one image input, found {len(inputs)} ({names})")
    inp = inputs[0]
    ttype = inp.type.tensor_type
    if ttype.elem_type != _FLOAT:
        raise ModelError(f"{path}: input '{inp.name}' is not float32 "
                         f"(elem_type {ttype.elem_type}); only float32 image inputs are supported")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in ttype.shape.dim]
    if len(dims) != 4:
        raise ModelError(f"{path}: input '{inp.name}' has rank {len(dims)}; "
                         "need an NCHW image input (rank 4)")
    item = dims[1:]
    if shape is not None:
        for have, want in zip(item, shape, strict=True):
            if have is not None and have != want:
                raise ModelError(f"{path}: --shape {'x'.join(map(str, shape))} does not match the "
                                 f"model input {_fmt(dims)}")
        item = list(shape)
    if any(d is None for d in item):
        raise ModelError(f"{path}: input '{inp.name}' has dynamic dims {_fmt(dims)}; "
                         "give one item's shape with --shape, e.g. --shape 3x224x224")
    if item[0] != 3:
        raise ModelError(f"{path}: input '{inp.name}' {_fmt(dims)} is not NCHW RGB (3 channels)")
    out_rank = len(proto.graph.output[0].type.tensor_type.shape.dim) if proto.graph.output else 0
    c, h, w = (int(d) for d in item)  # type: ignore[arg-type]
    return ModelRef(name=path.stem, onnx_path=str(path.resolve()), input_name=inp.name,
                    input_shape=(c, h, w), fixed_batch=dims[0], mean=(0.0, 0.0, 0.0),
                    std=(1.0, 1.0, 1.0), output_kind="classes" if out_rank == 2 else "tensor",
                    sha256=file_sha256(path))


def _fmt(dims: list[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"
