"""Harness overhead on any model: `run`'s worker against the runtime's own bare loop.

ONNX Runtime: the worker (ORT_ENABLE_ALL, sequential, 1 inter-op thread) against a bare
`session.run` loop with the same options on the same generated inputs.  OpenVINO: the worker's
`latency` variant against `benchmark_app -data_shape ... -hint none -nstreams 1 -nthreads T
-api sync -infer_precision f32` (one stream, one request at a time, f32: what the variant
sets) on the same file.
Every process is fresh; rounds alternate harness / bare so drift in machine load hits both
alike.  Prints each round's medians and the median and range of the per-round ratios.

    .venv/bin/python benchmarks/harness_overhead.py [--model resnet50] [--dim seq=128]
        [--runtime onnxruntime|openvino] [--threads 1] [--rounds 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from inferometer.childenv import worker_env
from inferometer.jobs import Job
from inferometer.models.resolve import resolve
from inferometer.models.shapes import parse_dims
from inferometer.results.codec import to_dict
from inferometer.results.schema import CellSpec
from inferometer.scenarios import RunLength
from inferometer.spawn import spawn_worker

_BARE_ORT = r"""
import json, sys, time
import onnxruntime as ort
from inferometer.models.inputs import generate_all
from inferometer.models.preprocess import ModelArrays
from inferometer.models.ref import ModelRef
from inferometer.results.codec import from_dict
model = from_dict(ModelRef, json.loads(sys.argv[1]))
dims, n, threads = json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model.onnx_path, so, providers=["CPUExecutionProvider"])
feed = ModelArrays(model)(generate_all(model.io, model.io.bind(1, dims)))
for _ in range(4):
    sess.run(None, feed)
out = []
for _ in range(n):
    t0 = time.perf_counter_ns()
    sess.run(None, feed)
    out.append(time.perf_counter_ns() - t0)
print(json.dumps(out))
"""


def _benchmark_app(model, dims: dict, threads: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    shapes = model.io.bind(1, dims)
    data_shape = ",".join(f"{k}[{','.join(map(str, v))}]" for k, v in shapes.items())
    app = Path(sys.executable).with_name("benchmark_app")
    # the worker's `latency` variant is one stream of T threads, one request at a time, in
    # f32: benchmark_app says that as -hint none -nstreams 1 -nthreads T -api sync (its UI
    # refuses -nthreads with a hint) -infer_precision f32 (its default on a CPU with AMX is
    # bf16: 2.5x faster on bert_base here, and not the same measurement)
    p = subprocess.run([str(app), "-m", model.onnx_path, "-d", "CPU", "-hint", "none",
                        "-nstreams", "1", "-nthreads", str(threads), "-api", "sync",
                        "-infer_precision", "f32",
                        "-data_shape", data_shape, "-t", str(int(seconds))],
                       capture_output=True, text=True, env=worker_env(threads))
    found = re.search(r"Median:\s+([\d.]+) ms", p.stdout)
    if not found:
        raise SystemExit(f"benchmark_app gave no median:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return float(found.group(1)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--dim", action="append")
    ap.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "openvino"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    model = resolve(args.model)
    dims = {k: v[0] for k, v in parse_dims(args.dim).items()}
    tmp = Path(tempfile.mkdtemp())
    length = RunLength(warmup=3, min_time_s=args.seconds, max_time_s=args.seconds,
                       min_count=10, target_rel_ci=1e-9)  # fixed duration: never stop early
    variant = "default" if args.runtime == "onnxruntime" else "latency"
    ratios = []
    for i in range(args.rounds):
        job = Job(CellSpec(model.name, args.runtime, variant, args.threads, 1,
                           dims=tuple(dims.items())), model, length, preprocess_timed=False,
                  pin=False, report_path=str(tmp / "r.json"), outputs_path=None)
        rep = spawn_worker(job, tmp / "log", 600)
        assert rep.status == "ok", rep.error
        harness = statistics.median(rep.samples_ns)
        if args.runtime == "onnxruntime":
            bare = statistics.median(json.loads(subprocess.run(
                [sys.executable, "-c", _BARE_ORT, json.dumps(to_dict(model)), json.dumps(dims),
                 str(len(rep.samples_ns)), str(args.threads)],
                capture_output=True, text=True, check=True,
                env=worker_env(args.threads)).stdout))
            what = "bare session.run"
        else:
            bare = _benchmark_app(model, dims, args.threads, args.seconds)
            what = "benchmark_app"
        ratios.append(harness / bare)
        print(f"round {i + 1}: harness p50 {harness / 1e6:.3f} ms ({len(rep.samples_ns)} runs), "
              f"{what} p50 {bare / 1e6:.3f} ms, ratio {harness / bare:.4f}", flush=True)
    print(f"median ratio harness/{what}: {statistics.median(ratios):.4f} over {len(ratios)} "
          f"rounds (range {min(ratios):.4f}-{max(ratios):.4f})")


if __name__ == "__main__":
    main()
