"""Command line: parse, call, print.  No logic lives here."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, envs, runtimes
from .errors import InferometerError, UsageError
from .models.zoo import ZOO, describe
from .plan import (
    Plan,
    expand,
    parse_batches,
    parse_shape,
    parse_threads,
    select_runtimes,
    split_list,
)
from .progress import Progress
from .report.table import render, run_tables
from .results.codec import from_dict, to_dict
from .results.schema import RunSettings
from .results.store import RunDir
from .scenarios import RunLength


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _cmd_runtimes(args: argparse.Namespace) -> int:
    from .plan import device_reason

    rows = []
    for name in envs.runtime_names():
        rt = runtimes.get(name)()
        a = envs.availability(name)
        groups = {}
        for v in rt.variants:
            for d in v.devices:
                groups.setdefault(d, []).append(v.name)
        variants = "; ".join(f"{d}: {', '.join(vs)}" if len(groups) > 1 else ", ".join(vs)
                             for d, vs in groups.items())
        why = "" if a.available else a.reason or ""
        if not a.available and a.install:
            why += f"; install: {a.install}"
        cuda = "-" if not a.available else (device_reason(rt, "cuda") or "yes")
        rows.append([name, a.version or "-", "yes" if a.available else "no",
                     cuda if cuda in ("yes", "-") else "no", variants,
                     "; ".join(filter(None, [why, "" if cuda in ("yes", "-")
                                             else f"cuda: {cuda}"]))])
    print(render(("runtime", "version", "available", "cuda", "variants", "why not / install"),
                 rows))
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    if args.env_command == "create":
        info = envs.create(args.spec, log=lambda msg: print(msg, file=sys.stderr))
        print(f"environment {info.name}: {info.runtime} {info.runtime_version} ({info.python})")
    elif args.env_command == "remove":
        envs.remove(args.name)
        print(f"removed environment {args.name}")
    else:
        rows = [[e.name, e.runtime, e.runtime_version, " ".join(e.requirements), e.created]
                for e in envs.list_envs()]
        print(render(("environment", "runtime", "version", "requirements", "created"), rows)
              if rows else f"no environments under {envs.root()}; known recipes: "
              f"{', '.join(envs.RECIPES)}, or any pinned runtime package (onnxruntime==1.20.1)")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    rows = []
    for e in ZOO.values():
        try:
            params, gflops = describe(e)
            p, g = f"{params:.2f}", f"{gflops:.2f}"
        except ImportError:
            p = g = "(needs torch)"
        rows.append([e.name, "x".join(map(str, e.input_shape)), p, g, e.output_kind, e.about])
    print(render(("model", "input", "params M", "GFLOPs", "output", "about"), rows))
    print("GFLOPs are multiply-adds per image, as torchvision and the papers count them. "
          "Any .onnx file path is accepted too.")
    return 0


def _length(args: argparse.Namespace) -> RunLength:
    try:
        return RunLength(warmup=args.warmup, min_time_s=args.min_time, min_count=args.min_count,
                         max_time_s=max(args.max_time, args.min_time),
                         target_rel_ci=args.target_ci / 100.0)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _new_plan(args: argparse.Namespace, argv: Sequence[str]) -> tuple[Plan, list[str]]:
    from .models.resolve import resolve

    if not args.models:
        raise UsageError("run: name a model (see inferometer models) or use --resume RUN_DIR")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    threads = parse_threads(args.threads)
    batches = parse_batches(args.batch)
    shape = parse_shape(args.shape)
    if args.device not in ("cpu", "cuda"):
        raise UsageError(f"--device: unknown '{args.device}'; valid: cpu, cuda")
    if args.device == "cuda":
        from .measure.gpu import cuda_devices, no_cuda_reason

        if not cuda_devices():
            raise UsageError(no_cuda_reason())
    notes: list[str] = []
    choices = select_runtimes(args.runtimes, args.variants, args.precisions, args.device, notes)
    runtimes.get(args.reference)  # an unknown reference runtime is a usage error
    models = []
    for name in split_list(args.models):
        if name in ZOO:
            print(f"preparing {name} (exported to ONNX once, then cached)...", file=sys.stderr)
        models.append(resolve(name, shape))
    if len({m.name for m in models}) != len(models):
        raise UsageError("two models have the same name; rename one file")
    cells, more = expand(models, choices, threads, batches, args.device)
    length = _length(args)
    settings = RunSettings(preprocess_timed=not args.no_preprocess, pin=args.pin,
                           timeout_s=args.timeout, reference_runtime=args.reference,
                           warmup=length.warmup, min_time_s=length.min_time_s,
                           min_count=length.min_count, max_time_s=length.max_time_s,
                           target_rel_ci=length.target_rel_ci, noisy_threshold=args.noisy)
    return Plan(tuple(models), cells, length, settings, ("inferometer", *argv)), notes + more


def _default_dir(plan: Plan) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{'+'.join(m.name for m in plan.models)}"[:120]
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .measure.machine import machine_info
    from .runner import Runner

    if args.resume:
        rundir = RunDir(Path(args.resume))
        data = rundir.plan()
        plan, created, machine = from_dict(Plan, data["plan"]), data["created"], data["machine"]
        missing = [m.onnx_path for m in plan.models if not Path(m.onnx_path).exists()]
        if missing:
            raise UsageError(f"cannot resume: model file {missing[0]} is gone; start a new run")
    else:
        plan, notes = _new_plan(args, argv)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        rundir = RunDir(Path(args.output) if args.output else _default_dir(plan))
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        machine = machine_info()
        rundir.create({"created": created, "machine": machine, "plan": to_dict(plan)})
    print(f"run directory: {rundir.path} ({len(plan.cells)} cells)", file=sys.stderr)
    runner = Runner(plan, rundir, machine, created, Progress())
    try:
        run = runner.execute(resume=bool(args.resume))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are saved; resume with: "
              f"inferometer run --resume {rundir.path}", file=sys.stderr)
        return 130
    print(run_tables(run))
    print(f"\nresults: {rundir.path / 'results.json'} (raw samples in samples/, "
          f"table in results.csv)")
    if args.report:
        from .report.write import write_report

        files = write_report(rundir.path)
        print(f"report: {files.html} (and report.md, plots/)")
    return 0 if all(c.status == "ok" for c in run.cells) else 1


def _seconds(text: str, flag: str) -> float:
    """'100ms', '30s', '2m' or a bare number of seconds."""
    t = text.strip().lower()
    for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], scale
            break
    else:
        mult = 1.0
    try:
        return float(t) * mult
    except ValueError:
        raise UsageError(f"{flag}: '{text}' is not a duration like 100ms or 30s") from None


def _load_config(args: argparse.Namespace, targets: str | None, arrivals: str):  # type: ignore[no-untyped-def]
    from .load.arrivals import ARRIVALS
    from .load.run import LoadConfig, validate
    from .models.resolve import resolve

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
    cfg = LoadConfig(model=resolve(args.model), runtime=choice[0].name,
                     variant=choice[0].variants[0], instances=instances, threads=threads,
                     engine=args.engine, arrivals=arr,
                     targets_s=tuple(_seconds(t, "--targets") for t in split_list(targets or "")),
                     percentile=args.percentile,
                     duration_s=_seconds(args.duration, "--duration"),
                     qps=getattr(args, "qps", None), precision=getattr(args, "precision", 0.1),
                     pin=args.pin)
    validate(cfg)
    return cfg


def _load_dir(args: argparse.Namespace, kind: str) -> Path:
    if args.output:
        return Path(args.output)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{kind}-{args.model}"


def _cmd_load(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .load import run as load
    from .measure.machine import machine_info

    kind = args.command
    if kind == "scan":
        cfg = _load_config(args, args.targets, args.arrivals)
    else:
        cfg = _load_config(args, args.target, args.arrivals)
        if args.scenario == "server" and cfg.qps is None:
            raise UsageError("--qps is required for the server scenario")
    out = _load_dir(args, kind)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} already exists and is not empty; choose another --output")
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
    run = load.new_run(kind, cfg, ("inferometer", *argv), machine_info(), version, accuracy,
                       results, steps)
    load.save(out, run)
    print(f"results: {out / 'results.json'}")
    return 0


def _cmd_accuracy(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from . import accuracy, datasets
    from .measure.machine import machine_info
    from .models.resolve import resolve
    from .report.table import precision_table
    from .results.store import write_json

    precisions = split_list(args.precisions)
    for p in precisions:
        if p not in ("fp32", "fp16", "bf16", "int8"):
            raise UsageError(f"--precisions: unknown '{p}'; valid: fp32, fp16, bf16, int8")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    names = [c.name for c in select_runtimes(args.runtimes, None)]
    threads = parse_threads(args.threads)[0] if args.threads else None
    batch = parse_batches(args.batch)[0]
    spec = args.dataset or ("digits" if args.model == "digits" else None)
    if spec is None:
        raise UsageError(f"--dataset is required for {args.model} (digits, imagenet:DIR, "
                         "folder:DIR)")
    datasets.parse(spec)
    model = resolve(args.model)
    if model.output_kind != "classes":
        raise UsageError(f"model '{model.name}' outputs {model.output_kind} values, not a class "
                         "vector: top-1 accuracy needs one score per class")
    data = datasets.load(spec, model, args.limit)
    out = Path(args.output) if args.output else Path("runs") / (
        dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-accuracy-{model.name}")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} already exists and is not empty; choose another --output")
    rows, reference = accuracy.run(model, data, names, precisions, batch=batch, threads=threads,
                                   out=out, timeout_s=args.timeout, max_drop=args.max_drop,
                                   on_line=lambda s: print(s, file=sys.stderr))
    run = accuracy.record(model, data, rows, reference, batch=batch, threads=threads,
                          max_drop=args.max_drop, command=("inferometer", *argv),
                          machine=machine_info())
    write_json(out / "results.json", run)
    print(precision_table(run))
    print(f"results: {out / 'results.json'}")
    return 0 if all(r.status != "failed" for r in rows) else 1


def _cmd_show(args: argparse.Namespace) -> int:
    from .report.table import tables
    from .results.store import load_result

    run = load_result(Path(args.run_dir))
    print(json.dumps(to_dict(run), indent=1) if args.json else tables(run))
    return 0


def _cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from . import training
    from .measure.machine import machine_info
    from .models.resolve import resolve
    from .report.table import train_table
    from .results.store import write_json

    precisions = split_list(args.precisions)
    threads = parse_threads(args.threads)[0] if args.threads else None
    training.validate_device(args.device)  # before preparing the model: said at once
    model = resolve(args.model)
    training.validate(model, args.device, args.optimizer, precisions, args.batch,
                      args.iterations)
    out = Path(args.output) if args.output else Path("runs") / (
        dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-train-{model.name}")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} already exists and is not empty; choose another --output")

    run = training.train(model, device=args.device, batch=args.batch, optimizer=args.optimizer,
                         precisions=precisions, threads=threads, warmup=args.warmup,
                         iterations=args.iterations, channels_last=args.channels_last,
                         out=out, timeout_s=args.timeout, command=("inferometer", *argv),
                         machine=machine_info(),
                         on_row=lambda r: print(f"{r.precision}: " + (
                             f"step p50 {r.total.p50_ms:.2f} ms" if r.total else
                             f"FAILED: {r.error}"), file=sys.stderr))
    write_json(out / "results.json", run)
    print(train_table(run))
    print(f"results: {out / 'results.json'}")
    return 0 if all(r.status == "ok" for r in run.rows) else 1


def _cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from .report.write import write_report

    files = write_report(Path(args.run_dir))
    print(f"report: {files.html}\n        {files.markdown}\n"
          f"plots:  {len(files.plots) // 2} figures (PNG and SVG) in {files.html.parent / 'plots'}")
    if args.open and not webbrowser.open(files.html.resolve().as_uri()):
        print(f"no browser found here: open {files.html} yourself", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs, parse_fail_on, regressions
    from .report.table import comparison_text

    if not 0 <= args.noise < 100:
        raise UsageError("--noise: a percentage in [0, 100)")
    thresholds = parse_fail_on(args.fail_on)
    cmp = compare_runs(args.run_a, args.run_b, noise=args.noise / 100.0)
    bad = regressions(cmp, thresholds)
    if args.json:
        print(json.dumps({**to_dict(cmp), "regressions": bad, "geomean_p50": cmp.geomean()},
                         indent=1))
    else:
        print(comparison_text(cmp, bad))
    return 1 if bad else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .results.export import export
    from .results.store import load_result

    src = Path(args.run_dir)
    run = load_result(src)
    out = Path(args.output) if args.output else src / f"export.{args.format}"
    export(run, args.format, out)
    print(f"wrote {out}")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from .history import HISTORY_HEADERS, history, history_rows

    points = history(Path(args.runs), args.model, args.runtime, args.variant, args.threads,
                     args.batch)
    if not points:
        print(f"no stored cells of {args.model} matching under {args.runs}", file=sys.stderr)
        return 1
    print(render(HISTORY_HEADERS, history_rows(points)))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="inferometer", description=__doc__)
    p.add_argument("--version", action="version", version=f"inferometer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("runtimes", help="list runtimes, versions, availability, install hints")
    sub.add_parser("models", help="list the model zoo")
    r = sub.add_parser("run", help="benchmark models across runtimes, threads and batch sizes")
    r.add_argument("models", nargs="?", help="zoo names or .onnx paths, comma-separated")
    r.add_argument("--runtimes", help="comma-separated; name or name:variant (default: installed)")
    r.add_argument("--variants", help="comma-separated variants, for the runtimes that have them")
    r.add_argument("--precisions", help="fp32,bf16,int8...: each runtime's variant per precision")
    r.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    r.add_argument("--threads", help="comma-separated counts and/or 'auto' (default: 1..ncpu,auto)")
    r.add_argument("--batch", help="comma-separated batch sizes (default: 1)")
    r.add_argument("--shape", help="one item's CxHxW for .onnx files with dynamic dims")
    r.add_argument("--output", help="run directory (default: runs/<timestamp>-<models>)")
    r.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run")
    r.add_argument("--no-preprocess", action="store_true",
                   help="time the runtime call alone, not the uint8 -> input conversion")
    r.add_argument("--pin", action="store_true", help="pin each worker to its first N CPUs")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds per cell (600)")
    r.add_argument("--warmup", type=int, default=3, help="warm-up runs after the first (3)")
    r.add_argument("--min-time", type=float, default=2.0, help="seconds, at least (2)")
    r.add_argument("--max-time", type=float, default=10.0, help="seconds, at most (10)")
    r.add_argument("--min-count", type=int, default=10, help="runs, at least (10)")
    r.add_argument("--target-ci", type=float, default=1.0,
                   help="stop when the median's 95%% CI is within +-this %% (1)")
    r.add_argument("--noisy", type=float, default=0.15,
                   help="flag a cell when other processes used more than this CPU share (0.15)")
    r.add_argument("--reference", default="onnxruntime", help="integrity reference runtime")
    r.add_argument("--report", action="store_true",
                   help="also write report.html, report.md and plots/ (inferometer report)")
    e = sub.add_parser("env", help="managed per-runtime environments")
    esub = e.add_subparsers(dest="env_command", required=True, parser_class=_Parser)
    ec = esub.add_parser("create", help="create (or reuse) an environment")
    ec.add_argument("spec", help=f"{', '.join(envs.RECIPES)}, or a pinned package like "
                    "onnxruntime==1.20.1")
    esub.add_parser("list", help="list environments")
    er = esub.add_parser("remove", help="delete an environment")
    er.add_argument("name")
    def load_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="zoo name or .onnx path")
        p.add_argument("--runtime", required=True, help="one runtime (name or name:variant)")
        p.add_argument("--variant", help="the runtime's variant (default: its default)")
        p.add_argument("--engine", default="native", help="native (ours) or mlperf (LoadGen)")
        p.add_argument("--instances", default="1", help="runtime instances (processes)")
        p.add_argument("--threads-per-instance", help="threads per instance (default: auto)")
        p.add_argument("--percentile", type=float, default=99.0, help="latency percentile (99)")
        p.add_argument("--duration", default="10s", help="at least this long per test (10s)")
        p.add_argument("--pin", action="store_true", help="pin instances to disjoint CPUs")
        p.add_argument("--output", help="run directory (default: runs/<ts>-<kind>-<model>)")

    lt = sub.add_parser("loadtest", help="one server or offline load test")
    load_args(lt)
    lt.add_argument("--scenario", choices=("server", "offline", "single-stream"),
                    default="server")
    lt.add_argument("--qps", type=float, help="offered queries per second (server)")
    lt.add_argument("--arrivals", default="exponential", help="linear or exponential")
    lt.add_argument("--target", help="latency bound for VALID, e.g. 100ms (server)")
    lt.add_argument("--queries", type=int, default=256, help="items (offline; 256)")
    lt.add_argument("--batch", type=int, default=8, help="batch size (offline; 8)")
    sc = sub.add_parser("scan", help="max QPS whose p99 meets each latency target")
    load_args(sc)
    sc.add_argument("--targets", default="10ms,50ms,100ms,200ms", help="latency bounds")
    sc.add_argument("--arrivals", default="linear,exponential", help="arrival processes")
    sc.add_argument("--precision", type=float, default=0.1,
                    help="stop bisecting when the QPS bracket is within this fraction (0.1)")
    a = sub.add_parser("accuracy", help="top-1 per runtime x precision on labelled data")
    a.add_argument("model", help="zoo name or .onnx path (digits: the built-in trained model)")
    a.add_argument("--dataset", help="digits, imagenet:DIR (val_map.txt) or folder:DIR")
    a.add_argument("--limit", type=int, help="first N images only")
    a.add_argument("--runtimes", help="comma-separated (default: installed)")
    a.add_argument("--precisions", default="fp32,bf16,int8", help="fp32,fp16,bf16,int8")
    a.add_argument("--batch", default="1", help="batch size (1)")
    a.add_argument("--threads", help="threads (default: auto)")
    a.add_argument("--max-drop", type=float, default=1.0,
                   help="flag rows whose top-1 drops more than this many points (1.0)")
    a.add_argument("--timeout", type=float, default=900.0, help="seconds per job (900)")
    a.add_argument("--output", help="run directory (default: runs/<ts>-accuracy-<model>)")
    s = sub.add_parser("show", help="print the tables of a stored run")
    s.add_argument("run_dir")
    s.add_argument("--json", action="store_true",
                   help="print the results as JSON (current schema)")
    t = sub.add_parser("train", help="time a training step: forward, backward, update")
    t.add_argument("model", help="zoo name")
    t.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    t.add_argument("--batch", type=int, default=32, help="batch size (32)")
    t.add_argument("--optimizer", default="sgd", help="sgd (momentum 0.9), adam or adamw")
    t.add_argument("--precisions", default="fp32,amp",
                   help="fp32 and/or amp (fp16 + loss scaling on CUDA, bf16 on the CPU)")
    t.add_argument("--threads", help="CPU threads (default: auto)")
    t.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    t.add_argument("--iterations", type=int, default=20, help="timed steps (20)")
    t.add_argument("--channels-last", action="store_true", help="model and input channels_last")
    t.add_argument("--timeout", type=float, default=1800.0, help="seconds per precision (1800)")
    t.add_argument("--output", help="run directory (default: runs/<ts>-train-<model>)")
    rp = sub.add_parser("report", help="plots, report.md and a self-contained report.html")
    rp.add_argument("run_dir")
    rp.add_argument("--open", action="store_true", help="open report.html in a browser")
    c = sub.add_parser("compare", help="B vs A per cell with confidence intervals; exit 1 on "
                       "regression")
    c.add_argument("run_a", help="baseline run directory")
    c.add_argument("run_b", help="candidate run directory")
    c.add_argument("--fail-on", default="p50",
                   help="METRIC[:PERCENT],...: exit 1 when a metric is significantly worse by "
                   "more than PERCENT (p50, p90, p99, mean, items_per_s, peak_rss, load_s; "
                   "default: p50, any significant slowdown)")
    c.add_argument("--noise", type=float, default=2.0,
                   help="changes within +-this %% are never called (2)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    x = sub.add_parser("export", help="write a run's rows as csv, json or parquet")
    x.add_argument("run_dir")
    x.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    x.add_argument("--output", help="file (default: RUN_DIR/export.FORMAT)")
    h = sub.add_parser("history", help="one configuration across stored runs, oldest first")
    h.add_argument("--model", required=True)
    h.add_argument("--runtime")
    h.add_argument("--variant")
    h.add_argument("--threads", help="a thread count or auto")
    h.add_argument("--batch", type=int)
    h.add_argument("--runs", default="runs", help="directory holding run directories (runs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "runtimes":
            return _cmd_runtimes(args)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "env":
            return _cmd_env(args)
        if args.command in ("loadtest", "scan"):
            return _cmd_load(args, argv)
        if args.command == "accuracy":
            return _cmd_accuracy(args, argv)
        if args.command == "train":
            return _cmd_train(args, argv)
        handler = {"report": _cmd_report, "compare": _cmd_compare, "export": _cmd_export,
                   "history": _cmd_history, "show": _cmd_show}[args.command]
        return handler(args)
    except InferometerError as exc:
        print(f"inferometer: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `inferometer show RUN | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
