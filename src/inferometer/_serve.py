"""Serving instance: `python -m inferometer._serve`, one per runtime instance of a load test.

First stdin line: the job (JSON).  Then one request per line, "QID N" (run a batch of N of the
fixed inputs), answered on the response fd with "QID T_DONE T_IN" where T_DONE is
CLOCK_MONOTONIC in ns, taken here right after the result is on the host: the load generator
measures latency from the scheduled issue time to that instant, whatever its own threads were
doing; T_IN..T_DONE is the inference (the timed region), so the pool can tell its own
dispatch from the model's time.  A served
request carries its own inputs: "QID N BYTES" and that many bytes (`_wire.pack`), answered by
"QID T_DONE BYTES T_IN T_OUT" and the outputs packed the same way, where T_IN..T_OUT is the
inference (`prepare` and `run`, the timed region of every other measurement), so the server can
split its compute time as Triton's statistics do: input (transfer, unpack), infer, output (copy,
pack).  Negative BYTES: that many bytes of an error message, no times; the instance goes on.
"@BYTES" in place of BYTES, either way: the packed arrays are not on the pipe but at the start
of the shared segment the job names (`segment_fd`), which request and answer take in turn.
The protocol has its own fd because runtimes print to stdout at will.  Like the worker, this
imports only numpy, psutil, the stdlib and the one runtime.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
import time

from ._wire import InPlace, pack, pack_into, unpack
from .models.inputs import generate_all
from .models.ref import ModelRef
from .results.codec import from_dict
from .runtimes import LoadOptions, get


def _first(inputs: dict, k: int) -> dict:
    """The first k items of every input (a batch of k queries)."""
    return {name: v[:k] for name, v in inputs.items()}


def main() -> None:
    stdin = sys.stdin.buffer
    job = json.loads(stdin.readline())
    out = _Answers(os.fdopen(job["response_fd"], "wb"))
    segment = None
    in_place = None
    if job.get("segment_fd", -1) >= 0:
        segment = memoryview(mmap.mmap(job["segment_fd"], job["segment_bytes"]))
        in_place = InPlace(segment)
        os.close(job["segment_fd"])
    try:
        if job.get("cpus"):
            os.sched_setaffinity(0, job["cpus"])
        model = from_dict(ModelRef, job["model"])
        runtime = get(job["runtime"])()
        t0 = time.perf_counter()
        shapes = model.io.bind(job["batch"], dict(job.get("dims", ())))
        dynamic = bool(job.get("dynamic_batch"))
        session = runtime.load(model, LoadOptions(job["variant"], job["threads"], job["batch"],
                                                  shapes=tuple(shapes.items()),
                                                  dynamic_batch=dynamic))
        load_s = time.perf_counter() - t0
        inputs = generate_all(model.io, shapes, model.seed)
        feeds = {}
        for _ in range(job.get("warmup", 3)):
            session.run(session.prepare(inputs))
        if dynamic:  # every size a batch may have, once: no first-call cost inside a test
            for k in range(1, job["batch"]):
                session.run(session.prepare(_first(inputs, k)))
    except Exception as exc:
        msg = (str(exc).strip().splitlines() or [""])[0]
        out.write(f"ERROR {type(exc).__name__}: {msg}\n".encode())
        os._exit(1)
    out.write(f"READY {load_s:.3f} {runtime.version()}\n".encode())
    preprocess = job.get("preprocess_timed", True)
    names = [o.name for o in model.io.outputs]
    for line in stdin:
        qid, n, *size = line.split()
        k = int(n)
        if size:
            try:
                if size[0].startswith(b"@") and in_place is not None:
                    arrays = in_place.unpack(int(size[0][1:]))
                else:
                    arrays = unpack(stdin.read(int(size[0])))
            except Exception as exc:  # a layout that does not fit: this request fails
                out.write(_failed(qid.decode(), exc))
                continue
            out.write(_served(session, names, qid.decode(), arrays, segment))
            continue
        t_in = time.monotonic_ns()
        if preprocess and model.io.has_image:
            session.run(session.prepare(_first(inputs, k)))
        else:
            feed = feeds.get(k)
            if feed is None:
                feed = feeds[k] = session.prepare(_first(inputs, k))
            session.run(feed)
        out.write(f"{qid.decode()} {time.monotonic_ns()} {t_in}\n".encode())
    os._exit(0)


class _Answers:
    """The response fd, flushed after every answer (a buffered writer: a raw pipe write may
    take only part of a large answer)."""

    def __init__(self, f) -> None:  # type: ignore[no-untyped-def]
        self.f = f

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.f.flush()


def _failed(qid: str, exc: Exception) -> bytes:
    """The answer that fails one request: its error's first line, no times."""
    t = time.monotonic_ns()
    msg = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}".encode()
    return f"{qid} {t} -{len(msg)}\n".encode() + msg


def _served(session, names: list[str], qid: str, arrays: dict,  # type: ignore[no-untyped-def]
            segment: memoryview | None) -> bytes:
    """Run a request's own inputs; its outputs (packed: copied out of the runtime's buffers)
    or the error, which fails this request only.  The outputs go back through the segment
    when they fit: the inputs there are no longer needed once the outputs are copied."""
    try:
        t_in = time.monotonic_ns()
        outputs = session.run(session.prepare(arrays))
        t_out = time.monotonic_ns()
        # host numpy arrays (the runtime protocol), copied out of the runtime's buffers by
        # packing them
        named = list(zip(names, outputs, strict=True))
        del arrays  # the segment's inputs are no longer read: the outputs go over them
        size = None if segment is None else pack_into(segment, named)
        body = b"" if size is not None else pack(named)
    except Exception as exc:
        return _failed(qid, exc)
    answer = f"@{size}" if size is not None else str(len(body))
    return f"{qid} {time.monotonic_ns()} {answer} {t_in} {t_out}\n".encode() + body


if __name__ == "__main__":
    main()
