"""The models a command's options name, resolved and bound (--shape, --dim, --value-range,
--inputs, --seed)."""

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
