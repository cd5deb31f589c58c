"""The floor of `serve`'s architecture on this host: the least that any server built as serve
is (uvicorn, the model in another process) can add to a request.

    python benchmarks/serve_floor.py MODEL --runtime onnxruntime --threads 2 --port P

It serves MODEL at http://127.0.0.1:P/v2/models/MODEL with the fewest steps the protocol
allows: a plain ASGI app on uvicorn (uvicorn's defaults, as serve runs it) reads the body,
copies the binary tensor into a segment it shares with one instance process, writes one
byte on a pipe, and answers with the instance's output under a header made once.  The
instance runs the same runtime session as serve's (the tool's runtime, `prepare` + `run`:
the inference every measurement times), on the view of the segment.  No checks, no
statistics, no batching, no JSON: it answers only the one binary request layout of batch 1,
so it is not a server, it is the yardstick `serve_check.py --only overhead` sets serve
against, round by round.  Each answer carries `Server-Timing: compute_infer;dur=MS` as
serve's does, so a client takes what serving added request by request on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import struct
import subprocess
import sys
import time
from typing import Any

import numpy as np

_NS = struct.Struct("q")


def _layout(model_arg: str) -> tuple[Any, dict[str, np.ndarray]]:
    """The model and its batch-1 inputs in host form (an image is uint8 NHWC)."""
    from inferometer.models.inputs import generate_all
    from inferometer.models.resolve import resolve

    model = resolve(model_arg)
    return model, generate_all(model.io, model.io.bind(1, {}), model.seed)


def instance(args: argparse.Namespace) -> None:
    """Wait for a byte, run the request in the segment, put the output after it, answer the
    inference's ns: the loop of an instance with nothing else in it."""
    from inferometer.runtimes import LoadOptions, get

    model, inputs = _layout(args.model)
    shapes = tuple(model.io.bind(1, {}).items())
    session = get(args.runtime)().load(model, LoadOptions("default", args.threads, 1,
                                                          shapes=shapes))
    (name, example), = inputs.items()
    for _ in range(3):
        session.run(session.prepare(inputs))
    seg = mmap.mmap(args.segment_fd, args.segment_bytes)
    view = np.frombuffer(seg, example.dtype, example.size).reshape(example.shape)
    feed = {name: view}
    os.write(args.answer_fd, b"R")
    while os.read(args.request_fd, 1):
        t0 = time.monotonic_ns()
        out = session.run(session.prepare(feed))[0]
        dt = time.monotonic_ns() - t0
        seg[example.nbytes:example.nbytes + out.nbytes] = memoryview(
            np.ascontiguousarray(out)).cast("B")
        os.write(args.answer_fd, _NS.pack(dt))


class FloorApp:
    """Metadata for the client, then the one infer request: body in, byte out, answer back."""

    def __init__(self, args: argparse.Namespace) -> None:
        from inferometer import oip
        from inferometer.serve.model import VERSION, describe, model_metadata

        model, inputs = _layout(args.model)
        (self.in_bytes,) = (a.nbytes for a in inputs.values())
        self.meta = json.dumps(model_metadata(args.model, "floor",
                                              *describe(model, 1))).encode()
        o = model.io.outputs[0]
        shape = tuple(d if isinstance(d, int) else 1 for d in o.shape)
        zero = np.zeros(shape, o.dtype)
        body, hl = oip.encode_response(args.model, VERSION, [(o.name, zero)], True)
        self.head, self.out_bytes = body[:hl], zero.nbytes
        self.headers = [(b"content-type", b"application/octet-stream"),
                        (oip.HEADER_LENGTH.lower().encode(), str(hl).encode()),
                        (b"content-length", str(len(body)).encode())]
        size = self.in_bytes + self.out_bytes
        fd = os.memfd_create("floor")
        os.ftruncate(fd, size)
        self.seg = mmap.mmap(fd, size)
        req_r, self.req_w = os.pipe()
        self.ans_r, ans_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, args.model, "--runtime", args.runtime,
             *(["--threads", str(args.threads)] if args.threads else []),
             "--instance", "--segment-fd", str(fd), "--segment-bytes", str(size),
             "--request-fd", str(req_r), "--answer-fd", str(ans_w)],
            pass_fds=(fd, req_r, ans_w))
        for f in (fd, req_r, ans_w):
            os.close(f)
        if os.read(self.ans_r, 1) != b"R":
            raise SystemExit("the floor's instance did not start")
        self.waiting: asyncio.Future[int] | None = None

    def _answered(self) -> None:
        ns = _NS.unpack(os.read(self.ans_r, _NS.size))[0]
        if self.waiting is not None:
            self.waiting.set_result(ns)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                asyncio.get_running_loop().add_reader(self.ans_r, self._answered)
                await send({"type": "lifespan.startup.complete"})
            self.proc.terminate()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body",
                        "body": self.meta if scope["path"].count("/") == 3 else b"{}"})
            return
        chunks, more = [], True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        self.seg[:self.in_bytes] = body[len(body) - self.in_bytes:]
        self.waiting = asyncio.get_running_loop().create_future()
        os.write(self.req_w, b"x")
        ns = await self.waiting
        out = self.seg[self.in_bytes:self.in_bytes + self.out_bytes]
        await send({"type": "http.response.start", "status": 200, "headers": [
            *self.headers, (b"server-timing", f"compute_infer;dur={ns / 1e6:.3f}".encode())]})
        await send({"type": "http.response.body", "body": self.head + out})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--instance", action="store_true")
    for fd in ("--segment-fd", "--segment-bytes", "--request-fd", "--answer-fd"):
        ap.add_argument(fd, type=int, default=-1)
    args = ap.parse_args()
    if args.instance:
        instance(args)
        return
    import uvicorn

    uvicorn.run(FloorApp(args), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
