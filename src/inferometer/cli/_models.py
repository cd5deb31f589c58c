"""The model arguments every command shares (--shape, --dim, --value-range, --inputs), and
`inspect`: what a model takes and what a run must bind."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import UsageError
from ..models.ref import ModelRef
from ..models.shapes import (
    bind_models,
    check_sweep,
    parse_dims,
    parse_inputs,
    parse_shapes,
    parse_value_ranges,
)
from ..models.zoo import ZOO


def add_model_args(p: argparse.ArgumentParser, sweep: bool = True) -> None:
    p.add_argument("--shape", help="input shapes: name:1x128,other:1x128 (or OpenVINO's "
                   "name[1,128]); a bare CxHxW for a one-input model's items")
    if sweep:
        p.add_argument("--dim", action="append", metavar="NAME=N[,N...]",
                       help="bind a symbolic dim, e.g. --dim seq=128,384: each value is its "
                       "own cell (repeatable; see inferometer inspect MODEL)")
    else:
        p.add_argument("--dim", action="append", metavar="NAME=N",
                       help="bind a symbolic dim, e.g. --dim seq=128 (repeatable)")
    p.add_argument("--value-range", action="append", metavar="NAME:LOW,HIGH",
                   help="values of an input in [LOW, HIGH) (integer inputs of unknown range)")
    p.add_argument("--seed", type=int, help="seed of the generated inputs (fixed by default, "
                   "so runs compare like with like)")
    p.add_argument("--inputs", action="append", metavar="FILE.npz|NAME=FILE.npy",
                   help="real input data, arrays named after the inputs; several samples "
                   "(one more leading axis) are used round-robin")


def resolve_models(names: Sequence[str], args: argparse.Namespace
                   ) -> tuple[list[ModelRef], dict[str, tuple[int, ...]]]:
    """Zoo names and files -> bound models, and the --dim sweep (each model's batch dim
    taken out: it is the batch axis)."""
    from ..models.resolve import resolve

    sweep = parse_dims(getattr(args, "dim", None))
    models = []
    for name in names:
        if name in ZOO:
            print(f"preparing {name} (exported to ONNX once, then cached)...", file=sys.stderr)
        models.append(resolve(name))
    models = bind_models(models, parse_shapes(args.shape),
                         parse_value_ranges(args.value_range), parse_inputs(args.inputs), sweep)
    if getattr(args, "seed", None) is not None:
        from dataclasses import replace

        models = [replace(m, seed=args.seed) for m in models]
    check_sweep(models, sweep)
    return models, sweep


def batch_from_dims(models: Sequence[ModelRef], sweep: dict[str, tuple[int, ...]],
                    batch: str | None) -> str | None:
    """--dim NAME=... on the models' batch dim is the batch axis (--batch)."""
    names = {m.io.batch_dim for m in models if m.io.batch_dim in sweep}
    if not names:
        return batch
    if batch is not None:
        raise UsageError(f"--dim {next(iter(names))} is the batch dim: give it once, with "
                         "--batch or --dim")
    if len(names) > 1:
        raise UsageError(f"--dim: {', '.join(sorted(names))} are all batch dims; use --batch")
    name = names.pop()
    return ",".join(map(str, sweep.pop(name)))


def inspect_text(model: ModelRef) -> str:
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
    out.append(f"run it: inferometer run {model.name if model.name in ZOO else '<file>'}"
               + (f" {flags}" if flags else ""))
    return "\n\n".join(out)


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..models.resolve import resolve
    from ..models.shapes import apply_shapes, apply_value_ranges

    model = resolve(args.model)
    model = apply_value_ranges(apply_shapes(model, parse_shapes(args.shape)),
                               parse_value_ranges(args.value_range))
    print(inspect_text(model))
    return 0


def resolve_one(name: str, args: argparse.Namespace) -> ModelRef:
    """One model with every dim fixed by the flags (load tests, scans and accuracy run one
    shape): --dim takes a single value per dim here."""
    from dataclasses import replace

    (model,), sweep = resolve_models([name], args)
    many = [d for d, v in sweep.items() if len(v) > 1]
    if many:
        raise UsageError(f"--dim {many[0]}: give one value here; sweeps of dims are for run")
    bound = {d: v[0] for d, v in sweep.items()}
    return replace(model, io=model.io.substitute(bound)) if bound else model
