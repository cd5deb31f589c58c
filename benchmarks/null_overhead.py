"""Per-query overhead of the single-stream loop, measured with the null runtime.

Two figures: the median timed sample (clock pair + a call that does nothing: the floor under
every latency the harness reports), and the loop's full cost per query (wall time / queries,
including the sample bookkeeping and the periodic CI check).  Goal: <= 10 us median.

    .venv/bin/python benchmarks/null_overhead.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from inferometer.jobs import Job
from inferometer.models.resolve import resolve
from inferometer.results.schema import CellSpec
from inferometer.scenarios import RunLength, single_stream
from inferometer.spawn import spawn_worker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    length = RunLength(warmup=10, min_time_s=args.seconds, max_time_s=args.seconds,
                       target_rel_ci=1e-9)
    model = resolve("tinynet")
    tmp = Path(tempfile.mkdtemp())
    job = Job(CellSpec(model.name, "null", "default", 1, 1), model, length,
              preprocess_timed=False, pin=False, report_path=str(tmp / "r.json"),
              outputs_path=None)
    rep = spawn_worker(job, tmp / "log", 120)
    assert rep.status == "ok", rep.error
    print(f"worker (fresh process): median timed sample {statistics.median(rep.samples_ns)} ns "
          f"over {len(rep.samples_ns)} queries")
    loop = single_stream(lambda: (), length)
    print(f"in-process loop: median sample {statistics.median(loop.samples_ns)} ns, "
          f"full loop cost {loop.elapsed_ns / len(loop.samples_ns):.0f} ns/query")


if __name__ == "__main__":
    main()
