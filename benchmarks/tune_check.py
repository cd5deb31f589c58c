"""Check a budgeted `tune` against `tune --exhaustive` on the same space, in the same session.

    inferometer tune resnet50 --slo p99:100ms --budget 15m --output runs/tune-budget
    inferometer tune resnet50 --slo p99:100ms --exhaustive --output runs/tune-exhaustive
    python benchmarks/tune_check.py runs/tune-budget runs/tune-exhaustive

Reports the pick of each, the budgeted pick's max QPS as found by the exhaustive run (its own
scan there) against the exhaustive best, whether the exhaustive run's head-to-head ties them,
and the measuring time of each.  Pass: within 5% of the best or tied, using at most 35% of
the exhaustive search's measuring time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from inferometer.results.store import load_result
from inferometer.results.tunerun import TuneRun


def main(budget_dir: str, full_dir: str) -> int:
    a, b = load_result(Path(budget_dir)), load_result(Path(full_dir))
    assert isinstance(a, TuneRun) and isinstance(b, TuneRun), "two tune runs"
    if [c.id for c in a.space] != [c.id for c in b.space]:
        print("the runs searched different spaces")
        return 2
    ra, rb = a.recommendation, b.recommendation
    if ra is None or rb is None:
        print(f"no pick: budgeted {ra is not None}, exhaustive {rb is not None}")
        return 1
    found = {v.candidate.id: v.max_qps for v in b.verdicts if v.max_qps}
    best = max(found.values())
    mine = found.get(ra.candidate.id)
    tied = {rb.candidate.id} | ({rb.runner_up.id} if rb.tie and rb.runner_up else set())
    time_ratio = a.measuring_s / b.measuring_s if b.measuring_s else float("inf")
    print(f"space: {len(a.space)} candidates")
    print(f"budgeted pick:   {ra.candidate.label()}: {ra.max_qps} QPS "
          f"({a.measuring_s / 60:.1f} min measuring)")
    print(f"exhaustive pick: {rb.candidate.label()}: {rb.max_qps} QPS "
          f"({b.measuring_s / 60:.1f} min measuring; {'tied' if rb.tie else 'beyond noise'}: "
          f"{rb.why})")
    within = mine is not None and mine >= 0.95 * best
    print(f"budgeted pick in the exhaustive run: {mine} QPS, {mine / best:.3f} of the best"
          if mine else "budgeted pick was not measured in the exhaustive run")
    print(f"within 5%: {within}; tied by the exhaustive head-to-head: "
          f"{ra.candidate.id in tied}; measuring time ratio {time_ratio:.2f} (<= 0.35: "
          f"{time_ratio <= 0.35})")
    ok = (within or ra.candidate.id in tied) and time_ratio <= 0.35
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
