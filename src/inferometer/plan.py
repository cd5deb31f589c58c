"""Turning what the user asked for into a validated, frozen job matrix.  Every bad input is
caught here, before a run directory exists."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from . import envs, runtimes
from .errors import ModelError, RuntimeUnavailable, UsageError
from .models.ref import ModelRef
from .models.shapes import dim_cells
from .results.schema import ORDERS, CellSpec, RunSettings
from .runtimes.base import Runtime, conversion_key, needs_conversion
from .scenarios import RunLength

MAX_BATCH = 4096
HIDDEN_FROM_DEFAULT = ("null",)  # measures the harness, not a model: only when asked for
MAX_REPEAT = 100
# Several short processes per cell instead of one long one: the spread between processes is
# the noise a verdict must clear, and one process cannot show it (docs/decisions.md).
# --repeat auto (the default): every cell's first AUTO_FIRST processes run (interleaved), then
# each cell gets as many as fit AUTO_BUDGET_S at the length of its later ones, from
# AUTO_FIRST to AUTO_MAX.  At this host's 2.5% between-process noise a test on 3 against 3
# processes finds a 10% change in at most 93% of pairs, 5 against 5 in 99.9%.  A process of
# ONNX Runtime, OpenVINO or ncnn on ResNet-50 takes 1.2-2 s and gets 5; one that mostly
# starts, imports and loads (TensorFlow, Keras, JAX, MXNet: 3-14 s) or runs TVM untuned
# (25 s) gets 2-3, so the default sweep stays near 1.5x the one-process version's time
# (docs/decisions.md).
AUTO_FIRST = 2
AUTO_MAX = 5
AUTO_BUDGET_S = 12.0
# The cell's median is pooled from its processes, so each process stops at sqrt(k) times
# the cell's target, k the processes it pools, counted up to 3 (a cell of two then pools to
# +-1.2%, still under the between-process noise).  Replayed on stored A/A sessions: a third
# less measuring, no identical pair called (docs/decisions.md).
CELL_TARGET_REL_CI = 0.01
DEFAULT_LENGTH = RunLength(warmup=2, warmup_max_s=1.0, min_time_s=0.7, min_count=4,
                           max_time_s=3.0, target_rel_ci=CELL_TARGET_REL_CI)
MAX_SPREAD = 0.10  # between-process spread above which a cell is flagged unstable


@dataclass(frozen=True)
class Plan:
    models: tuple[ModelRef, ...]
    cells: tuple[CellSpec, ...]
    length: RunLength
    settings: RunSettings
    command: tuple[str, ...]

    # Resolved once, on first use, and not stored: a resumed plan (read back from its file)
    # resolves its names again.  Every layer that runs the plan asks it, not the registry.
    @cached_property
    def _runtimes(self) -> dict[str, type[Runtime]]:
        names = {c.runtime for c in self.cells} | {self.settings.reference_runtime}
        return {n: runtimes.get(n) for n in sorted(names)}

    @cached_property
    def _models(self) -> dict[str, ModelRef]:
        return {m.name: m for m in self.models}

    def runtime(self, name: str) -> type[Runtime]:
        """The class of a runtime this plan names."""
        return self._runtimes[name]

    def model(self, name: str) -> ModelRef:
        return self._models[name]

    def conversion_of(self, c: CellSpec) -> str | None:
        """The key of the conversion a cell needs (one per model, runtime and variant, or per
        cell shape where the runtime fixes shapes), None if its runtime runs the file."""
        rt = self.runtime(c.runtime)
        if not needs_conversion(rt, c.variant):
            return None
        return conversion_key(rt, self.model(c.model), c.variant, c.batch, c.dims)

    @staticmethod
    def reference_key(c: CellSpec) -> str:
        """One integrity reference per model and input shapes."""
        return f"{c.model}.{c.shape_key}"


@dataclass(frozen=True)
class RuntimeChoice:
    """A runtime the user chose, its class resolved once here and carried with the choice, and
    the variants to run."""

    name: str
    variants: tuple[str, ...]
    runtime: type[Runtime]


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


def parse_repeat(text: str | int | None) -> tuple[int, int]:
    """--repeat N: (N, N) processes a cell; auto (the default): (2, 5), a cell getting as
    many as fit its budget (see `results.schema.processes_wanted`)."""
    if text is None or str(text).strip() == "auto":
        return AUTO_FIRST, AUTO_MAX
    try:
        n = int(str(text).strip())
    except ValueError:
        raise UsageError(f"--repeat: '{text}' is not a whole number of processes "
                         "(or auto)") from None
    if not 1 <= n <= MAX_REPEAT:
        raise UsageError(f"--repeat: {n} is outside 1..{MAX_REPEAT} (processes per cell)")
    return n, n


def process_target(repeat: int, repeat_max: int) -> float:
    """Each process's CI target by default: the cell's (+-1%) times sqrt(k), k the processes
    the cell pools, counted up to 3 (one process: +-1%, as before repetitions)."""
    return round(CELL_TARGET_REL_CI * math.sqrt(min(max(repeat, repeat_max), 3)), 4)


def parse_order(text: str | None) -> str:
    order = (text or "interleaved").strip()
    if order not in ORDERS:
        raise UsageError(f"--order: unknown '{order}'; valid: {', '.join(ORDERS)}")
    return order


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


DEVICES = ("cpu", "cuda")


def require_device(device: str) -> None:
    """--device: known, and present on this machine (said before any model is prepared)."""
    from .measure.gpu import cuda_devices, no_cuda_reason

    if device not in DEVICES:
        raise UsageError(f"--device: unknown '{device}'; valid: {', '.join(DEVICES)}")
    if device == "cuda" and not cuda_devices():
        raise UsageError(no_cuda_reason())


def device_reason(rt: runtimes.Runtime, device: str) -> str | None:
    """None when the runtime can run on `device` here, else why not."""
    if not any(device in v.devices for v in rt.variants):
        note = getattr(rt, "device_notes", {}).get(device)
        on = sorted({d for v in rt.variants for d in v.devices})
        return note or f"its variants run on {', '.join(on)} only"
    check = getattr(rt, "device_unavailable", None)
    return check(device) if check else None


def _with_precision(rt: runtimes.Runtime, base: str, precision: str, known: Sequence[str],
                    default: str) -> str | None:
    """The variant that is `base` in `precision` among the `known` (on-device) ones: base
    itself, base_PRECISION, or, for the device's default variant, the runtime's variant for
    that precision."""
    by_name = {v.name: v for v in rt.variants}
    if base in known and by_name[base].precision == precision:
        return base
    if f"{base}_{precision}" in known:
        return f"{base}_{precision}"
    if base != default:
        return None
    table = getattr(rt, "precisions", {})
    if table.get(precision) in known:
        return table[precision]
    # the table names the CPU variant; on another device, its first variant of that precision
    return next((v.name for v in rt.variants if v.name in known and v.precision == precision),
                None)


def precision_variant(rt: runtimes.Runtime, precision: str, device: str = "cpu") -> str | None:
    """The runtime's default variant on `device` in `precision` (None: it has none)."""
    known = [v.name for v in rt.variants if device in v.devices]
    default = next((v for v in rt.default_variants if v in known), known[0] if known else None)
    if default is None:
        return None
    return _with_precision(rt, default, precision, known, default)


