"""Server p99 of our engine vs MLCommons LoadGen on the same ResNet-50 ONNX Runtime pool at
the same offered Poisson load, in interleaved rounds.  Goal: medians within 3%.

Each round runs LoadGen first and then ours at the rate LoadGen actually scheduled (its
summary's "Scheduled samples per second"): a Poisson schedule's realised rate varies by a
few percent per run, and at ~50% utilisation that alone moves p99 by several percent.

    .venv/bin/python benchmarks/engine_crosscheck.py [--qps 20] [--rounds 3] [--seconds 25]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from inferometer.loadgen import engine, mlperf
from inferometer.loadgen.pool import InstancePool, PoolSpec
from inferometer.models.resolve import resolve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--qps", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp())
    ours, theirs = [], []
    spec = PoolSpec(resolve(args.model), "onnxruntime", "default", 1, args.threads, 1)
    with InstancePool(spec, d) as pool:
        for i in range(args.rounds):
            b = mlperf.run_server(pool, args.qps, "exponential", duration_s=args.seconds,
                                  seed=i, log_dir=d / f"lg{i}")
            a, _ = engine.run_server(pool, b.offered_qps, "exponential",
                                     duration_s=args.seconds, seed=i)
            ours.append(a.tiles_s["99"])
            theirs.append(b.tiles_s["99"])
            print(f"round {i + 1} at {b.offered_qps:.2f} QPS: ours p99 "
                  f"{a.tiles_s['99'] * 1000:.2f} ms ({a.queries} q), loadgen p99 "
                  f"{b.tiles_s['99'] * 1000:.2f} ms ({b.queries} q)", flush=True)
    # Rounds are paired (same pool, same offered load, back to back): compare within each
    # round and take the median ratio, as harness_overhead.py does.
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    med = statistics.median(ratios)
    print(f"per-round ratios ours/loadgen: {', '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {med:.3f}, difference {abs(med - 1):.1%} (goal <= 3%)")


if __name__ == "__main__":
    main()
