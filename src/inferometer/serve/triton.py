"""`serve --engine triton`: hand the same model, runtime, layout and batching to the real
Triton server (PyTriton's bundled tritonserver) in the managed `triton` environment, so the
two servers can be measured side by side with the same client.  What differs is said: Triton's
instances are threads of one process (PyTriton binds callables), not pinned processes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from .. import envs
from ..childenv import worker_env
from ..errors import UsageError
from ..results.codec import to_dict
from .server import ServeConfig, validate

ENV = "triton"


def python() -> str:
    info = envs.load(ENV)
    if info is None:
        raise UsageError("--engine triton runs in its own environment: inferometer env create "
                         "triton (PyTriton's tritonserver, ONNX Runtime and OpenVINO, on the "
                         "system's python3)")
    return info.python


def serve_triton(cfg: ServeConfig, metrics_port: int, log_dir: Path,
                 on_line: Callable[[str], None]) -> None:
    validate(cfg)
    if cfg.runtime not in ("onnxruntime", "openvino"):
        raise UsageError(f"--engine triton hosts onnxruntime or openvino sessions (its "
                         f"environment holds those), not {cfg.runtime}")
    if cfg.grpc_port is None:
        raise UsageError("--engine triton always serves gRPC: give it a --grpc-port")
    if cfg.pin:
        on_line("note: --pin is not applied under Triton: its instances are threads of one "
                "process")
    py = python()
    job = {"model": to_dict(cfg.model), "runtime": cfg.runtime, "variant": cfg.variant,
           "instances": cfg.instances, "threads": cfg.threads, "max_batch": cfg.max_batch,
           "batching": None if cfg.batching is None else
           {"max_batch": cfg.batching.max_batch, "delay_s": cfg.batching.delay_s},
           "host": cfg.host, "port": cfg.port, "grpc_port": cfg.grpc_port,
           "metrics_port": metrics_port}
    log_dir.mkdir(parents=True, exist_ok=True)
    on_line(f"starting Triton with {cfg.instances} instance(s) of {cfg.runtime}:{cfg.variant} "
            f"({cfg.threads or 'auto'} thread(s) each)...")
    with open(log_dir / "triton.log", "w") as log:
        proc = subprocess.Popen([py, "-m", "inferometer._triton"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                env=worker_env(cfg.threads), start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.close()

    def forward(sig: int, _frame: object) -> None:
        proc.send_signal(signal.SIGTERM)  # Triton drains, then PyTriton cleans up
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for line in proc.stdout:
        if line.startswith("READY"):
            on_line(f"serving '{cfg.model.name}' in Triton on http://{cfg.host}:{cfg.port}/v2/"
                    f"models/{cfg.model.name} and grpc://{cfg.host}:{cfg.grpc_port}/"
                    f"{cfg.model.name}, metrics on :{metrics_port} (max batch "
                    f"{cfg.max_batch}" + (f", Triton's dynamic batcher, delay "
                                          f"{cfg.batching.delay_s * 1e3:g} ms"
                                          if cfg.batching else "") + "); Ctrl-C stops")
    code = proc.wait()
    if code not in (0, -signal.SIGTERM):
        tail = (log_dir / "triton.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise UsageError(f"Triton exited {code}: {' | '.join(tail)} (log: "
                         f"{log_dir / 'triton.log'})")
    on_line("stopped")