def select_runtimes(requested: str | None, variants: str | None,
                    precisions: str | None = None, device: str = "cpu",
                    notes: list[str] | None = None) -> list[RuntimeChoice]:
    """Resolve --runtimes (name, name@version for a version environment, name:variant),
    --variants and --precisions into choices for `device`.

    Without --runtimes: every installed runtime that runs on the device.  A --variants name
    applies to each chosen runtime that has it; a runtime that has none of them keeps its
    defaults.  With both --variants and --precisions, each variant is taken in each precision
    (channels_last + fp16 -> channels_last_fp16).  An explicitly requested runtime that is not
    installed, or cannot use the device, is an error that says why."""
    notes = [] if notes is None else notes
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
        why = device_reason(rt, device)
        if why:
            if explicit:
                raise UsageError(f"runtime '{name}' cannot run on {device}: {why}")
            notes.append(f"leaving out {name}: it cannot run on {device}: {why}")
            continue
        chosen[name] = rt
    if not chosen:
        if device != "cpu":
            raise UsageError(f"no installed runtime runs on {device}" +
                             (": " + "; ".join(notes) if notes else ""))
        raise RuntimeUnavailable("no runtime is installed; install one, e.g.: "
                                 "pip install onnxruntime")
    known = {name: [v.name for v in rt.variants if device in v.devices]
             for name, rt in chosen.items()}
    on = "" if device == "cpu" else f" on {device}"
    defaults = {name: [v for v in rt.default_variants if v in known[name]] or known[name][:1]
                for name, rt in chosen.items()}
    wanted = split_list(variants) if variants else []
    for v in wanted:
        if not any(v in vs for vs in known.values()):
            valid = "; ".join(f"{n}: {', '.join(vs)}" for n, vs in known.items())
            raise UsageError(f"unknown variant '{v}'{on}; valid: {valid}")
    if precisions:  # each runtime's variant(s) in each precision; runtimes with none left out
        precs = split_list(precisions)
        for p in precs:
            if p not in ("fp32", "fp16", "bf16", "int8"):
                raise UsageError(f"--precisions: unknown '{p}'; valid: fp32, fp16, bf16, int8")
        for name, rt in list(chosen.items()):
            bases = pinned[name] or [v for v in wanted if v in known[name]] or defaults[name]
            picked, missing = [], []
            for b in bases:
                for p in precs:
                    x = _with_precision(rt, b, p, known[name], defaults[name][0])
                    if x is None:
                        missing.append(f"{name}: no {p} form of variant {b}{on}")
                    else:
                        picked.append(x)
            if picked:
                notes += missing
            else:
                notes.append(f"leaving out {name}: no {'/'.join(precs)} variant{on}")
                del chosen[name]
            pinned[name] = picked
        if not chosen:
            raise UsageError(f"no selected runtime has a {'/'.join(precs)} variant{on}")
    out = []
    for name in chosen:
        for v in pinned[name]:
            if v not in known[name]:
                raise UsageError(f"runtime '{name}' has no variant '{v}'{on}; valid: "
                                 f"{', '.join(known[name])}")
        vs = pinned[name] or [v for v in wanted if v in known[name]] or defaults[name]
        out.append(RuntimeChoice(name, tuple(dict.fromkeys(vs)), type(chosen[name])))
    return out


