"""A/A self-check: do the verdicts survive an identical rerun, and do they still see a real
slowdown?

Runs N identical baseline runs (`inferometer run MODEL --runtimes onnxruntime,onnxruntime_twin
--threads T`) and M runs per known slowdown (ONNX Runtime busy-waiting 5% or 10% of each call
inside `run`, benchmarks/aa_runtime.py, plugged in through INFEROMETER_RUNTIMES), the runs of
all kinds interleaved in time.  Then, with the tool's own API:
- compare on every pair of baseline runs: how often it calls "faster"/"slower" (false calls),
  and how often `--fail-on p50:5%` would exit 1;
- the fastest line of each baseline run, whose runner-up is the identical twin runtime: how
  often it claims a lead beyond noise;
- compare of each baseline run against each slowed run: how often the slowdown is detected;
- every metric's verdict on the identical pairs (p90, p99, mean, items/s, peak RSS and load
  time are verdicts too, and must not fire on an identical rerun either).

    .venv/bin/python benchmarks/aa_test.py --runs 5 --slowed-runs 2 --out runs/aa
    .venv/bin/python benchmarks/aa_test.py --out runs/aa-r1 -- --repeat 1   # one process a cell
    .venv/bin/python benchmarks/aa_test.py --out runs/aa --analyse-only     # the stored runs again

It also pools runs a side, as a regression gate on a drifting host should be fed: every split
of the baseline runs into two groups, and every two baseline runs against the slowed ones.

Everything after `--` is passed to every `inferometer run`.  Prints a table per thread count
and writes OUT/aa.json.  The figures are this machine's: a shared 2-core host is noisy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from inferometer.report.compare import (  # noqa: E402
    METRICS,
    compare_runs,
    machine_change,
    parse_fail_on,
    regressions,
)
from inferometer.report.table import fastest_lines  # noqa: E402
from inferometer.results.store import RunDir  # noqa: E402

PLUGIN = "onnxruntime=aa_runtime:Slowed;onnxruntime_twin=aa_runtime:Twin"


def _run(out: Path, model: str, threads: str, runtimes: str, slowdown: float,
         extra: list[str]) -> float:
    env = dict(os.environ, INFEROMETER_RUNTIMES=PLUGIN, INFEROMETER_SLOWDOWN=f"{slowdown:g}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "inferometer", "run", model, "--runtimes", runtimes,
           "--threads", threads, "--batch", "1", "--output", str(out), *extra]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return time.monotonic() - t0


def _verdicts(a: Path | Sequence[Path], b: Path | Sequence[Path]
              ) -> tuple[dict[str, str], dict[str, float], bool]:
    """threads label -> p50 verdict and ratio for the onnxruntime cells; whether
    --fail-on p50:5% would fail the whole comparison.  Several runs a side are pooled as
    processes (`compare A1,A2 B1,B2`)."""
    def side(x: Path | Sequence[Path]) -> str:
        return str(x) if isinstance(x, Path) else ",".join(map(str, x))
    cmp = compare_runs(side(a), side(b))
    verdicts, ratios = {}, {}
    for cc in cmp.cells:
        ch = cc.get("p50")
        if cc.key[1] == "onnxruntime" and ch is not None:
            verdicts[cc.key[4]] = ch.verdict
            ratios[cc.key[4]] = ch.ratio
    return verdicts, ratios, bool(regressions(cmp, parse_fail_on("p50:5%")))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=5, help="identical baseline runs (5: 10 pairs)")
    p.add_argument("--slowdowns", default="5,10", help="known slowdowns, percent")
    p.add_argument("--slowed-runs", type=int, default=2, help="runs per slowdown (2)")
    p.add_argument("--out", default="runs/aa", help="directory for the runs and aa.json")
    p.add_argument("--analyse-only", action="store_true",
                   help="run nothing: judge the runs already in OUT again (after a change to "
                        "the verdict rule, on the same evidence)")
    p.add_argument("extra", nargs="*", help="after --: passed to every inferometer run")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slowdowns = [float(s) / 100 for s in args.slowdowns.split(",") if s]
    # interleave the kinds of run in time, so the machine's drift meets them all alike
    plan: list[tuple[str, float]] = [("base", 0.0)] * args.runs
    for s in slowdowns:
        plan += [(f"slow{s * 100:g}", s)] * args.slowed_runs
    base = plan[:args.runs]
    slowed = plan[args.runs:]
    order = [x for pair in itertools.zip_longest(base, slowed) for x in pair if x]
    dirs: dict[str, list[Path]] = {}
    walls = []
    if args.analyse_only:
        order = []
        for kind in dict.fromkeys(k for k, _ in plan):
            dirs[kind] = sorted(out.glob(f"{kind}-*"), key=lambda d: int(d.name.split("-")[-1]))
    for kind, s in order:
        d = out / f"{kind}-{len(dirs.get(kind, [])) + 1}"
        runtimes = "onnxruntime,onnxruntime_twin" if kind == "base" else "onnxruntime"
        walls.append(_run(d, args.model, args.threads, runtimes, s, args.extra))
        dirs.setdefault(kind, []).append(d)
        print(f"{d}: {walls[-1]:.0f} s", file=sys.stderr)

    threads = [t.strip() for t in args.threads.split(",")]
    report: dict[str, object] = {"command": sys.argv, "runs": {k: [str(d) for d in v]
                                                               for k, v in dirs.items()}}
    aa = [_verdicts(a, b) for a, b in itertools.combinations(dirs["base"], 2)]
    lines = [f"A/A: {len(aa)} pairs of identical runs ({args.model}, onnxruntime, "
             f"extra args: {' '.join(args.extra) or 'none'}); "
             + ("the stored runs judged again" if args.analyse_only
                else f"{sum(walls) / len(walls):.0f} s per run on average")]
    cells = {d: RunDir(d).load().cells for d in dirs["base"]}
    changes = [machine_change(cells[a], cells[b])
               for a, b in itertools.combinations(dirs["base"], 2)]
    speeds = [m.speed for m in changes if m.adjusted]
    lines.append(f"the machine's own speed between identical runs (matrix probe, B/A): "
                 f"{min(speeds):.3f}..{max(speeds):.3f}; compare divides it out" if speeds else
                 "these runs carry no matrix speed probe (made before it): compare holds "
                 "them to the Python-loop probe's floor")
    report["machine_speed"] = speeds
    rows = {}
    # each comparison gives every thread count's verdict: made once, read per thread count
    detections = {f"slow{s * 100:g}": [_verdicts(a, b) for a in dirs["base"]
                                       for b in dirs[f"slow{s * 100:g}"]] for s in slowdowns}
    for t in threads:
        calls = sum(v.get(t) in ("faster", "slower") for v, _, _ in aa)
        ratios = [r[t] for _, r, _ in aa if t in r]
        row: dict[str, object] = {"aa_pairs": len(aa), "aa_false_calls": calls,
                                  "aa_ratio_min": min(ratios), "aa_ratio_max": max(ratios)}
        for s in slowdowns:
            kind = f"slow{s * 100:g}"
            det = detections[kind]
            row[f"detected_{kind}"] = sum(v.get(t) == "slower" for v, _, _ in det)
            row[f"pairs_{kind}"] = len(det)
            row[f"ratio_{kind}"] = sorted(r[t] for _, r, _ in det)
        rows[t] = row
        detected = ", ".join(f"{s * 100:g}% slowdown detected in {row[f'detected_slow{s * 100:g}']}"
                             f"/{row[f'pairs_slow{s * 100:g}']}" for s in slowdowns)
        lines.append(f"threads={t}: compare called {calls}/{len(aa)} identical pairs faster or "
                     f"slower (B/A {min(ratios):.3f}..{max(ratios):.3f}); {detected}")
    every = _every_metric(list(itertools.combinations(dirs["base"], 2)))
    lines.append("every verdict on the identical pairs (each cell, each metric), called of "
                 "judged: " + ", ".join(f"{m} {k}/{n}" for m, (k, n) in every.items()))
    report["every_metric"] = every
    fail = sum(f for _, _, f in aa)
    fastest = [line for d in dirs["base"] for line in fastest_lines(cells[d])]
    false_fastest = sum(" slower" in line for line in fastest)
    lines.append(f"--fail-on p50:5% would exit 1 on {fail}/{len(aa)} identical pairs (every "
                 "cell: both runtimes, both thread counts)")
    lines.append(f"fastest line against the identical twin runtime: {false_fastest}/"
                 f"{len(fastest)} claimed a lead beyond noise")
    lines += [f"  {line}" for line in fastest]
    report["pooled"] = _pooled(dirs, threads, slowdowns, lines)
    report.update(threads=rows, fail_on_exits=fail, fastest_lines=fastest,
                  fastest_false_calls=false_fastest, wall_s=walls)
    (out / "aa.json").write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(lines))
    return 0


def _every_metric(pairs: Sequence[tuple[Path, Path]]) -> dict[str, tuple[int, int]]:
    """metric -> (cells called faster/slower/better/worse, cells judged) over the pairs: load
    time and memory are verdicts too, and an identical rerun must not change them either."""
    called = dict.fromkeys(METRICS, 0)
    judged = dict.fromkeys(METRICS, 0)
    for a, b in pairs:
        for cc in compare_runs(str(a), str(b)).cells:
            for ch in cc.changes:
                judged[ch.metric] += 1
                called[ch.metric] += ch.verdict != "no significant change"
    return {m: (called[m], judged[m]) for m in METRICS if judged[m]}


def _pooled(dirs: dict[str, list[Path]], threads: list[str], slowdowns: list[float],
            lines: list[str]) -> dict[str, object]:
    """The same verdicts with runs taken at different times pooled a side, as a regression
    gate should be fed (`compare A1,A2,A3 B1,B2`): the between-run drift of the host enters
    each side's spread and Welch's test.  Identical: every split of the baseline runs into
    two groups; slowed: every two baseline runs against all the slowed runs of a kind."""
    base = dirs["base"]
    if len(base) < 4:
        return {}
    half = len(base) // 2
    splits = [(list(a), [d for d in base if d not in a])
              for a in itertools.combinations(base, len(base) - half)]
    same = [_verdicts(a, b) for a, b in splits]
    out: dict[str, object] = {"splits": len(same),
                              "fail_on_exits": sum(f for _, _, f in same)}
    detections = {f"slow{s * 100:g}": [_verdicts(list(a), dirs[f"slow{s * 100:g}"])
                                       for a in itertools.combinations(base, 2)]
                  for s in slowdowns}
    for t in threads:
        calls = sum(v.get(t) in ("faster", "slower") for v, _, _ in same)
        found = []
        for s in slowdowns:
            kind = f"slow{s * 100:g}"
            det = detections[kind]
            hits = sum(v.get(t) == "slower" for v, _, _ in det)
            out[f"threads={t} {kind}"] = [hits, len(det)]
            found.append(f"{s * 100:g}% found in {hits}/{len(det)}")
        out[f"threads={t} false_calls"] = calls
        lines.append(f"pooled, threads={t}: {calls}/{len(same)} splits of the identical runs "
                     f"({len(base) - half} vs {half}) called; 2 baseline runs vs the "
                     f"{len(dirs.get(f'slow{slowdowns[0] * 100:g}', []))} slowed: "
                     + ", ".join(found))
    lines.append(f"pooled: --fail-on p50:5% would exit 1 on {out['fail_on_exits']}/"
                 f"{len(same)} splits")
    return out


if __name__ == "__main__":
    sys.exit(main())
