"""`serve --engine triton`: the same runtime sessions inside the real Triton server that
nvidia-pytriton bundles.  Runs in the managed `triton` environment (a venv of the system's own
python3: Triton's Python-backend stub fails under other builds), started by serve.triton with
the job as JSON on stdin.  One session per instance, each with its own threads, bound as
Triton model instances; Triton's own dynamic batcher when asked.  Imports pytriton, numpy,
the stdlib and the one runtime only."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import numpy as np

from .models.ref import ModelRef
from .results.codec import from_dict
from .runtimes import LoadOptions, get


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt  # pytriton's serve() stops cleanly on it


def main() -> None:
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    job = json.loads(sys.stdin.readline())
    model = from_dict(ModelRef, job["model"])
    runtime = get(job["runtime"])()
    max_batch = int(job["max_batch"])
    shapes = model.io.bind(max_batch, {})
    names = [o.name for o in model.io.outputs]
    sessions = [runtime.load(model, LoadOptions(job["variant"], job["threads"], max_batch,
                                                shapes=tuple(shapes.items()),
                                                dynamic_batch=max_batch > 1))
                for _ in range(int(job["instances"]))]

    def make(session: Any) -> Any:
        def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            outs = session.run(session.prepare(inputs))
            return {n: np.array(o) for n, o in zip(names, outs, strict=True)}

        def batched(**inputs: np.ndarray) -> dict[str, np.ndarray]:
            return run(inputs)  # Triton's batcher stacked the requests along the batch dim

        def each(requests: list) -> list[dict[str, np.ndarray]]:  # type: ignore[type-arg]
            return [run(dict(r.data)) for r in requests]  # no batch dim: one call each
        return batch(batched) if max_batch > 1 else each

    # the host form, as our server describes it: an image is uint8 NHWC
    def spec(inp: Any) -> Tensor:
        shape = shapes[inp.name]
        if inp.is_image:
            n, c, h, w = shape
            shape = (n, h, w, c)
        dtype = np.uint8 if inp.is_image else np.dtype(inp.tensor.dtype).type
        dims = tuple(shape[1:]) if max_batch > 1 else (-1, *shape[1:])
        return Tensor(name=inp.name, dtype=dtype, shape=dims)

    for s in sessions:  # warm every session before the server accepts a request
        x = {i.name: np.zeros((1, *spec(i).shape[1 if max_batch == 1 else 0:]),
                              spec(i).dtype) for i in model.io.inputs}
        s.run(s.prepare(x))
    outputs = [Tensor(name=o.name, dtype=np.dtype(o.dtype).type,
                      shape=(-1,) * (len(o.shape) - (1 if max_batch > 1 else 0)))
               for o in model.io.outputs]
    batching = job.get("batching")
    config = (ModelConfig(batching=True, max_batch_size=max_batch,
                          batcher=DynamicBatcher(max_queue_delay_microseconds=int(
                              batching["delay_s"] * 1e6) if batching else 0))
              if max_batch > 1 else ModelConfig(batching=False))
    host = job["host"]
    cfg = TritonConfig(http_address=host, http_port=job["port"], grpc_address=host,
                       grpc_port=job["grpc_port"], metrics_address=host,
                       metrics_port=job["metrics_port"], log_verbose=0)
    signal.signal(signal.SIGTERM, _interrupt)
    # PyTriton guards the statistics API with a token by default; a load test reads it to show
    # the server's queue and compute time beside the client's figures, so it stays open (the
    # other guarded APIs stay guarded)
    security = TritonSecurityConfig(restricted_endpoints=["shared-memory", "model-repository",
                                                          "trace", "logging"])
    with Triton(config=cfg, security_config=security) as triton:
        triton.bind(model_name=model.name, infer_func=[make(s) for s in sessions],
                    inputs=[spec(i) for i in model.io.inputs], outputs=outputs, config=config,
                    strict=False)
        print(f"READY triton {runtime.version()}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
