"""Does TVM's MetaSchedule tuning work on this machine, and what does it buy?  Run it in a
copy of the tvm environment with MetaSchedule's undeclared dependencies and the tvm-ffi pin:

    python -m venv /tmp/tvmtune && /tmp/tvmtune/bin/pip install apache-tvm==0.27.0.post1 \
        apache-tvm-ffi==0.1.14.post1 xgboost-cpu psutil cloudpickle onnx
    PYTHONPATH=src /tmp/tvmtune/bin/python benchmarks/tvm_tuning_probe.py MODEL.onnx [--trials N]

It tunes the model at a static batch-1 shape with Relax's static_shape_tuning_pipeline, then
times tuned vs untuned.  With apache-tvm-ffi 0.1.15.x (what pip picks for apache-tvm
0.27.0.post1) every JSON serialisation segfaults (`tvm.ir.save_json` of any module), and
MetaSchedule serialises as it starts; 0.1.14.post1 works.  Measured 2026-11-23 on 2 cores:
ResNet-18, 130 trials, 146 s of tuning: 1377 ms vs 1591 ms untuned, so TVM stays untuned
here (docs/decisions.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx


def _ms(mod: tvm.IRModule, target: tvm.target.Target, params: list, shape: list[int]) -> float:
    vm = relax.VirtualMachine(tvm.compile(mod, target), tvm.cpu())
    x = tvm.runtime.tensor(np.random.default_rng(0).random(shape, dtype=np.float32))
    for _ in range(3):
        vm["main"](x, *params)
    t0 = time.perf_counter()
    for _ in range(20):
        vm["main"](x, *params)
    return (time.perf_counter() - t0) / 20 * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("--trials", type=int, default=16)
    args = ap.parse_args()
    proto = onnx.load(args.onnx)
    inp = proto.graph.input[0]
    shape = [1] + [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
    mod = from_onnx(proto, shape_dict={inp.name: shape}, keep_params_in_input=True)
    mod, params = relax.frontend.detach_params(mod)
    ps = [tvm.runtime.tensor(p.numpy()) for p in params["main"]]
    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(),
                                "num-cores": len(os.sched_getaffinity(0))})
    print(f"untuned: {_ms(mod, target, ps, shape):.3f} ms", flush=True)
    t0 = time.monotonic()
    with target, tempfile.TemporaryDirectory(prefix="tvm-tuning-") as work_dir:
        tuned = relax.pipeline.static_shape_tuning_pipeline(
            total_trials=args.trials, target=target, work_dir=work_dir)(mod)
    print(f"tuned in {time.monotonic() - t0:.0f} s: {_ms(tuned, target, ps, shape):.3f} ms")


if __name__ == "__main__":
    main()
