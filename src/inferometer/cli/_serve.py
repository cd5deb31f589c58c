"""serve: one model behind the Open Inference Protocol (HTTP + gRPC)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from ..plan import parse_threads, select_runtimes
from ._common import out_dir
from ._models import add_model_args, resolve_one


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve a model over the Open Inference Protocol (KServe "
                       "v2: HTTP and gRPC), on the load tests' instance processes")
    s.set_defaults(handler=cmd_serve)
    s.add_argument("model", nargs="?", help="zoo name, .onnx or .pt2 path")
    s.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                   help="serve what `tune` recommended (RUN_DIR/deploy.json)")
    add_model_args(s, sweep=False)
    s.add_argument("--runtime", help="one runtime (name or name:variant)")
    s.add_argument("--variant", help="the runtime's variant (default: its default)")
    s.add_argument("--instances", type=int, help="runtime instances (processes; 1)")
    s.add_argument("--threads-per-instance", help="threads per instance (default: auto)")
    s.add_argument("--pin", action="store_true", help="pin instances to disjoint CPUs")
    s.add_argument("--dynamic-batching", metavar="max=N[,delay=T]",
                   help="group queued requests into batches of up to N, holding a batch open "
                   "up to T for more (Triton's dynamic batcher), e.g. max=8,delay=2ms")
    s.add_argument("--max-batch", type=int,
                   help="the largest batch one request may carry (default: the dynamic "
                   "batcher's max, else 1)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="HTTP port (8000)")
    s.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (8001; 0: none)")
    s.add_argument("--engine", choices=("native", "triton"), default="native",
                   help="native (ours) or triton (the same sessions in PyTriton's real Triton "
                   "server; inferometer env create triton)")
    s.add_argument("--metrics-port", type=int, default=8002,
                   help="Triton's metrics port (8002; ours serves /metrics on --port)")
    s.add_argument("--max-body", type=int,
                   help="largest request body in bytes (default: the max batch in JSON)")
    s.add_argument("--logs", help="directory for the instances' logs "
                   "(default: runs/<ts>-serve-<model>)")


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
