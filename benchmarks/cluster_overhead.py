"""What a Ray cluster costs a sweep: the wall time of one 12-cell sweep (null and ONNX Runtime
on tinynet, threads 1,2 x batch 1,2,4, one process a cell) on this machine, on `local:1` and
on `local:2`, interleaved over rounds; and the per-process scheduling overhead: the cluster's
wall time, less its start-up, less the local run's, over the processes.

    .venv/bin/python benchmarks/cluster_overhead.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["tinynet", "--runtimes", "null,onnxruntime", "--threads", "1,2", "--batch", "1,2,4",
         "--repeat", "1", "--min-time", "0.5", "--max-time", "0.5"]


def _once(where: str | None, out: Path) -> tuple[float, float, int]:
    """Wall seconds of the whole command, the cluster's start-up, and the processes run."""
    cmd = [sys.executable, "-m", "inferometer", "run", *SWEEP, "--output", str(out)]
    if where:
        cmd += ["--cluster", where]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    m = re.search(r"local Ray node\(s\) on 127\.0\.0\.1 \(([\d.]+) s\)", r.stderr)
    run = json.loads((out / "results.json").read_text())
    return wall, float(m.group(1)) if m else 0.0, sum(len(c["processes"]) for c in run["cells"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    kinds = [None, "local:1", "local:2"]
    walls: dict[str | None, list[tuple[float, float, int]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k in kinds:  # interleaved: drift of the machine hits every kind alike
                walls[k].append(_once(k, Path(tmp) / f"{k or 'here'}-{r}"))
    local = statistics.median(w for w, _, _ in walls[None])
    print(f"{args.rounds} rounds, 12 cells x 1 process, medians:")
    for k in kinds:
        wall = statistics.median(w for w, _, _ in walls[k])
        start = statistics.median(s for _, s, _ in walls[k])
        n = walls[k][0][2]
        line = f"  {k or 'this machine':>12}: {wall:6.1f} s wall ({wall / local:.2f}x)"
        if k:
            per = (wall - start - local) / n * 1e3
            line += f", cluster start {start:.1f} s, {per:+.0f} ms a process beyond the local run"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
