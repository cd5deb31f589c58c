"""report, compare, export, history: reading stored runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError
from ..report.table import render
from ..results.codec import to_dict


def _figures(n: int) -> str:
    return f"{n} figure" + ("" if n == 1 else "s")


def cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from ..report.write import write_report

    files = write_report(Path(args.run_dir))
    print(f"report: {files.html}\n        {files.markdown}\n"
          f"plots:  {_figures(len(files.plots) // 2)} (PNG and SVG) in "
          f"{files.html.parent / 'plots'}")
    if args.open and not webbrowser.open(files.html.resolve().as_uri()):
        print(f"no browser found here: open {files.html} yourself", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..report.compare import compare_runs, parse_fail_on, regressions
    from ..report.table import comparison_text

    if not 0 <= args.noise < 100:
        raise UsageError("--noise: a percentage in [0, 100)")
    thresholds = parse_fail_on(args.fail_on)
    if args.by == "machine":
        if args.run_b:
            raise UsageError("compare --by machine takes one run (its machine types are the "
                             "sides)")
        from ..report.compare import compare_machines

        cmps = compare_machines(args.run_a, args.noise / 100.0, args.baseline)
    else:
        if not args.run_b:
            raise UsageError("compare: name two runs (A B), or one with --by machine")
        if args.baseline:
            raise UsageError("--baseline goes with --by machine")
        if _tune_pair(args) or _load_pair(args):
            return 0
        cmps = [compare_runs(args.run_a, args.run_b, noise=args.noise / 100.0)]
    verdicts = [(cmp, regressions(cmp, thresholds)) for cmp in cmps]
    if args.json:
        out = [{**to_dict(cmp), "regressions": bad, "geomean_p50": cmp.geomean()}
               for cmp, bad in verdicts]
        print(json.dumps(out[0] if args.by is None else out, indent=1))
    else:
        print("\n\n".join(comparison_text(cmp, bad) for cmp, bad in verdicts))
    return 1 if any(bad for _, bad in verdicts) else 0


def _kind_pair(args: argparse.Namespace, kind: type, what: str) -> tuple[list, list] | None:
    """Each side's runs of `kind` (tune or load runs compare only with their own kind), or
    None when none is; --fail-on gates speed runs only."""
    from ..report.compare import split_runs
    from ..results.store import RunDirError, load_result

    try:
        sides = [[load_result(Path(p)) for p in split_runs(side)]
                 for side in (args.run_a, args.run_b)]
    except RunDirError:
        return None  # not runs of one file each: the speed-run path says why
    kinds = [isinstance(r, kind) for side in sides for r in side]
    if not any(kinds):
        return None
    if not all(kinds):
        raise UsageError(f"compare: a {what} run compares only with another {what} run")
    if any(a.startswith("--fail-on") for a in args.command_line):
        raise UsageError(f"--fail-on gates speed runs (p50/p99/memory per cell), not {what} "
                         "runs")
    return sides[0], sides[1]


def _tune_pair(args: argparse.Namespace) -> bool:
    """Two tune runs: their own comparison (True when done)."""
    from ..report.tunecompare import tune_comparison_text
    from ..results.tunerun import TuneRun

    sides = _kind_pair(args, TuneRun, "tune")
    if sides is None:
        return False
    if len(sides[0]) != 1 or len(sides[1]) != 1:
        raise UsageError("compare: one tune run a side (each holds its own head-to-head "
                         "re-tests)")
    if args.json:
        raise UsageError("compare --json: speed and load runs; two tune runs compare as text "
                         "(each run's results.json holds its figures)")
    print(tune_comparison_text(sides[0][0], sides[1][0], args.run_a, args.run_b))
    return True


def _load_pair(args: argparse.Namespace) -> bool:
    """Load runs (loadtest or scan, in-process or remote), one or several a side: steps side
    by side."""
    from ..report.loadcompare import load_comparison
    from ..results.loadrun import LoadRun

    sides = _kind_pair(args, LoadRun, "load")
    if sides is not None:
        cmp = load_comparison(sides[0], sides[1], args.run_a, args.run_b)
        print(json.dumps(to_dict(cmp), indent=1) if args.json else cmp.text())
    return sides is not None


def cmd_export(args: argparse.Namespace) -> int:
    from ..results.export import export
    from ..results.store import load_result

    src = Path(args.run_dir)
    run = load_result(src)
    out = Path(args.output) if args.output else src / f"export.{args.format}"
    export(run, args.format, out)
    print(f"wrote {out}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from ..report.history import HISTORY_HEADERS, history, history_rows, series

    if args.plot and Path(args.plot).suffix not in (".png", ".svg"):
        raise UsageError(f"--plot: '{args.plot}' must end in .png or .svg")
    points = history(Path(args.runs), args.model, args.runtime, args.variant, args.threads,
                     args.batch)
    if not points:
        print(f"no stored cells of {args.model} matching under {args.runs}", file=sys.stderr)
        return 1
    print(render(HISTORY_HEADERS, history_rows(points)))
    if args.plot:
        from ..report.plots import history_plot
        from ..report.write import save_figure

        out = Path(args.plot)
        save_figure(history_plot(args.model, series(points)).figure, out, out.suffix[1:])
        print(f"plot: {out}")
    return 0
