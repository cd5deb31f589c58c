"""Harness overhead: `run --no-preprocess` with ONNX Runtime vs a bare `session.run` loop.

Both run in fresh processes with the same session options (1 intra-op thread, sequential,
ORT_ENABLE_ALL) on the same input; rounds alternate harness / bare so drift in machine load
hits both alike.  Prints each round's medians and the median of the per-round ratios
(goal: <= 1.005).

    .venv/bin/python benchmarks/harness_overhead.py [--model resnet50] [--rounds 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from inferometer.jobs import Job
from inferometer.models.resolve import resolve
from inferometer.results.schema import CellSpec
from inferometer.runner import spawn_worker, worker_env
from inferometer.scenarios import RunLength

_BARE = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
from inferometer.models.preprocess import Normalizer, make_images
from inferometer.models.ref import ModelRef
from inferometer.results.codec import from_dict
model = from_dict(ModelRef, json.loads(sys.argv[1]))
n = int(sys.argv[2])
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model.onnx_path, so, providers=["CPUExecutionProvider"])
feed = {model.input_name: Normalizer(model).nchw(make_images(1, *model.input_shape[1:]))}
for _ in range(4):
    sess.run(None, feed)
out = []
for _ in range(n):
    t0 = time.perf_counter_ns()
    sess.run(None, feed)
    out.append(time.perf_counter_ns() - t0)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    from inferometer.results.codec import to_dict

    model = resolve(args.model)
    tmp = Path(tempfile.mkdtemp())
    length = RunLength(warmup=3, min_time_s=args.seconds, max_time_s=args.seconds,
                       min_count=10, target_rel_ci=1e-9)  # fixed duration: never stop early
    ratios = []
    for i in range(args.rounds):
        job = Job(CellSpec(model.name, "onnxruntime", "default", 1, 1), model, length,
                  preprocess_timed=False, pin=False, report_path=str(tmp / "r.json"),
                  outputs_path=None)
        rep = spawn_worker(job, tmp / "log", 600)
        assert rep.status == "ok", rep.error
        harness = statistics.median(rep.samples_ns)
        bare_ns = json.loads(subprocess.run(
            [sys.executable, "-c", _BARE, json.dumps(to_dict(model)), str(len(rep.samples_ns))],
            capture_output=True, text=True, check=True, env=worker_env(1)).stdout)
        bare = statistics.median(bare_ns)
        ratios.append(harness / bare)
        print(f"round {i + 1}: harness p50 {harness / 1e6:.3f} ms ({len(rep.samples_ns)} runs), "
              f"bare p50 {bare / 1e6:.3f} ms, ratio {harness / bare:.4f}", flush=True)
    print(f"median ratio harness/bare: {statistics.median(ratios):.4f} (goal <= 1.005)")


if __name__ == "__main__":
    main()
