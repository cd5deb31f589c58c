"""serve: one model behind the Open Inference Protocol (HTTP + gRPC)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..commands.common import out_dir
from ..commands.models import resolve_one
from ..errors import UsageError
from ..plan import parse_threads, select_runtimes


def cmd_serve(args: argparse.Namespace) -> int:
    from ..loadgen.batching import parse_batching
    from ..serve.server import ServeConfig, from_deploy, serve

    picked: dict = {}
    if args.from_run:
        if args.model or args.runtime:
            raise UsageError("--from RUN_DIR says the model and runtime: give neither")
        picked = from_deploy(Path(args.from_run))
        args.model = picked["model"]
        runtime_arg = f"{picked['runtime']}:{picked['variant']}"
    else:
        if not args.model or not args.runtime:
            raise UsageError("serve needs a MODEL and --runtime (or --from RUN_DIR)")
        runtime_arg = args.runtime
    choice = select_runtimes(runtime_arg, args.variant)
    if len(choice) != 1 or len(choice[0].variants) != 1:
        raise UsageError("--runtime: name exactly one runtime (and at most one --variant)")
    batching = (parse_batching(args.dynamic_batching) if args.dynamic_batching
                else picked.get("batching"))
    threads = (parse_threads(args.threads_per_instance)[0] if args.threads_per_instance
               else picked.get("threads"))
    max_batch = args.max_batch or (batching.max_batch if batching else 1)
    print(f"preparing {args.model}...", file=sys.stderr)
    model = resolve_one(args.model, args)
    cfg = ServeConfig(model=model, runtime=choice[0].name, variant=choice[0].variants[0],
                      instances=args.instances or picked.get("instances", 1), threads=threads,
                      pin=args.pin or picked.get("pin", False), batching=batching,
                      max_batch=max_batch, host=args.host, port=args.port,
                      grpc_port=args.grpc_port or None, max_body=args.max_body)
    logs = Path(args.logs) if args.logs else out_dir(None, f"serve-{model.name}")
    say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.engine == "triton":
        from ..serve.triton import serve_triton

        serve_triton(cfg, args.metrics_port, logs, say)
    else:
        serve(cfg, logs, say)
    return 0
