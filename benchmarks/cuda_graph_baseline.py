"""Harness vs a hand-written CUDA-graph loop (needs an NVIDIA GPU and a CUDA build of torch).

    python benchmarks/cuda_graph_baseline.py [--model resnet50] [--batch 50] [--rounds 3]

The bare loop: the zoo model in fp16, channels_last, captured once as a CUDA graph, replayed
back to back with one synchronisation per replay (as the harness's `run` does), images/s from
the host clock.  The harness: `inferometer run MODEL --device cuda --runtimes torch --variants
cuda_graph --precisions fp16 --no-preprocess` at the same batch.  Rounds alternate between the
two; the ratio of medians is the harness's efficiency (goal >= 0.98), and batch 1 latency
through the harness is printed too (goal <= 0.8 ms for ResNet-50 on an H100).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bare_loop(model: str, batch: int, seconds: float) -> float:
    import torch

    from inferometer.models.resolve import resolve

    ref = resolve(model)
    module, _, fn = ref.torch_builder.partition(":")  # type: ignore[union-attr]
    net = getattr(importlib.import_module(module), fn)()
    net.load_state_dict(torch.load(ref.torch_weights, weights_only=True))
    net = net.eval().cuda().half().to(memory_format=torch.channels_last)
    torch.backends.cudnn.benchmark = True
    x = torch.randn(batch, *ref.input_shape, device="cuda").half().contiguous(
        memory_format=torch.channels_last)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(side):
        for _ in range(3):
            net(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        y = net(x)
    for _ in range(10):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        graph.replay()
        y.float().cpu()  # what the harness's run returns: the output on the host
        times.append(time.perf_counter_ns() - t0)
    return batch * 1e9 / statistics.median(times)


def harness_argv(model: str, batch: int, out: Path) -> list[str]:
    return ["run", model, "--device", "cuda", "--runtimes", "torch", "--variants", "cuda_graph",
            "--precisions", "fp16", "--threads", "auto", "--batch", str(batch),
            "--no-preprocess", "--output", str(out)]


def harness(model: str, batch: int, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "inferometer", *harness_argv(model, batch, out)]
    subprocess.run(cmd, check=True, capture_output=True)
    cell = json.loads((out / "results.json").read_text())["cells"][0]
    return cell["items_per_s"], cell["summary"]["p50_ms"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        print("needs torch", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(f"no CUDA device (torch {torch.__version__}); run this on a GPU machine",
              file=sys.stderr)
        return 2
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            bare = bare_loop(a.model, a.batch, a.seconds)
            ours, _ = harness(a.model, a.batch, Path(tmp) / f"r{i}")
            ratios.append(ours / bare)
            print(f"round {i + 1}: bare {bare:.1f} img/s, harness {ours:.1f} img/s, "
                  f"ratio {ours / bare:.4f}")
        _, p50 = harness(a.model, 1, Path(tmp) / "b1")
    print(f"median ratio harness/bare at batch {a.batch}: {statistics.median(ratios):.4f} "
          f"(goal >= 0.98); batch 1 fp16 CUDA-graph p50 through the harness: {p50:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
