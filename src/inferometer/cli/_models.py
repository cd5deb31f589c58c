"""`inspect`: what a model takes and what a run must bind."""

from __future__ import annotations

import argparse
import shlex

from ..models.ref import ModelRef
from ..models.shapes import (
    parse_shapes,
    parse_value_ranges,
)
from ..models.zoo import ZOO


def inspect_text(model: ModelRef, given: str = "") -> str:
    """`given`: the model as the user named it (a file's path), for the command to copy."""
    from ..report.table import render

    io = model.io
    rows = [[i.name, i.tensor.dtype, i.tensor.shape_text(), i.values.describe()]
            for i in io.inputs]
    out = [f"{model.name}  ({model.torch_program or model.onnx_path})",
           render(("input", "dtype", "shape", "values"), rows, wrap={3: 60}),
           render(("output", "dtype", "shape", "kind"),
                  [[o.name, o.dtype, o.shape_text(), o.kind] for o in io.outputs])]
    defaults = dict(io.defaults)
    lines = []
    if io.batch_dim:
        lines.append(f"  {io.batch_dim}: the batch dim, bound by --batch (default 1)")
    elif io.fixed_batch is not None:
        lines.append(f"  batch fixed at {io.fixed_batch} in the file")
    for d in io.dims():
        lines.append(f"  {d}: " + (f"default {defaults[d]}; --dim {d}=N to change it"
                                   if d in defaults else f"must be bound: --dim {d}=N"))
    out.append("dims to bind:\n" + ("\n".join(lines) if lines else "  none: every shape is "
                                    "fixed"))
    unknown = io.unresolved()
    if unknown:
        out.append(f"values to give: {', '.join(unknown)} (integers of unknown range): "
                   f"--value-range {unknown[0]}:LOW,HIGH, or --inputs FILE.npz")
    if model.onnx_error:
        out.append(f"ONNX form: none ({model.onnx_error}); only torch can run it")
    need = [d for d in io.dims() if d not in defaults]
    flags = " ".join(f"--dim {d}=N" for d in need)
    if unknown:
        flags += f" --value-range {unknown[0]}:LOW,HIGH"
    name = model.name if model.name in ZOO else shlex.quote(given) if given else "<file>"
    out.append(f"run it: inferometer run {name}"
               + (f" {flags}" if flags else ""))
    return "\n\n".join(out)


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..models.resolve import resolve
    from ..models.shapes import apply_shapes, apply_value_ranges

    model = resolve(args.model)
    model = apply_value_ranges(apply_shapes(model, parse_shapes(args.shape)),
                               parse_value_ranges(args.value_range))
    print(inspect_text(model, given=args.model))
    return 0


