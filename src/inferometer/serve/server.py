"""`inferometer serve`: one model behind the Open Inference Protocol, HTTP on uvicorn and gRPC
on grpcio, run by the same instance processes (threads, pinning, dynamic batcher) that
`loadtest` measures.  Loopback unless told otherwise; SIGTERM and Ctrl-C drain what is in
flight (uvicorn's graceful shutdown, then gRPC's grace), then the instances stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import envs
from ..errors import UsageError
from ..loadgen.batching import Batching
from ..loadgen.pool import InstancePool, PoolSpec
from ..models.ref import ModelRef

GRACE_S = 30.0  # how long in-flight requests may take to finish at shutdown


@dataclass(frozen=True)
class ServeConfig:
    model: ModelRef
    runtime: str
    variant: str
    instances: int = 1
    threads: int | None = None  # per instance
    pin: bool = False
    batching: Batching | None = None
    max_batch: int = 1  # the largest batch a request may carry (and a dynamic batch reaches)
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 8001  # None: no gRPC
    max_body: int | None = None  # bytes; None: sized to the model


def _json_bytes(dtype: str) -> int:
    """Bytes per element in the protocol's JSON form, generously: '255, ' or '-1.2345678e-05, '."""
    return 5 if np.dtype(dtype).itemsize == 1 else 26


def default_max_body(model: ModelRef, max_batch: int) -> int:
    """The largest honest request: the max batch of every input in JSON, with room to spare."""
    shapes = model.io.bind(max_batch, {})
    total = sum(math.prod(shapes[i.name]) * _json_bytes("uint8" if i.is_image else
                                                         i.tensor.dtype)
                for i in model.io.inputs)
    return int(total * 1.25) + 65536


def validate(cfg: ServeConfig) -> None:
    if cfg.instances < 1:
        raise UsageError("--instances must be >= 1")
    if cfg.max_batch < 1:
        raise UsageError("--max-batch must be >= 1")
    if cfg.batching is not None and cfg.batching.max_batch > cfg.max_batch:
        raise UsageError(f"--dynamic-batching max={cfg.batching.max_batch} is over --max-batch "
                         f"{cfg.max_batch}")
    fixed = cfg.model.fixed_batch
    if fixed is not None and cfg.max_batch > 1:
        raise UsageError(f"model '{cfg.model.name}' has a fixed batch of {fixed} in its file: "
                         "it serves no batch dim (--max-batch 1, no --dynamic-batching)")
    ports = [cfg.port] + ([cfg.grpc_port] if cfg.grpc_port is not None else [])
    if any(not 0 < p < 65536 for p in ports) or len(set(ports)) != len(ports):
        raise UsageError(f"--port/--grpc-port: {ports} must be distinct ports in 1..65535")


def from_deploy(run_dir: Path) -> dict[str, Any]:
    """What `tune` recommended (RUN_DIR/deploy.json) as serve's settings."""
    path = run_dir / "deploy.json"
    if not path.is_file():
        raise UsageError(f"--from {run_dir}: no deploy.json there (a tune run writes one when "
                         "it recommends a deployment)")
    try:
        d = json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"--from {run_dir}: deploy.json is not JSON ({exc})") from None
    try:
        source = json.loads((run_dir / "results.json").read_text())["model"]["source"]
    except (OSError, ValueError, KeyError):
        source = "zoo"
    batching = d.get("dynamic_batching")
    return {"model": d["model"] if source == "zoo" else source, "runtime": d["runtime"],
            "variant": d["variant"], "instances": int(d["instances"]),
            "threads": d["threads_per_instance"], "pin": bool(d.get("pin")),
            "batching": None if not batching else
            Batching(int(batching["max_batch"]), float(batching["delay_ms"]) / 1e3)}


def open_pool(cfg: ServeConfig, log_dir: Path) -> InstancePool:
    log_dir.mkdir(parents=True, exist_ok=True)
    spec = PoolSpec(cfg.model, cfg.runtime, cfg.variant, cfg.instances, cfg.threads,
                    cfg.max_batch, cfg.pin, batching=cfg.batching,
                    dynamic_batch=cfg.max_batch > 1)
    # without a batcher the event loop drives the instances itself (serve.dispatch): two
    # thread wake-ups fewer a request; the batcher's timing lives in the dispatcher threads
    return InstancePool(spec, log_dir, envs.python_for(cfg.runtime),
                        threads=cfg.batching is not None)


def serve(cfg: ServeConfig, log_dir: Path, on_line: Callable[[str], None]) -> None:
    import uvicorn

    from . import grpc_service
    from .app import build_app
    from .model import ServedModel

    validate(cfg)
    on_line(f"starting {cfg.instances} instance(s) of {cfg.runtime}:{cfg.variant} "
            f"({cfg.threads or 'auto'} thread(s) each{', pinned' if cfg.pin else ''})...")
    pool = open_pool(cfg, log_dir)
    models = {cfg.model.name: ServedModel(
        cfg.model.name, cfg.model, pool, cfg.max_batch, f"inferometer_{cfg.runtime}",
        cfg.max_body or default_max_body(cfg.model, cfg.max_batch))}
    grpc_server = None
    try:
        if cfg.grpc_port is not None:
            grpc_server = grpc_service.start(models, cfg.host, cfg.grpc_port)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            loop = asyncio.get_running_loop()
            for served in models.values():
                served.attach(loop)
            m = models[cfg.model.name]
            on_line(f"serving '{m.name}' on http://{cfg.host}:{cfg.port}/v2/models/{m.name}"
                    + (f" and grpc://{cfg.host}:{cfg.grpc_port}/{m.name}" if grpc_server else "")
                    + f" (max batch {cfg.max_batch}"
                    + (f", dynamic batching {cfg.batching.label()}" if cfg.batching else "")
                    + f", max body {m.max_body} bytes); Ctrl-C or SIGTERM stops")
            yield
            on_line("draining in-flight requests...")
            if grpc_server is not None:  # its requests may be waiting on this loop
                await loop.run_in_executor(None, lambda: grpc_server.stop(GRACE_S).wait())
            for served in models.values():
                served.detach()

        server = uvicorn.Server(uvicorn.Config(
            build_app(models, lifespan), host=cfg.host, port=cfg.port, log_level="warning",
            timeout_graceful_shutdown=int(GRACE_S), access_log=False))
        # uvicorn drains on SIGTERM/SIGINT, then raises the signal again for the handler it
        # found: ours just lets the instances stop below, so a stop is a clean exit 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        server.run()
        if not server.started:
            raise UsageError(f"could not serve on {cfg.host}:{cfg.port} (is the port taken?)")
    finally:
        if grpc_server is not None:
            grpc_server.stop(GRACE_S).wait()
        pool.close()
        on_line("stopped")
