"""run: the plan (or the stored one, to resume), the cluster, the run directory, the
processes; and --dry-run's account of what would run."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import runtimes
from ..errors import UsageError
from ..plan import (
    AUTO_BUDGET_S,
    DEFAULT_LENGTH,
    Plan,
    expand,
    parse_batches,
    parse_order,
    parse_repeat,
    parse_threads,
    process_target,
    require_device,
    select_runtimes,
    split_list,
)
from ..progress import Progress
from ..report.table import render
from ..results.codec import from_dict, to_dict
from ..results.schema import CellSpec, RunSettings
from ..results.store import RunDir
from ..scenarios import RunLength
from .common import out_dir
from .models import batch_from_dims, resolve_models

if TYPE_CHECKING:
    from ..cluster import RayExecutor
    from ..results.schema import RunResult


def _length(args: argparse.Namespace, repeat: int, repeat_max: int) -> RunLength:
    target = (process_target(repeat, repeat_max) if args.target_ci is None
              else args.target_ci / 100.0)
    # the default warm-up ends once it has run its time; a count the user gave runs whole
    warmup, cap = ((DEFAULT_LENGTH.warmup, DEFAULT_LENGTH.warmup_max_s) if args.warmup is None
                   else (args.warmup, 0.0))
    try:
        return RunLength(warmup=warmup, warmup_max_s=cap,
                         min_time_s=args.min_time, min_count=args.min_count,
                         max_time_s=max(args.max_time, args.min_time), target_rel_ci=target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _new_plan(args: argparse.Namespace) -> tuple[Plan, list[str]]:
    if not args.models:
        raise UsageError("run: name a model (see inferometer models) or use --resume RUN_DIR")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    threads = parse_threads(args.threads)
    repeat, repeat_max = parse_repeat(args.repeat)
    order = parse_order(args.order)
    if not 0 < args.max_spread < 1000:
        raise UsageError("--max-spread: a percentage > 0")
    require_device(args.device)
    notes: list[str] = []
    choices = select_runtimes(args.runtimes, args.variants, args.precisions, args.device, notes)
    runtimes.get(args.reference)  # an unknown reference runtime is a usage error
    models, sweep = resolve_models(split_list(args.models), args)
    batches = parse_batches(batch_from_dims(models, sweep, args.batch))
    if len({m.name for m in models}) != len(models):
        raise UsageError("two models have the same name; rename one file")
    cells, more = expand(models, choices, threads, batches, args.device, sweep)
    length = _length(args, repeat, repeat_max)
    settings = RunSettings(preprocess_timed=not args.no_preprocess, pin=args.pin,
                           timeout_s=args.timeout, reference_runtime=args.reference,
                           warmup=length.warmup, warmup_max_s=length.warmup_max_s,
                           min_time_s=length.min_time_s,
                           min_count=length.min_count, max_time_s=length.max_time_s,
                           target_rel_ci=length.target_rel_ci, noisy_threshold=args.noisy,
                           repeat=repeat, repeat_max=repeat_max,
                           cell_budget_s=AUTO_BUDGET_S if repeat_max > repeat else 0.0,
                           order=order, max_spread=args.max_spread / 100.0,
                           cluster=_cluster_text(args), slots_per_node=args.slots_per_node)
    return Plan(tuple(models), cells, length, settings, args.command_line), notes + more


def _cluster_text(args: argparse.Namespace) -> str | None:
    if not args.cluster:
        return None
    from ..cluster import parse_cluster

    if not 1 <= args.slots_per_node <= 64:
        raise UsageError("--slots-per-node: 1 to 64 processes a node")
    if args.cluster_timeout <= 0:
        raise UsageError("--cluster-timeout must be > 0")
    return parse_cluster(args.cluster).text()


def _executor(settings: RunSettings, args: argparse.Namespace) -> RayExecutor | None:
    """The cluster the run's processes go to (None: this machine)."""
    if settings.cluster is None:
        return None
    from ..cluster import RayExecutor, parse_cluster

    return RayExecutor(parse_cluster(settings.cluster), settings.slots_per_node,
                       args.cluster_timeout)


