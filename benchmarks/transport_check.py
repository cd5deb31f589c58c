"""What carrying a served request's arrays costs in the instance pool: shared segment against
pipe, on the same model, runtime and threads, in one job.

Two pools of one instance each (one per transport) take requests alternately, one at a time,
so the machine's drift hits both alike.  A request's carried cost is its time from `submit`
to its answer minus the inference the instance timed (`Served.infer_ns`): queueing, packing,
the transfer both ways, unpacking and copying out.  Each round reports both medians and their
parts (queue: submit to dispatcher; in: to the instance and unpacked; out: outputs copied and
packed; back: the answer from the instance to the caller); the verdict is the median over
rounds of the paired ratio shared/pipe.

    .venv/bin/python benchmarks/transport_check.py [--model mobilenet_v2] [--rounds 5]
        [--requests 200] [--threads 1] [--batch 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from inferometer.loadgen.pool import InstancePool, PoolSpec, Served
from inferometer.models.inputs import generate_all
from inferometer.models.resolve import resolve


class _Timed:
    """One request at a time through a pool: its wall time and the instance's inference."""

    def __init__(self, pool: InstancePool) -> None:
        self.pool, self.done = pool, threading.Event()
        self.served: Served | None = None
        pool.on_served = self._served

    def _served(self, qid: int, served: Served) -> None:
        self.served = served
        self.done.set()

    def ask(self, qid: int, n: int, data: dict) -> tuple[float, float, tuple[float, ...]]:
        self.done.clear()
        t0 = time.monotonic_ns()
        self.pool.submit(qid, n, data)
        if not self.done.wait(60):
            raise RuntimeError("no answer in 60 s")
        wall = time.monotonic_ns() - t0
        s = self.served
        assert s is not None
        if s.error:
            raise RuntimeError(s.error)
        back = wall - s.queue_ns - s.compute_ns  # answer stamped -> seen here
        parts = (s.queue_ns, s.input_ns, s.output_ns, back)
        return wall / 1e6, (wall - s.infer_ns) / 1e6, tuple(x / 1e6 for x in parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200, help="per transport per round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    model = resolve(args.model)
    shapes = model.io.bind(args.batch, {})
    data = dict(generate_all(model.io, shapes, model.seed))
    size_kb = sum(a.nbytes for a in data.values()) / 1024
    d = Path(tempfile.mkdtemp())
    specs = {name: PoolSpec(model, args.runtime, "default", 1, args.threads, args.batch,
                            shared_memory=shared)
             for name, shared in (("shared", True), ("pipe", False))}
    for name in specs:
        (d / name).mkdir()
    pools = {name: InstancePool(spec, d / name) for name, spec in specs.items()}
    try:
        timed = {name: _Timed(p) for name, p in pools.items()}
        for name in timed:  # the first requests touch the segment's pages
            for q in range(10):
                timed[name].ask(q, args.batch, data)
        print(f"{args.model} on {args.runtime}, {args.threads} thread(s), batch {args.batch}, "
              f"{size_kb:.0f} KiB of inputs per request; {args.requests} requests per transport "
              "per round, alternating", flush=True)
        ratios = []
        for r in range(args.rounds):
            carried: dict[str, list[float]] = {n: [] for n in timed}
            walls: dict[str, list[float]] = {n: [] for n in timed}
            splits: dict[str, list[tuple[float, ...]]] = {n: [] for n in timed}
            for q in range(args.requests):
                order = list(timed) if q % 2 == 0 else list(reversed(timed))
                for name in order:
                    wall, cost, parts = timed[name].ask(q, args.batch, data)
                    walls[name].append(wall)
                    carried[name].append(cost)
                    splits[name].append(parts)
            med = {n: statistics.median(v) for n, v in carried.items()}
            ratios.append(med["shared"] / med["pipe"])
            print(f"round {r + 1}: carried p50 shared {med['shared']:.3f} ms, pipe "
                  f"{med['pipe']:.3f} ms (ratio {ratios[-1]:.2f}); wall p50 shared "
                  f"{statistics.median(walls['shared']):.2f} ms, pipe "
                  f"{statistics.median(walls['pipe']):.2f} ms", flush=True)
            for name, rows in splits.items():
                q, i, o, b = (statistics.median(col) for col in zip(*rows, strict=True))
                print(f"  {name}: queue {q:.3f}, in {i:.3f}, out {o:.3f}, back {b:.3f} ms "
                      "(p50 of each)", flush=True)
    finally:
        for p in pools.values():
            p.close()
    print(f"shared/pipe carried-cost ratio: median {statistics.median(ratios):.2f} "
          f"[{min(ratios):.2f}-{max(ratios):.2f}] over {args.rounds} rounds")


if __name__ == "__main__":
    main()
