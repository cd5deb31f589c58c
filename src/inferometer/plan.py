"""Turning what the user asked for into a validated, frozen job matrix.  Every bad input is
caught here, before a run directory exists."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from . import envs, runtimes
from .errors import ModelError, RuntimeUnavailable, UsageError
from .models.ref import ModelRef
from .results.schema import CellSpec, RunSettings
from .scenarios import RunLength

MAX_BATCH = 4096
HIDDEN_FROM_DEFAULT = ("null",)  # measures the harness, not a model: only when asked for


@dataclass(frozen=True)
class Plan:
    models: tuple[ModelRef, ...]
    cells: tuple[CellSpec, ...]
    length: RunLength
    settings: RunSettings
    command: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeChoice:
    name: str
    variants: tuple[str, ...]


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_threads(text: str | None) -> tuple[int | None, ...]:
    """"1,2,auto" -> (1, 2, None).  Default: 1..ncpus and auto (the CPU study's sweep)."""
    ncpu = usable_cpus()
    if text is None:
        return (*range(1, ncpu + 1), None)
    bound = 4 * ncpu
    out: list[int | None] = []
    for tok in split_list(text):
        if tok == "auto":
            out.append(None)
            continue
        try:
            n = int(tok)
        except ValueError:
            raise UsageError(f"--threads: '{tok}' is not a number or 'auto'") from None
        if not 1 <= n <= bound:
            raise UsageError(f"--threads: {n} is outside 1..{bound} (4x the {ncpu} usable CPUs)")
        out.append(n)
    if not out:
        raise UsageError("--threads: empty list")
    return tuple(dict.fromkeys(out))


def parse_batches(text: str | None) -> tuple[int, ...]:
    if text is None:
        return (1,)
    out = []
    for tok in split_list(text):
        try:
            n = int(tok)
        except ValueError:
            raise UsageError(f"--batch: '{tok}' is not a number") from None
        if not 1 <= n <= MAX_BATCH:
            raise UsageError(f"--batch: {n} is outside 1..{MAX_BATCH}")
        out.append(n)
    if not out:
        raise UsageError("--batch: empty list")
    return tuple(dict.fromkeys(out))


def parse_shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise UsageError(f"--shape: '{text}' is not CxHxW, e.g. 3x224x224") from None
    if len(dims) != 3 or min(dims) < 1:
        raise UsageError(f"--shape: '{text}' is not CxHxW with positive dims, e.g. 3x224x224")
    return dims  # type: ignore[return-value]


def select_runtimes(requested: str | None, variants: str | None,
                    precisions: str | None = None) -> list[RuntimeChoice]:
    """Resolve --runtimes (name, name@version for a version environment, name:variant) and
    --variants into choices.

    Without --runtimes: every installed runtime.  A --variants name applies to each chosen
    runtime that has it; a runtime that has none of them keeps its defaults.  An explicitly
    requested runtime that is not installed is an error carrying the install command."""
    all_names = envs.runtime_names()
    explicit = requested is not None
    items = split_list(requested) if explicit else [
        n for n in all_names if n not in HIDDEN_FROM_DEFAULT]
    if explicit and not items:
        raise UsageError("--runtimes: empty list")
    pinned: dict[str, list[str]] = {}
    for item in items:
        name, _, var = item.partition(":")
        if name not in all_names and "@" not in name:
            raise UsageError(f"unknown runtime '{name}'; valid: {', '.join(all_names)}")
        runtimes.get(name)  # 'x@version' must name a known runtime x
        pinned.setdefault(name, [])
        if var:
            pinned[name].append(var)
    chosen = {}
    for name in pinned:
        rt = runtimes.get(name)()
        avail = envs.availability(name)
        if not avail.available:
            if explicit:
                raise RuntimeUnavailable(f"runtime '{name}' is not installed ({avail.reason}); "
                                         f"install it with: {avail.install}")
            continue
        chosen[name] = rt
    if not chosen:
        raise RuntimeUnavailable("no runtime is installed; install one, e.g.: "
                                 "pip install onnxruntime")
    wanted = split_list(variants) if variants else []
    if precisions:  # each runtime's variant for each precision; runtimes with none are left out
        precs = split_list(precisions)
        for p in precs:
            if p not in ("fp32", "fp16", "bf16", "int8"):
                raise UsageError(f"--precisions: unknown '{p}'; valid: fp32, fp16, bf16, int8")
        chosen = {n: rt for n, rt in chosen.items()
                  if any(p in getattr(rt, "precisions", {"fp32": ""}) for p in precs)}
        if not chosen:
            raise UsageError(f"no selected runtime has a {'/'.join(precs)} variant")
        for name, rt in chosen.items():
            table = getattr(rt, "precisions", {"fp32": rt.default_variants[0]})
            pinned[name] = pinned[name] or [table[p] for p in precs if p in table]
    known = {name: [v.name for v in rt.variants] for name, rt in chosen.items()}
    for v in wanted:
        if not any(v in vs for vs in known.values()):
            valid = "; ".join(f"{n}: {', '.join(vs)}" for n, vs in known.items())
            raise UsageError(f"unknown variant '{v}'; valid: {valid}")
    out = []
    for name, rt in chosen.items():
        for v in pinned[name]:
            if v not in known[name]:
                raise UsageError(f"runtime '{name}' has no variant '{v}'; valid: "
                                 f"{', '.join(known[name])}")
        vs = pinned[name] or [v for v in wanted if v in known[name]] or list(rt.default_variants)
        out.append(RuntimeChoice(name, tuple(dict.fromkeys(vs))))
    return out


def expand(models: Sequence[ModelRef], choices: Sequence[RuntimeChoice],
           threads: Sequence[int | None], batches: Sequence[int]) -> tuple[tuple[CellSpec, ...],
                                                                            list[str]]:
    """The cell matrix, plus notes on cells left out (a runtime that cannot run a model)."""
    cells, notes = [], []
    for model in models:
        for b in batches:
            if model.fixed_batch is not None and b != model.fixed_batch:
                raise ModelError(f"model '{model.name}' has a fixed batch of {model.fixed_batch};"
                                 f" --batch {b} is impossible for it")
        for choice in choices:
            why_not = runtimes.get(choice.name)().supports(model)
            if why_not:
                notes.append(f"skipping {choice.name} for {model.name}: {why_not}")
                continue
            cells += [CellSpec(model.name, choice.name, v, t, b)
                      for v in choice.variants for t in threads for b in batches]
    if not cells:
        raise UsageError("nothing to run: " + ("; ".join(notes) or "empty plan"))
    return tuple(cells), notes