def parse_costs(text: str | None, types: list[str]) -> dict[str, float]:
    """--cost-per-hour: 'c7i.2xlarge=0.357,c7a.2xlarge=0.411', or '0.34' for every type;
    a type no node of the run has is an error naming the ones it has."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for tok in split_list(text):
        kind, eq, price = tok.rpartition("=")
        if not eq:
            kind, price = "", tok
        try:
            value = float(price)
        except ValueError:
            raise UsageError(f"--cost-per-hour: '{tok}': the price is not a number") from None
        if not value > 0:
            raise UsageError(f"--cost-per-hour: '{tok}': a price must be > 0")
        if not kind:
            out.update(dict.fromkeys(types, value))
        elif kind not in types:
            raise UsageError(f"--cost-per-hour: no node of machine type '{kind}' in this run; "
                             f"it has {', '.join(types)}")
        else:
            out[kind] = value
    return out


def _per_machine(plan: Plan, executor: RayExecutor | None) -> Plan:
    """On a cluster of several machine types, every cell runs on each type (its `machine`),
    so the types compare side by side; with one type the cells are a local run's."""
    types = sorted({n.machine_type for n in executor.nodes}) if executor else []
    if len(types) < 2:
        return plan
    cells = tuple(replace(c, machine=t) for c in plan.cells for t in types)
    print(f"note: {len(types)} machine types in the cluster ({', '.join(types)}): each cell "
          "runs on each", file=sys.stderr)
    return replace(plan, cells=cells)


def _with_config(args: argparse.Namespace) -> dict[str, str]:
    """Apply --config; where each option it gave stands in the file."""
    from ..sweep import apply_config, given_dests
    from .options import run_parser

    if not args.config:
        return {}
    if args.resume:
        raise UsageError("--config starts a new run; --resume continues a stored one")
    parser = run_parser()
    argv = list(args.command_line[2:])
    given = given_dests(parser, argv) | ({"models"} if args.models else set())
    return apply_config(args, parser, args.config, given)


def start(args: argparse.Namespace) -> tuple[RunResult, RunDir] | None:
    """`run`'s work, for the CLI and the Python API alike: the plan (or the stored one, to
    resume), the cluster, the run directory, the processes.  None after --dry-run; an
    interruption is re-raised with the run directory as its argument."""
    from ..measure.machine import machine_info

    applied = _with_config(args)
    if args.resume:
        rundir = RunDir(Path(args.resume))
        data = rundir.plan()
        plan, created, machine = from_dict(Plan, data["plan"]), data["created"], data["machine"]
        missing = [m.onnx_path for m in plan.models if not Path(m.onnx_path).exists()]
        if missing:
            raise UsageError(f"cannot resume: model file {missing[0]} is gone; start a new run")
        if args.cluster:  # the cluster may have moved since; the cells stay the run's
            plan = replace(plan, settings=replace(plan.settings, cluster=_cluster_text(args)))
        executor = _executor(plan.settings, args)
    else:
        from ..sweep import located

        try:
            plan, notes = _new_plan(args)
        except UsageError as exc:
            raise located(exc, applied) from None
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        if args.dry_run:
            print(_plan_text(plan))
            return None
        executor = _executor(plan.settings, args)
        try:
            types = sorted({n.machine_type for n in executor.nodes}) if executor else ["local"]
            costs = parse_costs(args.cost_per_hour, types)
        except UsageError:
            if executor is not None:
                executor.shutdown()
            raise
        plan = replace(_per_machine(plan, executor),
                       settings=replace(plan.settings, cost_per_hour=costs))
        rundir = RunDir(Path(args.output) if args.output  # RunDir.create refuses a used one
                        else out_dir(None, "+".join(mo.name for mo in plan.models)))
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        machine = machine_info()
        rundir.create({"created": created, "machine": machine, "plan": to_dict(plan)})
        _keep_sweep(rundir, args)
    print(f"run directory: {rundir.path} ({len(plan.cells)} cells)", file=sys.stderr)
    try:
        run = execute(plan, rundir, machine, created, executor, resume=bool(args.resume))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(str(rundir.path)) from None
    return run, rundir


