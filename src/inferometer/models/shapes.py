"""What the user binds on a model's description: --shape (per input, fixing dims in the file's
description), --dim (a sweep axis: each value its own cell), --value-range, --inputs.  Every
mistake is one line naming what is valid."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ..errors import ModelError, UsageError
from .io import ModelIO, Values
from .ref import ModelRef

_OV_SHAPE = re.compile(r"([^\[\],]+)\[([\d,\s]+)\]")


def _ints(text: str, flag: str, sep: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace(" ", "").split(sep) if d)
    except ValueError:
        raise UsageError(f"{flag}: '{text}' is not a list of sizes") from None
    if not dims or min(dims) < 1:
        raise UsageError(f"{flag}: '{text}' needs positive sizes")
    return dims


def parse_shapes(text: str | None) -> list[tuple[str | None, tuple[int, ...]]]:
    """--shape: "name:1x128,other:1x128", OpenVINO's "name[1,128],other[1,128]", or a bare
    "3x224x224" for a model with one input (one item's shape, the batch dim left free)."""
    if not text:
        return []
    text = text.strip()
    if "[" in text:
        found = _OV_SHAPE.findall(text)
        if not found or _OV_SHAPE.sub("", text).strip(", "):
            raise UsageError(f"--shape: cannot read '{text}'; write name[1,128],other[1,128]")
        return [(n.strip(), _ints(d, "--shape", ",")) for n, d in found]
    out: list[tuple[str | None, tuple[int, ...]]] = []
    for part in text.split(","):
        name, _, dims = part.strip().rpartition(":")
        out.append((name or None, _ints(dims.lower(), "--shape", "x")))
    if len(out) > 1 and any(n is None for n, _ in out):
        raise UsageError(f"--shape: '{text}': name each input when giving several "
                         "(name:1x128,other:1x128)")
    return out


def parse_dims(items: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """--dim seq=128,384 (repeatable) -> {"seq": (128, 384)}."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items or ():
        name, eq, values = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--dim: '{item}' is not NAME=SIZE[,SIZE...], e.g. seq=128,384")
        if name.strip() in out:
            raise UsageError(f"--dim: '{name.strip()}' given twice")
        out[name.strip()] = tuple(dict.fromkeys(_ints(values, f"--dim {name.strip()}", ",")))
    return out


def parse_value_ranges(items: Sequence[str] | None) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items or ():
        name, _, rng = item.rpartition(":")
        try:
            lo, hi = (float(x) for x in rng.split(","))
        except ValueError:
            raise UsageError(f"--value-range: '{item}' is not NAME:LOW,HIGH") from None
        if not name or not lo < hi:
            raise UsageError(f"--value-range: '{item}' needs a name and LOW < HIGH")
        out[name] = (lo, hi)
    return out


def apply_shapes(model: ModelRef, shapes: Sequence[tuple[str | None, tuple[int, ...]]]
                 ) -> ModelRef:
    """--shape fixes the dims it covers in the model's description: a symbolic dim takes the
    size given at its position (and so every input that shares it); a fixed dim must agree."""
    io = model.io
    bound: dict[str, int] = {}
    for name, dims in shapes:
        if name is None:
            if len(io.inputs) != 1:
                raise ModelError(f"{model.name}: --shape {'x'.join(map(str, dims))} names no "
                                 f"input and the model has {len(io.inputs)}: "
                                 f"{', '.join(i.name for i in io.inputs)}; write name:1x128")
            inp = io.inputs[0]
            if len(dims) == len(inp.tensor.shape) - 1:  # one item's shape: batch stays free
                dims = (inp.tensor.shape[0], *dims)  # type: ignore[assignment]
        else:
            inp = io.input(name)
        have = inp.tensor.shape
        if len(dims) != len(have):
            raise ModelError(f"{model.name}: --shape for '{inp.name}' has {len(dims)} dims; the "
                             f"input {have and inp.tensor.shape_text()} has {len(have)}")
        for d, size in zip(have, dims, strict=True):
            if isinstance(size, str):
                continue
            if isinstance(d, int):
                if d != size:
                    raise ModelError(f"{model.name}: --shape {inp.name}:"
                                     f"{'x'.join(map(str, dims))} does not match the model "
                                     f"input {inp.tensor.shape_text()}")
            elif bound.setdefault(d, size) != size:
                raise ModelError(f"{model.name}: --shape gives dim '{d}' two sizes "
                                 f"({bound[d]} and {size})")
    return replace(model, io=io.substitute(bound)) if bound else model


def apply_value_ranges(model: ModelRef, ranges: Mapping[str, tuple[float, float]]) -> ModelRef:
    io = model.io
    for name, (lo, hi) in ranges.items():
        inp = io.input(name)
        dtype = np.dtype(inp.tensor.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if lo < info.min or hi - 1 > info.max or not (float(lo).is_integer()
                                                           and float(hi).is_integer()):
                raise ModelError(f"--value-range {name}: [{lo:g}, {hi:g}) is not a range of "
                                 f"whole {dtype} values ({info.min}..{info.max})")
        elif dtype.kind != "f":
            raise ModelError(f"--value-range {name}: the input is {dtype}; ranges apply to "
                             "numbers")
        io = io.with_values(name, Values("range", lo, hi, "--value-range"))
    return replace(model, io=io)


def check_generable(model: ModelRef, unknown: str = "no embedding table shows it") -> None:
    """An integer input of unknown range would get values that index out of bounds (the trap
    of perf_analyzer and benchmark_app): refuse it, naming the flag.  `unknown`: why the
    range is not known (the file's graph, a server's metadata)."""
    bad = model.io.unresolved()
    if bad and not model.data:
        raise ModelError(f"{model.name}: input(s) {', '.join(bad)} are integers of unknown range "
                         f"({unknown}); give --value-range {bad[0]}:LOW,HIGH "
                         "or real data with --inputs FILE.npz")


def dim_cells(io: ModelIO, sweep: Mapping[str, Sequence[int]]
              ) -> list[tuple[tuple[str, int], ...]]:
    """The dim bindings of a model's cells: the product of the --dim values of the dims it
    has, then its defaults; each must leave no input dim unbound."""
    own = [d for d in io.dims() if d in sweep]
    combos = [tuple(zip(own, values, strict=True))
              for values in itertools.product(*(sweep[d] for d in own))]
    return combos or [()]


def check_sweep(models: Sequence[ModelRef], sweep: Mapping[str, Sequence[int]]) -> None:
    for name in sweep:
        if not any(name in m.io.dims() or name == m.io.batch_dim for m in models):
            valid = sorted({d for m in models for d in (*m.io.dims(), m.io.batch_dim) if d})
            raise UsageError(f"--dim {name}: no model has a dim '{name}'; "
                             + (f"valid: {', '.join(valid)}" if valid else
                                "the models have no symbolic dims"))


def parse_inputs(items: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """--inputs FILE.npz or --inputs name=FILE.npy (repeatable, or comma-separated)."""
    out = []
    for item in items or ():
        for part in item.split(","):
            name, eq, path = part.strip().rpartition("=")
            if not path:
                raise UsageError(f"--inputs: '{item}' is not FILE.npz or NAME=FILE.npy")
            out.append((name if eq else "", path))
    return tuple(out)


def bind_models(models: Sequence[ModelRef], shapes: Sequence[tuple[str | None, tuple[int, ...]]],
                ranges: Mapping[str, tuple[float, float]], data: tuple[tuple[str, str], ...],
                sweep: Mapping[str, Sequence[int]]) -> list[ModelRef]:
    """The user's bindings applied to each model: --shape, --value-range and --inputs name
    inputs, and each must name an input of some model (the valid ones listed otherwise)."""
    from .inputs import array_dims, check_samples, data_source, read_data

    arrays, source = (read_data(data), data_source(data)) if data else ({}, "")
    names = {i.name for m in models for i in m.io.inputs}
    for flag, given in (("--shape", [n for n, _ in shapes if n]), ("--value-range", ranges),
                        ("--inputs", [n for n, _ in data if n])):
        for n in given:
            if n not in names:
                raise ModelError(f"{flag}: no model has an input '{n}'; inputs: "
                                 f"{', '.join(sorted(names))}")
    out = []
    for m in models:
        own = {i.name for i in m.io.inputs}
        m = apply_shapes(m, [(n, d) for n, d in shapes if n is None or n in own])
        m = apply_value_ranges(m, {n: r for n, r in ranges.items() if n in own})
        if data:  # the files read once; dtypes and shapes checked before any run
            io = m.io.substitute(array_dims(m.io, arrays, source))
            check_samples(io, arrays, io.bind(1, {}), source)
            m = replace(m, data=data, io=io)
        check_generable(m)
        calib = tuple((d, sweep[d][0]) for d in m.io.dims() if d in sweep)
        out.append(replace(m, calibration_dims=calib))
    return out
