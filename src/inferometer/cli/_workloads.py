"""loadtest, scan, accuracy, train: the workloads beyond single-stream speed."""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError
from ..plan import (
    parse_batches,
    parse_threads,
    require_device,
    select_runtimes,
    split_list,
)
from ._common import out_dir, seconds
from ._models import resolve_one


def _load_config(args: argparse.Namespace, targets: str | None, arrivals: str):  # type: ignore[no-untyped-def]
    from ..load.arrivals import ARRIVALS
    from ..load.batching import parse_batching
    from ..load.run import LoadConfig, validate

    choice = select_runtimes(args.runtime, args.variant)
    if len(choice) != 1 or len(choice[0].variants) != 1:
        raise UsageError("--runtime: name exactly one runtime (and at most one --variant)")
    arr = tuple(split_list(arrivals))
    for a in arr:
        if a not in ARRIVALS:
            raise UsageError(f"--arrivals: unknown '{a}'; valid: {', '.join(ARRIVALS)}")
    try:
        instances = tuple(int(i) for i in split_list(args.instances))
    except ValueError:
        raise UsageError(f"--instances: '{args.instances}' is not a list of numbers") from None
    threads = parse_threads(args.threads_per_instance) if args.threads_per_instance else (None,)
    print(f"preparing {args.model}...", file=sys.stderr)
    cfg = LoadConfig(model=resolve_one(args.model, args), runtime=choice[0].name,
                     variant=choice[0].variants[0], instances=instances, threads=threads,
                     engine=args.engine, arrivals=arr,
                     targets_s=tuple(seconds(t, "--targets") for t in split_list(targets or "")),
                     percentile=args.percentile,
                     duration_s=seconds(args.duration, "--duration"),
                     qps=getattr(args, "qps", None), precision=getattr(args, "precision", 0.1),
                     pin=args.pin,
                     batching=parse_batching(args.dynamic_batching) if args.dynamic_batching
                     else None)
    validate(cfg)
    return cfg


def cmd_load(args: argparse.Namespace) -> int:
    from ..load import run as load
    from ..measure.machine import machine_info

    kind = args.command
    if kind == "scan":
        cfg = _load_config(args, args.targets, args.arrivals)
    else:
        cfg = _load_config(args, args.target, args.arrivals)
        if args.scenario == "server" and cfg.qps is None:
            raise UsageError("--qps is required for the server scenario")
    out = out_dir(args.output, f"{kind}-{args.model}")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    accuracy = load.check_accuracy(cfg.model)
    print(f"check_accuracy {accuracy}")
    if kind == "scan":
        results, steps, version = load.scan(cfg, out / "logs", print)
        final = {a: {t: q for label in results for t, q in results[label].get(a, {}).items()}
                 for a in cfg.arrivals} if len(results) == 1 else results
        print(f"===FINAL_RESULT: {final}")
    else:
        steps, version = load.loadtest(cfg, args.scenario, args.queries, args.batch,
                                       out / "logs", print)
        results = {}
    run = load.new_run(kind, cfg, args.command_line, machine_info(), version, accuracy,
                       results, steps)
    load.save(out, run)
    print(f"results: {out / 'results.json'}")
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    from .. import accuracy, datasets
    from ..measure.machine import machine_info
    from ..models.resolve import resolve
    from ..report.table import precision_table
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
    rows, reference = accuracy.run(model, data, names, precisions, batch=batch, threads=threads,
                                   out=out, timeout_s=args.timeout, max_drop=args.max_drop,
                                   on_line=lambda s: print(s, file=sys.stderr),
                                   device=args.device)
    run = accuracy.record(model, data, rows, reference, batch=batch, threads=threads,
                          max_drop=args.max_drop, command=args.command_line,
                          machine=machine_info(), device=args.device)
    write_json(out / "results.json", run)
    print(precision_table(run))
    print(f"results: {out / 'results.json'}")
    return 0 if all(r.status != "failed" for r in rows) else 1


def cmd_train(args: argparse.Namespace) -> int:
    from .. import training
    from ..measure.machine import machine_info
    from ..models.resolve import resolve
    from ..report.table import train_table
    from ..results.store import write_json

    precisions = split_list(args.precisions)
    threads = parse_threads(args.threads)[0] if args.threads else None
    require_device(args.device)  # before preparing the model: said at once
    model = resolve(args.model)
    training.validate(model, args.device, args.optimizer, precisions, args.batch,
                      args.iterations)
    out = out_dir(args.output, f"train-{model.name}")

    run = training.train(model, device=args.device, batch=args.batch, optimizer=args.optimizer,
                         precisions=precisions, threads=threads, warmup=args.warmup,
                         iterations=args.iterations, channels_last=args.channels_last,
                         out=out, timeout_s=args.timeout, command=args.command_line,
                         machine=machine_info(),
                         on_row=lambda r: print(f"{r.precision}: " + (
                             f"step p50 {r.total.p50_ms:.2f} ms" if r.total else
                             f"FAILED: {r.error}"), file=sys.stderr))
    write_json(out / "results.json", run)
    print(train_table(run))
    print(f"results: {out / 'results.json'}")
    return 0 if all(r.status == "ok" for r in run.rows) else 1
