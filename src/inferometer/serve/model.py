"""One served model: its Open Inference Protocol metadata (from the any-model I/O description,
in the host form a session's `prepare` takes: an image is uint8 NHWC), request checks, the
instance pool that runs it, and the statistics extension's counters."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from typing import Any

import numpy as np

from ..loadgen.pool import InstancePool, Served
from ..models.io import Values, host_shape
from ..models.ref import ModelRef
from ..oip import ProtocolError, datatype
from .dispatch import LoopDispatcher

VERSION = "1"
STARTING_S = 60.0  # how long a gRPC request waits for the HTTP side's event loop to start


@dataclass(frozen=True)
class TensorMeta:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1: the batch dim
    # an input's values where the model says more than its dtype does (token ids below the
    # vocabulary size, a mask of ones): HTTP metadata gives them as the tensor's parameters,
    # so a load test of this server needs no --value-range (gRPC's metadata has no room)
    values: Values | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "datatype": self.datatype,
                             "shape": list(self.shape)}
        v = self.values
        if v is not None:
            d["parameters"] = {"values": v.kind, **({"low": v.low, "high": v.high}
                                                    if v.low is not None else {})}
        return d


def _stated(v: Values) -> Values | None:
    """What metadata says of an input's values: a kind a client can generate from the name
    alone, or a range with both ends (an image is uint8 on the wire: every value will do)."""
    if v.kind == "image" or (v.kind in ("tokens", "range") and (v.low is None
                                                                or v.high is None)):
        return None
    return v


def model_metadata(name: str, platform: str, inputs: tuple[TensorMeta, ...],
                   outputs: tuple[TensorMeta, ...]) -> dict[str, Any]:
    """The protocol's model metadata object."""
    return {"name": name, "versions": [VERSION], "platform": platform,
            "inputs": [t.as_json() for t in inputs], "outputs": [t.as_json() for t in outputs]}


class UnknownModel(LookupError):
    """A model name this server does not serve (a 404)."""


def describe(model: ModelRef, max_batch: int) -> tuple[tuple[TensorMeta, ...],
                                                       tuple[TensorMeta, ...]]:
    """Inputs and outputs as a client must send and will receive them."""
    io = model.io
    shapes = io.bind(max_batch, {})
    free = io.batch_dim is not None

    def lead(shape: tuple[int, ...]) -> tuple[int, ...]:
        return ((-1, *shape[1:]) if free and shape else shape)

    ins = tuple(TensorMeta(i.name, "UINT8" if i.is_image else datatype(i.tensor.dtype),
                           lead(host_shape(i, shapes[i.name])), _stated(i.values))
                for i in io.inputs)
    outs = []
    for o in io.outputs:
        dims = tuple(-1 if isinstance(d, str) else d for d in o.shape)
        if free and dims and o.shape[0] == io.batch_dim:
            dims = (-1, *dims[1:])
        outs.append(TensorMeta(o.name, datatype(o.dtype), dims))
    return ins, tuple(outs)


@dataclass
class Counters:
    """Triton's statistics extension, cumulative since start (ns and counts)."""

    success: list[int] = field(default_factory=lambda: [0, 0])  # count, ns
    fail: list[int] = field(default_factory=lambda: [0, 0])
    queue: list[int] = field(default_factory=lambda: [0, 0])
    # the instance's call split three ways (Triton's compute_input, _infer, _output)
    compute_input: list[int] = field(default_factory=lambda: [0, 0])
    compute_infer: list[int] = field(default_factory=lambda: [0, 0])
    compute_output: list[int] = field(default_factory=lambda: [0, 0])
    inferences: int = 0  # items (a request of batch 4 is 4)
    last_ms: int = 0


