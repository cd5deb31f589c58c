"""How much does a whole scan's answer move between identical scans on this machine?

Runs `inferometer scan` N times with the same arguments (each scan confirms its final step:
the answer is tested again and stands only if every test at it passed) and reports, per
arrival process and latency target, each scan's max QPS, their median and their spread
(range over median).  Stored runs are read with the tool's own reader.

    .venv/bin/python benchmarks/scan_repeat.py --scans 3 --out runs/scan-repeat -- \\
        resnet50 --runtime onnxruntime --targets 100ms --arrivals linear,exponential
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from inferometer.results.store import load_result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scans", type=int, default=3)
    p.add_argument("--out", default="runs/scan-repeat")
    p.add_argument("scan_args", nargs="+", help="after --: the arguments of inferometer scan")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    answers: dict[str, list[float]] = {}
    walls = []
    for k in range(args.scans):
        d = out / f"scan-{k + 1}"
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "inferometer", "scan", *args.scan_args,
                            "--output", str(d)], capture_output=True, text=True)
        walls.append(time.monotonic() - t0)
        if r.returncode != 0:
            sys.exit(f"scan {k + 1} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        run = load_result(d)
        for config, by_arrival in run.results.items():
            for arrivals, by_target in by_arrival.items():
                for target, qps in by_target.items():
                    answers.setdefault(f"{config} {arrivals} {target}s", []).append(qps)
        print(f"{d}: {walls[-1]:.0f} s", file=sys.stderr)
    rows = {}
    print(f"{args.scans} identical scans: inferometer scan {' '.join(args.scan_args)}")
    for key, qs in answers.items():
        valid = [q for q in qs if q > 0]
        med = statistics.median(valid) if valid else -1.0
        spread = (max(valid) - min(valid)) / med if len(valid) > 1 else None
        rows[key] = {"max_qps": qs, "median": med, "spread": spread}
        print(f"  {key}: max QPS {' / '.join(f'{q:g}' for q in qs)}; median {med:g}; spread "
              + ("-" if spread is None else f"{spread:.1%}"))
    (out / "scan_repeat.json").write_text(json.dumps(
        {"command": sys.argv, "answers": rows, "wall_s": walls}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
