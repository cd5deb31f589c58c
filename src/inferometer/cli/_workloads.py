"""loadtest, scan, accuracy, train: the workloads beyond single-stream speed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..commands.common import out_dir
from ..commands.workloads import load_targets, repeat_load, start_accuracy, start_load
from ..plan import (
    parse_threads,
    require_device,
    split_list,
)

if TYPE_CHECKING:
    from ..results.loadrun import LoadRun


def _concurrency_table(steps) -> str:  # type: ignore[no-untyped-def]
    from ..report.table import render

    rows = []
    for s in steps:
        st = s.step
        server = st.server
        rows.append([str(st.concurrency), f"{st.achieved_qps:.2f}",
                     *(f"{st.tiles_s.get(k, 0.0) * 1e3:.2f}" for k in ("50", "90", "95", "99")),
                     f"{server['queue_ms']:.2f}" if "queue_ms" in server else "-",
                     f"{server['compute_ms']:.2f}" if "compute_ms" in server else "-",
                     # getting the tensors to the model and the outputs back (Triton's
                     # compute_input and compute_output): the server's own cost per request
                     (f"{server['input_ms']:.2f} / {server['output_ms']:.2f}"
                      if "input_ms" in server and "output_ms" in server else "-"),
                     str(st.errors), "VALID" if st.valid else "INVALID"])
    return render(("concurrency", "infer/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms",
                   "server queue ms", "server compute ms", "server in / out ms", "errors",
                   "verdict"), rows)


def cmd_load(args: argparse.Namespace) -> int:
    if args.repeat == 1 and len(load_targets(args)) == 1:
        run, out = start_load(args)
        return _shown(args, run, out)
    from ..report.loadcompare import load_comparison

    sides: dict[str, list[LoadRun]] = {}
    dirs: dict[str, Path] = {}
    failed = 0
    for label, one, run, out in repeat_load(args):
        failed |= _shown(one, run, out)
        sides.setdefault(label, []).append(run)
        dirs[label] = out.parent
    if len(sides) == 2:
        a, b = dirs["A"], dirs["B"]
        print(load_comparison(sides["A"], sides["B"], str(a), str(b)).text())
        print(f"runs: {a}, {b} (again: inferometer compare {a} {b})")
    else:
        print(f"{len(sides[''])} runs: {dirs['']} (inferometer compare {dirs['']} OTHER tests "
              "a change against their spread; take the two sides' runs in turn, or give "
              "--target A,B)")
    return failed


def _shown(args: argparse.Namespace, run: LoadRun, out: Path) -> int:
    """One run's answer as loadtest and scan print it; 1 when a request failed."""
    if run.kind == "scan":
        res = run.results
        final = next(iter(res.values())) if len(res) == 1 else res  # one config: unnested
        print(f"===FINAL_RESULT: {final}")
    elif args.scenario == "concurrency":
        print(_concurrency_table(run.scan))
    print(f"results: {out / 'results.json'}")
    return 0 if all(s.step.errors == 0 for s in run.scan) else 1


def cmd_accuracy(args: argparse.Namespace) -> int:
    from ..report.table import precision_table

    run, out = start_accuracy(args)
    print(precision_table(run))
    print(f"results: {out / 'results.json'}")
    return 0 if all(r.status != "failed" for r in run.rows) else 1


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