def expand(models: Sequence[ModelRef], choices: Sequence[RuntimeChoice],
           threads: Sequence[int | None], batches: Sequence[int],
           device: str = "cpu", dims: Mapping[str, Sequence[int]] | None = None
           ) -> tuple[tuple[CellSpec, ...], list[str]]:
    """The cell matrix, plus notes on cells left out (a runtime that cannot run a model).
    Each model takes the --dim values of the dims it has (every value its own cell); every
    cell's input shapes are bound here, so an unbound dim fails before a run exists."""
    cells, notes = [], []
    for model in models:
        io = model.io
        for b in batches:
            if model.fixed_batch is not None and b != model.fixed_batch:
                raise ModelError(f"model '{model.name}' has a fixed batch of {model.fixed_batch};"
                                 f" --batch {b} is impossible for it")
            if io.batch_dim is None and model.fixed_batch is None and b != 1:
                raise ModelError(f"model '{model.name}' has no batch dim shared by its inputs "
                                 f"({', '.join(i.name for i in io.inputs)}); bind their leading "
                                 "dims with --dim, and leave --batch at 1")
        combos = dim_cells(io, dims or {})
        for combo in combos:
            io.bind(batches[0], dict(combo))
        for choice in choices:
            why_not = choice.runtime().supports(model)
            if why_not:
                notes.append(f"skipping {choice.name} for {model.name}: {why_not}")
                continue
            cells += [CellSpec(model.name, choice.name, v, t, b, device, combo)
                      for v in choice.variants for combo in combos for t in threads
                      for b in batches]
    if not cells:
        raise UsageError("nothing to run: " + ("; ".join(notes) or "empty plan"))
    return tuple(cells), notes
