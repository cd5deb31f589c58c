"""loadtest, scan and accuracy: the config checked, the test run, the run stored."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..plan import (
    parse_batches,
    parse_threads,
    require_device,
    select_runtimes,
    split_list,
)
from .common import out_dir, seconds
from .models import resolve_one

if TYPE_CHECKING:
    from ..results.accuracyrun import AccuracyRun
    from ..results.loadrun import LoadRun


def _remote_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The model a remote server describes, with --shape/--value-range applied."""
    from ..loadgen.remote import Remote, parse_target, remote_model
    from ..models.shapes import (
        apply_shapes,
        apply_value_ranges,
        check_generable,
        parse_inputs,
        parse_shapes,
        parse_value_ranges,
    )

    if args.model or args.runtime:
        raise UsageError("--target URL: the server says the model and runtime; give neither "
                         "MODEL nor --runtime")
    target = parse_target(args.target)
    print(f"asking {target.url} for its model metadata...", file=sys.stderr)
    with Remote(target, connections=1) as remote:
        model = remote_model(target, remote.meta)
        platform = str(remote.meta.get("platform", "")) or "v2-server"
    model = apply_value_ranges(apply_shapes(model, parse_shapes(args.shape)),
                               parse_value_ranges(args.value_range))
    data = parse_inputs(args.inputs)
    if not data:
        check_generable(model, "the server's metadata does not state it")
    return model, platform, data


def _load_config(args: argparse.Namespace, targets: str | None, arrivals: str):  # type: ignore[no-untyped-def]
    from ..loadgen.arrivals import ARRIVALS
    from ..loadgen.batching import parse_batching
    from ..loadgen.run import LoadConfig, validate

    remote = bool(getattr(args, "target", None))
    if remote:
        model, runtime, data = _remote_model(args)
        variant = ""
    else:
        if not args.model or not args.runtime:
            raise UsageError(f"{args.command} needs a MODEL and --runtime, or a remote "
                             "--target URL")
        choice = select_runtimes(args.runtime, args.variant)
        if len(choice) != 1 or len(choice[0].variants) != 1:
            raise UsageError("--runtime: name exactly one runtime (and at most one --variant)")
        runtime, variant, data = choice[0].name, choice[0].variants[0], ()
    arr = tuple(split_list(arrivals))
    for a in arr:
        if a not in ARRIVALS:
            raise UsageError(f"--arrivals: unknown '{a}'; valid: {', '.join(ARRIVALS)}")
    try:
        instances = tuple(int(i) for i in split_list(args.instances))
        concurrency = tuple(int(c) for c in split_list(args.concurrency or ""))
    except ValueError:
        raise UsageError(f"--instances/--concurrency: '{args.instances}' / "
                         f"'{args.concurrency}' is not a list of numbers") from None
    threads = parse_threads(args.threads_per_instance) if args.threads_per_instance else (None,)
    if not remote:
        print(f"preparing {args.model}...", file=sys.stderr)
        model = resolve_one(args.model, args)
    cfg = LoadConfig(model=model, runtime=runtime, variant=variant, instances=instances,
                     threads=threads, engine=args.engine, arrivals=arr,
                     targets_s=tuple(seconds(t, "--targets") for t in split_list(targets or "")),
                     percentile=args.percentile,
                     duration_s=seconds(args.duration, "--duration"),
                     qps=getattr(args, "qps", None), precision=getattr(args, "precision", 0.1),
                     pin=args.pin,
                     batching=parse_batching(args.dynamic_batching) if args.dynamic_batching
                     else None,
                     target=args.target if remote else "", concurrency=concurrency,
                     window_s=seconds(args.window, "--window"), stability=args.stability,
                     data=data,
                     request_timeout_s=seconds(args.request_timeout, "--request-timeout"))
    validate(cfg)
    return cfg


def _split_target(args: argparse.Namespace) -> None:
    """loadtest's --target is the server's URL; a latency there is the older spelling of
    --targets, still read as one."""
    t = getattr(args, "target", None)
    if t and "://" not in t:
        if getattr(args, "latency_target", None):
            raise UsageError("--target is the server's URL; the latency bound is --targets")
        print(f"note: --target {t} is read as --targets {t} (the latency bound); --target "
              "now names a remote server's URL", file=sys.stderr)
        args.latency_target, args.target = t, None


def load_targets(args: argparse.Namespace) -> list[str | None]:
    """--target: one server's URL, two (A,B) to compare, or none (in-process)."""
    t = getattr(args, "target", None)
    if not t or "://" not in t:
        return [t]
    urls = split_list(t)
    if len(urls) > 2:
        raise UsageError("--target: one server's URL, or two (A,B) to compare")
    return list(urls)