class ServedModel:
    def __init__(self, name: str, model: ModelRef, pool: InstancePool, max_batch: int,
                 platform: str, max_body: int) -> None:
        self.name, self.model, self.pool = name, model, pool
        self.max_batch, self.platform, self.max_body = max_batch, platform, max_body
        self.inputs, self.outputs = describe(model, max_batch)
        self.output_names = tuple(t.name for t in self.outputs)
        # a layout (names, dtypes, shapes) seen before is not checked again: every line of a
        # served request counts (see oip._Plan); refusals are not kept
        self._check_layout = lru_cache(maxsize=64)(self._check)
        self.counters = Counters()
        self._lock = threading.Lock()
        self._pending: dict[int, Future[Served]] = {}
        self._ids = count()
        pool.on_served = self._served
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: LoopDispatcher | None = None
        self._attached = threading.Event()  # gRPC may take a request before the loop runs

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the server's event loop before it serves: a pool made without
        dispatcher threads is driven from this loop (`dispatch.LoopDispatcher`)."""
        self._loop = loop
        if not self.pool.threaded:
            self._dispatcher = LoopDispatcher(self.pool, loop)
        self._attached.set()

    def detach(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()

    # metadata -----------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return model_metadata(self.name, self.platform, self.inputs, self.outputs)

    @property
    def ready(self) -> bool:
        return self.pool.live > 0

    def check(self, inputs: Mapping[str, np.ndarray]) -> int:
        """The request's batch; a ProtocolError naming what is wrong otherwise."""
        return self._check_layout(tuple([(name, a.dtype, a.shape)
                                         for name, a in inputs.items()]))

    def _check(self, layout: tuple[tuple[str, np.dtype, tuple[int, ...]], ...]) -> int:
        want = {t.name: t for t in self.inputs}
        given = [name for name, _, _ in layout]
        extra = sorted(set(given) - set(want))
        missing = sorted(set(want) - set(given))
        if extra or missing:
            raise ProtocolError(
                (f"unknown input(s) {', '.join(extra)}; " if extra else "")
                + (f"missing input(s) {', '.join(missing)}; " if missing else "")
                + f"model '{self.name}' takes {', '.join(want)}")
        batch = None
        for name, dtype, shape in layout:
            t = want[name]
            if datatype(dtype) != t.datatype:
                raise ProtocolError(f"input '{name}': datatype {datatype(dtype)}, the model "
                                    f"takes {t.datatype}")
            ok = len(shape) == len(t.shape) and all(
                w in (-1, g) for w, g in zip(t.shape, shape, strict=True))
            if not ok:
                raise ProtocolError(f"input '{name}': shape {list(shape)}, the model takes "
                                    f"{list(t.shape)} (-1: any batch)")
            if t.shape and t.shape[0] == -1:
                if batch is not None and shape[0] != batch:
                    raise ProtocolError("inputs disagree on the batch size")
                batch = shape[0]
        n = batch if batch is not None else 1
        if not 1 <= n <= self.max_batch:
            raise ProtocolError(f"batch {n} is outside 1..{self.max_batch} (the server's "
                                "--max-batch)")
        return n

    # inference ----------------------------------------------------------------------------
    def submit(self, inputs: dict[str, np.ndarray]) -> Future[Served]:
        """From a thread other than the event loop's (gRPC's workers)."""
        n = self.check(inputs)
        if not self.pool.threaded and self._attached.wait(STARTING_S):
            assert self._dispatcher is not None and self._loop is not None
            return asyncio.run_coroutine_threadsafe(self._dispatcher.infer(n, inputs),
                                                    self._loop)
        fut: Future[Served] = Future()
        if not self.pool.threaded:  # no loop drives the instances (yet)
            fut.set_result(Served(None, "the server is not serving yet", 0, 0, 0))
            return fut
        qid = next(self._ids)
        with self._lock:
            self._pending[qid] = fut
        self.pool.submit(qid, n, data=inputs)
        return fut

    async def infer(self, inputs: dict[str, np.ndarray]) -> Served:
        t0 = time.monotonic_ns()
        n = self.check(inputs)
        if self._dispatcher is not None:
            served = await self._dispatcher.infer(n, inputs)
        else:
            served = await asyncio.wrap_future(self.submit(inputs))
        self.record(served, time.monotonic_ns() - t0, n)
        return served

    def _served(self, qid: int, served: Served) -> None:
        with self._lock:
            fut = self._pending.pop(qid, None)
        if fut is not None:
            fut.set_result(served)

    def record(self, served: Served, total_ns: int, items: int | None = None) -> None:
        """Count a request; `items` is its batch (else read from its first output)."""
        c = self.counters
        with self._lock:
            if served.error is None:
                c.success[0] += 1
                c.success[1] += total_ns
                c.queue[0] += 1
                c.queue[1] += served.queue_ns
                for pair, ns in ((c.compute_input, served.input_ns),
                                 (c.compute_infer, served.inference_ns),
                                 (c.compute_output, served.output_ns)):
                    pair[0] += 1
                    pair[1] += ns
                if items is None:
                    items = next(iter(served.outputs.values())).shape[0] \
                        if served.outputs else 1
                c.inferences += items
                c.last_ms = int(time.time() * 1000)
            else:
                c.fail[0] += 1
                c.fail[1] += total_ns

    def fail(self, total_ns: int) -> None:
        """A request refused before it reached the pool (bad input): Triton counts those too."""
        with self._lock:
            self.counters.fail[0] += 1
            self.counters.fail[1] += total_ns

    # statistics extension and metrics -----------------------------------------------------
    def stats(self) -> dict[str, Any]:
        c = self.counters
        calls = self.pool.execution_counts()
        with self._lock:
            def d(pair: list[int]) -> dict[str, int]:
                return {"count": pair[0], "ns": pair[1]}
            return {"name": self.name, "version": VERSION, "last_inference": c.last_ms,
                    "inference_count": c.inferences, "execution_count": sum(calls.values()),
                    "inference_stats": {"success": d(c.success), "fail": d(c.fail),
                                        "queue": d(c.queue),
                                        "compute_input": d(c.compute_input),
                                        "compute_infer": d(c.compute_infer),
                                        "compute_output": d(c.compute_output)},
                    "batch_stats": [{"batch_size": b, "compute_infer": {"count": k, "ns": 0}}
                                    for b, k in calls.items()]}

    def metrics(self) -> list[str]:
        c, lab = self.counters, f'model="{self.name}",version="{VERSION}"'
        executions = sum(self.pool.execution_counts().values())
        with self._lock:
            rows = [("nv_inference_request_success", "counter", c.success[0]),
                    ("nv_inference_request_failure", "counter", c.fail[0]),
                    ("nv_inference_count", "counter", c.inferences),
                    ("nv_inference_exec_count", "counter", executions),
                    ("nv_inference_request_duration_us", "counter", c.success[1] // 1000),
                    ("nv_inference_queue_duration_us", "counter", c.queue[1] // 1000),
                    ("nv_inference_compute_input_duration_us", "counter",
                     c.compute_input[1] // 1000),
                    ("nv_inference_compute_infer_duration_us", "counter",
                     c.compute_infer[1] // 1000),
                    ("nv_inference_compute_output_duration_us", "counter",
                     c.compute_output[1] // 1000),
                    ("inferometer_instances_live", "gauge", self.pool.live),
                    ("inferometer_instance_restarts", "counter", self.pool.restarts)]
        out = []
        for name, kind, value in rows:
            out += [f"# TYPE {name} {kind}", f"{name}{{{lab}}} {value}"]
        return out
