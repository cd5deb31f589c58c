"""tune: the deployment advisor's options checked before anything runs, then the search (or
the stored one resumed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..plan import select_runtimes, split_list, usable_cpus
from ..units import megabytes, seconds
from .common import out_dir
from .models import resolve_one

if TYPE_CHECKING:
    from ..results.tunerun import TuneRun

DEFAULT_RUNTIMES = ("onnxruntime", "openvino", "torch")


def _slo(text: str | None) -> tuple[float | None, float]:
    if text is None:
        return None, 99.0
    stat, sep, bound = text.partition(":")
    if not sep or not stat.startswith("p"):
        raise UsageError(f"--slo: unknown constraint '{text}'; write pNN:TIME, e.g. p99:50ms")
    try:
        pct = float(stat[1:])
    except ValueError:
        raise UsageError(f"--slo: '{stat}' is not a percentile like p99") from None
    if not 0 < pct < 100:
        raise UsageError("--slo: the percentile must be in (0, 100)")
    s = seconds(bound, "--slo")
    if s <= 0:
        raise UsageError("--slo: the bound must be > 0")
    return s, pct


def _choices(args: argparse.Namespace, model):  # type: ignore[no-untyped-def]
    from .. import envs

    names = args.runtimes
    if names is None:
        names = ",".join(n for n in DEFAULT_RUNTIMES if envs.availability(n).available)
    out, notes = [], []
    for choice in select_runtimes(names, None, args.precisions, notes=notes):
        rt = choice.runtime()
        why = rt.supports(model) if hasattr(rt, "supports") else None
        if why:
            if args.runtimes:
                raise UsageError(f"runtime '{choice.name}' cannot run {model.name}: {why}")
            print(f"leaving out {choice.name}: {why}", file=sys.stderr)
            continue
        for v in choice.variants:
            prec = next(x.precision for x in rt.variants if x.name == v)
            out.append((choice.name, v, prec))
    for n in notes:
        print(n, file=sys.stderr)
    if not out:
        raise UsageError(f"no runtime left to search for {model.name}")
    return out


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..advisor.run import TuneConfig
    from ..advisor.search import Goal
    from ..advisor.space import batch_sizes, build, default_layouts, parse_layouts

    if args.objective not in ("throughput", "latency"):
        raise UsageError(f"--objective: unknown '{args.objective}'; valid: throughput, latency")
    slo, pct = _slo(args.slo)
    if args.objective == "throughput" and slo is None:
        raise UsageError("--slo is required for the throughput objective, e.g. --slo p99:50ms")
    if args.objective == "latency" and args.qps is None:
        raise UsageError("--objective latency needs the load: --qps N")
    if args.objective == "throughput" and args.qps is not None:
        raise UsageError("--qps is the latency objective's load: add --objective latency "
                         "(the throughput objective finds the QPS itself)")
    if args.qps is not None and args.qps <= 0:
        raise UsageError("--qps must be > 0")
    if args.cost_per_hour is not None and args.cost_per_hour <= 0:
        raise UsageError("--cost-per-hour must be > 0")
    if args.max_accuracy_drop is not None and args.max_accuracy_drop < 0:
        raise UsageError("--max-accuracy-drop must be >= 0")
    budget = seconds(args.budget, "--budget") if args.budget else None
    if budget is not None and budget <= 0:
        raise UsageError("--budget must be > 0")
    if args.retests < 1:
        raise UsageError("--retests must be >= 1")
    memory = megabytes(args.max_memory, "--max-memory") if args.max_memory else None
    if memory is not None and memory <= 0:
        raise UsageError("--max-memory must be > 0")
    delays = tuple(seconds(d, "--batch-delay") for d in split_list(args.batch_delay))
    if any(d < 0 for d in delays) or not delays:
        raise UsageError("--batch-delay: durations >= 0, e.g. 0,2ms")
    if args.arrivals not in ("exponential", "linear"):
        raise UsageError(f"--arrivals: unknown '{args.arrivals}'; valid: exponential, linear")
    batches = batch_sizes(args.max_batch)
    cores = usable_cpus()
    layouts = parse_layouts(args.layouts, cores) if args.layouts else default_layouts(cores)
    print(f"preparing {args.model}...", file=sys.stderr)
    model = resolve_one(args.model, args)
    fixed = model.fixed_batch
    if fixed is not None:
        batches = [1]
        print(f"batching left out: {model.name} has a fixed batch of {fixed} in its file",
              file=sys.stderr)
    space = build(_choices(args, model), layouts, batches, delays)
    goal = Goal(objective=args.objective, slo_s=slo, percentile=pct, qps=args.qps,
                max_memory_mb=memory, budget_s=budget, exhaustive=args.exhaustive,
                retests=args.retests)
    settings = tuple((k, " ".join(v) if isinstance(v, list) else str(v))
                     for k, v in vars(args).items()
                     if k not in ("handler", "command_line", "resume", "output")
                     and v is not None and v is not False)
    return TuneConfig(model=model, space=space, goal=goal, arrivals=args.arrivals,
                      cost_per_hour=args.cost_per_hour, dataset=args.dataset,
                      max_accuracy_drop=args.max_accuracy_drop, settings=settings)


def _resume_args(run_dir: Path, args: argparse.Namespace) -> argparse.Namespace:
    """The stored run's own flags: a resumed search must ask the same questions."""
    from ..results.store import load_result
    from ..results.tunerun import TuneRun

    given = [a for a in args.command_line
             if a.startswith("--") and a.split("=", 1)[0] != "--resume"]
    if args.model is not None or given:
        raise UsageError("--resume continues the stored run with its own settings: give "
                         "only --resume RUN_DIR")
    run = load_result(run_dir)
    if not isinstance(run, TuneRun):
        raise UsageError(f"{run_dir} holds a {run.kind} run, not a tune run")
    from .options import command_parser

    return command_parser("tune").parse_args(list(run.command[2:]))  # ("inferometer", "tune", ...)


def start_tune(args: argparse.Namespace) -> tuple[TuneRun, Path]:
    """tune's work, for the CLI and the Python API: the search (or the stored one resumed),
    the stored run and its directory."""
    from ..advisor.run import tune
    from ..advisor.search import BudgetTooSmall
    from ..measure.machine import machine_info
    from ..results.store import load_result

    stored = None
    if args.resume:
        out = Path(args.resume)
        resumed = _resume_args(out, args)
        resumed.command_line = args.command_line
        stored = load_result(out)
        cfg = _config(resumed)
        command = stored.command
    else:
        if args.model is None:
            raise UsageError("tune: name a model (or --resume RUN_DIR)")
        cfg = _config(args)
        out = out_dir(args.output, f"tune-{args.model}")
        command = args.command_line
    print(f"tune: {len(cfg.space)} candidates; results in {out}", file=sys.stderr)
    try:
        run = tune(cfg, out, tuple(command), machine_info(),
                   lambda s: print(s, file=sys.stderr), stored)
    except BudgetTooSmall as exc:
        raise UsageError(str(exc)) from None
    return run, out