def repeat_load(args: argparse.Namespace, echo: Callable[[str], None] = print
                ) -> Iterator[tuple[str, argparse.Namespace, LoadRun, Path]]:
    """--repeat N and --target A,B: the whole test N times, each with fresh processes and
    connections, A and B taking turns run by run (a host drifts: one side's runs taken
    together would put the drift into the difference), into OUTPUT/1..N or OUTPUT/A/1..N
    and OUTPUT/B/1..N; each run as it is stored, with its side's label."""
    targets = load_targets(args)
    n = args.repeat
    if n < 1:
        raise UsageError("--repeat: a number of runs, 1 or more")
    labels = ("A", "B") if len(targets) == 2 else ("",)
    base = out_dir(args.output, f"{args.command}-x{n}")
    for k in range(1, n + 1):
        for label, target in zip(labels, targets, strict=True):
            one = argparse.Namespace(**vars(args))
            one.target, one.repeat, one.output = target, 1, str(base / label / str(k))
            echo(f"--- {args.command} {k} of {n}" + (f", {label}: {target}" if label else ""))
            run, out = start_load(one, echo)
            yield label, one, run, out


def start_load(args: argparse.Namespace, echo: Callable[[str], None] = print
               ) -> tuple[LoadRun, Path]:
    """loadtest's and scan's work, for the CLI and the Python API: the config checked, the
    test run, the stored run and its directory."""
    from ..loadgen import run as load
    from ..measure.machine import machine_info

    if getattr(args, "repeat", 1) != 1 or len(load_targets(args)) > 1:
        raise UsageError("one run here: --repeat N and --target A,B are the command line's "
                         "(or call this once per run)")
    kind = args.command
    if kind == "scan":
        cfg = _load_config(args, args.targets, args.arrivals)
    else:
        _split_target(args)
        cfg = _load_config(args, args.latency_target, args.arrivals)
        if cfg.concurrency:
            if args.scenario not in (None, "concurrency"):
                raise UsageError("--concurrency is the concurrency scenario; drop --scenario "
                                 f"{args.scenario}")
            args.scenario = "concurrency"
        args.scenario = args.scenario or "server"
        if args.scenario == "concurrency" and not cfg.concurrency:
            raise UsageError("--scenario concurrency needs --concurrency N[,N...]")
        if args.scenario == "server" and cfg.qps is None:
            raise UsageError("--qps is required for the server scenario")
    out = out_dir(args.output, f"{kind}-{cfg.model.name}")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    accuracy = ("not checked: a remote server's outputs" if cfg.target
                else load.check_accuracy(cfg.model))
    echo(f"check_accuracy {accuracy}")
    if kind == "scan":
        results, steps, version = load.scan(cfg, out / "logs", echo)
    else:
        steps, version = load.loadtest(cfg, args.scenario, args.queries, args.batch,
                                       out / "logs", echo)
        results = {}
    run = load.new_run(kind, cfg, args.command_line, machine_info(), version, accuracy,
                       results, steps)
    load.save(out, run)
    return run, out


def start_accuracy(args: argparse.Namespace) -> tuple[AccuracyRun, Path]:
    """accuracy's work, for the CLI and the Python API: the stored run and its directory."""
    from .. import datasets, scoring
    from ..measure.machine import machine_info
    from ..models.resolve import resolve
    from ..results.store import write_json

    precisions = split_list(args.precisions)
    for p in precisions:
        if p not in ("fp32", "fp16", "bf16", "int8"):
            raise UsageError(f"--precisions: unknown '{p}'; valid: fp32, fp16, bf16, int8")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    require_device(args.device)
    names = [c.name for c in select_runtimes(args.runtimes, None, None, args.device)]
    threads = parse_threads(args.threads)[0] if args.threads else None
    batch = parse_batches(args.batch)[0]
    spec = args.dataset or ("digits" if args.model == "digits" else None)
    if spec is None:
        raise UsageError(f"--dataset is required for {args.model} (digits, imagenet:DIR, "
                         "folder:DIR)")
    datasets.parse(spec)
    model = resolve(args.model)
    data, model = datasets.load_any(spec, model, args.limit)
    if data.labels is not None and not any(o.kind == "classes" for o in model.io.outputs):
        raise UsageError(f"model '{model.name}' outputs {model.output_kind} values, not a class "
                         "vector: top-1 accuracy needs one score per class (without labels "
                         "in the npz, the rows report agreement with fp32)")
    out = out_dir(args.output, f"accuracy-{model.name}")
    rows, reference = scoring.run(model, data, names, precisions, batch=batch, threads=threads,
                                   out=out, timeout_s=args.timeout, max_drop=args.max_drop,
                                   on_line=lambda s: print(s, file=sys.stderr),
                                   device=args.device)
    run = scoring.record(model, data, rows, reference, batch=batch, threads=threads,
                          max_drop=args.max_drop, command=args.command_line,
                          machine=machine_info(), device=args.device)
    write_json(out / "results.json", run)
    return run, out
