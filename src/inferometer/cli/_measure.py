"""runtimes, models, env, run, show: what is installed, and the speed runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import envs, runtimes
from ..commands.run import start
from ..models.zoo import ZOO, ZooEntry, describe
from ..report.table import render, run_tables
from ..results.codec import to_dict


def cmd_runtimes(args: argparse.Namespace) -> int:
    from ..plan import device_reason

    rows = []
    for name in envs.runtime_names():
        rt = runtimes.get(name)()
        a = envs.availability(name)
        groups = {}
        for v in rt.variants:
            for d in v.devices:
                groups.setdefault(d, []).append(v.name)
        # devices named unless the runtime's variants all run on the CPU alone
        variants = "\n".join(f"{d}: {', '.join(vs)}" if set(groups) != {"cpu"}
                             else ", ".join(vs) for d, vs in groups.items())
        why = "" if a.available else a.reason or ""
        if not a.available and a.install:
            why += f"; install: {a.install}"
        # CUDA: yes, no (and why), or "-" for a runtime that is missing or never meant for
        # CUDA (a CPU runtime's "cpu only" on every row would only be noise)
        cuda = device_reason(rt, "cuda") if a.available else None
        meant = "cuda" in groups or "cuda" in getattr(rt, "device_notes", {})
        rows.append([name, a.version or "-", "yes" if a.available else "no",
                     "-" if not a.available or not meant else "no" if cuda else "yes",
                     variants, "\n".join(filter(None, [why, cuda and meant and f"cuda: {cuda}"]))])
    print(render(("runtime", "version", "available", "cuda", "variants", "why not / install"),
                 rows, wrap={4: 48, 5: 60}))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
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


def _inputs_text(e: ZooEntry) -> str:
    if e.io.image is not None:
        return "x".join(map(str, e.input_shape))
    defaults = dict(e.io.defaults)
    return "\n".join(f"{i.name} {i.tensor.dtype}" for i in e.io.inputs) + "".join(
        f"\n{d}={defaults[d]}" for d in e.io.dims() if d in defaults)


def cmd_models(args: argparse.Namespace) -> int:
    rows = []
    for e in ZOO.values():
        try:
            params, gflops = describe(e)
            p, g = f"{params:.2f}", f"{gflops:.2f}"
        except ImportError as exc:
            p = g = "(needs torch)" if "torch" in str(exc) else "(needs transformers)"
        outputs = "\n".join(f"{o.name}: {o.kind}" if len(e.io.outputs) > 1 else o.kind
                            for o in e.io.outputs)
        rows.append([e.name, _inputs_text(e), p, g, outputs, e.about])
    print(render(("model", "inputs", "params M", "GFLOPs", "outputs", "about"), rows,
                 wrap={5: 50}))
    print("GFLOPs are multiply-adds per item at the default shape (batch 1), as torchvision "
          "and the papers count them. Any .onnx, .pt2 or traced TorchScript file is accepted "
          "too: inferometer inspect FILE shows what it takes.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        started = start(args)
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted: finished cells are saved; resume with: "
              f"inferometer run --resume {exc.args[0] if exc.args else 'RUN_DIR'}",
              file=sys.stderr)
        return 130
    if started is None:
        return 0
    run, rundir = started
    print(run_tables(run))
    print(f"\nresults: {rundir.path / 'results.json'} (raw samples in samples/, "
          f"table in results.csv)")
    if args.report:
        from ..report.write import write_report

        files = write_report(rundir.path)
        print(f"report: {files.html} (and report.md, plots/)")
    return 0 if all(c.status == "ok" for c in run.cells) else 1


def cmd_show(args: argparse.Namespace) -> int:
    from ..report.table import tables
    from ..results.store import load_result

    run = load_result(Path(args.run_dir))
    print(json.dumps(to_dict(run), indent=1) if args.json else tables(run))
    return 0