def _keep_sweep(rundir: RunDir, args: argparse.Namespace) -> None:
    """The run's options as sweep.toml: `inferometer run --config RUN/sweep.toml` reruns it."""
    from ..results.store import atomic_write
    from ..sweep import resolved
    from .options import run_parser

    atomic_write(rundir.path / "sweep.toml", resolved(args, run_parser()))


def execute(plan: Plan, rundir: RunDir, machine: dict[str, object], created: str,
            executor: RayExecutor | None, resume: bool = False) -> RunResult:
    from ..runner import Runner

    try:
        return Runner(plan, rundir, machine, created, Progress(), executor).execute(resume)
    finally:
        if executor is not None:
            executor.shutdown()


def _dims_text(cells: Sequence[CellSpec]) -> str:
    """"seq=128,384" for the cells of one row: each dim with the values they bind."""
    values: dict[str, dict[int, None]] = {}
    for c in cells:
        for k, v in c.dims:
            values.setdefault(k, {})[v] = None
    return " ".join(f"{k}={','.join(map(str, vs))}" for k, vs in values.items()) or "-"


def _plan_text(plan: Plan) -> str:
    """What `run` would do, without doing it: the cells grouped by model and runtime/variant,
    the one-off jobs before them, the processes and the time they may take (each measures
    for --min-time to --max-time; loads and conversions come on top)."""
    groups: dict[tuple[str, str, str], list[CellSpec]] = {}
    for c in plan.cells:
        groups.setdefault((c.model, f"{c.runtime}/{c.variant}", c.device), []).append(c)
    # a dims column only where a model binds dims: the cells of `--dim seq=128,384`
    dims = any(c.dims for c in plan.cells)
    rows = [[model, label, device,
             ",".join(dict.fromkeys(c.threads_label for c in cs)),
             ",".join(dict.fromkeys(str(c.batch) for c in cs)),
             *([_dims_text(cs)] if dims else []),
             str(len(cs))]
            for (model, label, device), cs in groups.items()]
    converts = {plan.conversion_of(c) for c in plan.cells} - {None}
    refs = {plan.reference_key(c) for c in plan.cells}
    n, length, s = len(plan.cells), plan.length, plan.settings
    procs, most = n * s.repeat, n * max(s.repeat, s.repeat_max)
    each = (f"{n} cells x {s.repeat} fresh worker process(es) each = {procs} processes"
            if most == procs else
            f"{n} cells x {s.repeat} to {s.repeat_max} fresh worker processes each = {procs} to "
            f"{most} processes (as many as take at most {s.cell_budget_s:g} s together at the "
            f"length of a cell's processes after its first: where processes are cheap, more of "
            "them make verdicts finer)")
    return "\n".join([
        render(("model", "runtime/variant", "device", "threads", "batch",
                *(("dims",) if dims else ()), "cells"), rows),
        f"{each}, scheduled {s.order}; before them {len(refs)} reference run(s) "
        f"({s.reference_runtime}) and {len(converts)} conversion(s) (cached ones are reused)",
        f"measuring takes {procs * length.min_time_s / 60:.1f} to "
        f"{most * length.max_time_s / 60:.1f} min ({length.min_time_s:g} to "
        f"{length.max_time_s:g} s a process), plus each process's start, load and first "
        f"inference; at most {most * s.timeout_s / 3600:.1f} h at the {s.timeout_s:g} s "
        "timeout per process",
        *([f"on the Ray cluster {s.cluster}: up to {s.slots_per_node} process(es) a node at "
           "once, so the wall time divides by about the number of slots"] if s.cluster else []),
        "dry run: nothing was run; drop --dry-run to start"])
