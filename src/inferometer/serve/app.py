"""The HTTP side of the Open Inference Protocol (KServe v2) as an ASGI app: health, server and
model metadata, infer (JSON and binary tensors), Triton's statistics extension and Prometheus
metrics.  Every failure answers {"error": "..."} with its status and the server goes on: a
request can fail, the server does not."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import __version__
from .._wire import Packed
from ..loadgen.pool import Served
from ..oip import (
    HEADER_LENGTH,
    ProtocolError,
    binary_header,
    decode_request,
    encode_response,
    response_extra,
)
from .model import VERSION, ServedModel

SERVER = "inferometer"
EXTENSIONS = ("binary_tensor_data", "statistics")


_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
_HL = HEADER_LENGTH.lower().encode()
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, body, headers


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status)


def _error_answer(status: int, text: str) -> Answer:
    return status, json.dumps({"error": text}).encode(), [(b"content-type",
                                                          b"application/json")]


class _Infer:
    """The infer endpoint as plain ASGI, in front of the Starlette app that serves the rest:
    it is the one path every request takes, and Starlette's request and response objects
    cost it about 0.1 ms here.  Anything else, an unknown model or version included, goes
    on to Starlette (404 with {"error"})."""

    def __init__(self, app: Any, models: dict[str, ServedModel]) -> None:
        self.app, self.models = app, models
        self._heads: dict[tuple[str, bytes, str], bytes] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        m = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _INFER.match(scope["path"])
            if match and match.group(2) in (None, VERSION):
                m = self.models.get(match.group(1))
        if m is None:
            await self.app(scope, receive, send)
            return
        status, body, headers = await self._infer(m, scope, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _infer(self, m: ServedModel, scope: Any, receive: Any) -> Answer:
        t0 = time.monotonic_ns()
        declared = hl = None
        for k, v in scope["headers"]:  # the two it reads (uvicorn gives names lower-case)
            k = k.lower()
            if k == b"content-length":
                declared = v.decode("latin-1")
            elif k == _HL:
                hl = v.decode("latin-1")
        declared = declared or ""
        too_large = declared.isdigit() and int(declared) > m.max_body
        chunks, size, more = [], 0, True
        while more:  # read it all (a client blocked on sending would never see the 413)
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return _error_answer(400, "the client went away")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > m.max_body:
                too_large = True
            if not too_large:
                chunks.append(chunk)
            more = msg.get("more_body", False)
        if too_large:
            m.fail(time.monotonic_ns() - t0)
            return _error_answer(413, f"request body over {m.max_body} bytes (the server's "
                                 "--max-body)")
        try:
            if hl is not None and not hl.isdigit():
                raise ProtocolError(f"{HEADER_LENGTH} '{hl}' is not a byte count")
            req = decode_request(b"".join(chunks), int(hl) if hl is not None else None)
            names = m.output_names
            unknown = [o for o in req.outputs if o not in names]
            if unknown:
                raise ProtocolError(f"unknown output(s) {', '.join(unknown)}; model "
                                    f"'{m.name}' gives {', '.join(names)}")
            served = await m.infer(req.inputs)  # submit checks names, shapes, the batch
        except ProtocolError as exc:
            m.fail(time.monotonic_ns() - t0)
            return _error_answer(400, str(exc))
        if served.error is not None or served.outputs is None:
            return _error_answer(500, f"inference failed: {served.error}")
        wanted = req.outputs or names
        outs = served.outputs
        if req.binary and isinstance(outs, Packed) and wanted == names:
            # the instance's packed outputs straight into the body: the response header for
            # these names, dtypes and shapes is made once (oip), the bytes are joined as they are
            key = (m.name, outs.head, req.id)
            head = self._heads.get(key)  # the packed header's bytes: a cheaper key than oip's
            if head is None:
                head = binary_header("outputs", tuple(e[:3] for e in outs.entries),
                                     tuple(response_extra(m.name, VERSION, req.id).items()))
                if len(self._heads) >= 64:
                    self._heads.clear()
                self._heads[key] = head
            out, hlen = b"".join([head, *outs.raw()]), len(head)
        else:
            out, hlen = encode_response(m.name, VERSION, [(n, outs[n]) for n in wanted],
                                        req.binary, req.id)
        timing = (b"server-timing", server_timing(served))
        if hlen is None:
            return 200, out, [(b"content-type", b"application/json"), timing]
        return 200, out, [(b"content-type", b"application/octet-stream"),
                          (_HL, str(hlen).encode()), timing]


def server_timing(served: Served) -> bytes:
    """The request's own queue and inference time (ms) as a W3C Server-Timing header, named
    as the statistics extension names them: its figures are per window, these per request,
    so a client can take its latency minus the inference request by request."""
    return b"queue;dur=%.3f, compute_infer;dur=%.3f" % (
        served.queue_ns / 1e6, served.inference_ns / 1e6)


def build_app(models: dict[str, ServedModel], lifespan: Any = None) -> Any:
    def lookup(request: Request) -> ServedModel | JSONResponse:
        name = request.path_params["name"]
        version = request.path_params.get("version", VERSION)
        m = models.get(name)
        if m is None or version != VERSION:
            # the name is only ever a key of this dict: nothing is read from disk by it
            return _error(404, f"unknown model '{name}'"
                          + (f" version '{version}'" if m is not None else "")
                          + f"; served: {', '.join(models)}")
        return m

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = all(m.ready for m in models.values())
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def server_meta(request: Request) -> Response:
        return JSONResponse({"name": SERVER, "version": __version__,
                             "extensions": list(EXTENSIONS)})

    async def model_meta(request: Request) -> Response:
        m = lookup(request)
        return m if isinstance(m, JSONResponse) else JSONResponse(m.metadata())

    async def model_ready(request: Request) -> Response:
        m = lookup(request)
        if isinstance(m, JSONResponse):
            return m
        return JSONResponse({"name": m.name, "ready": m.ready},
                            status_code=200 if m.ready else 503)

    async def stats(request: Request) -> Response:
        if "name" in request.path_params:
            m = lookup(request)
            if isinstance(m, JSONResponse):
                return m
            return JSONResponse({"model_stats": [m.stats()]})
        return JSONResponse({"model_stats": [m.stats() for m in models.values()]})

    async def metrics(request: Request) -> Response:
        lines = [line for m in models.values() for line in m.metrics()]
        return PlainTextResponse("\n".join(lines) + "\n",
                                 media_type="text/plain; version=0.0.4")

    async def not_served(request: Request) -> Response:
        # _Infer answers every served model's infer; what reaches here names another
        m = lookup(request)
        return m if isinstance(m, JSONResponse) else _error(404, "unknown model version")

    routes = [
        Route("/v2/health/live", live), Route("/v2/health/ready", ready),
        Route("/v2", server_meta), Route("/metrics", metrics),
        Route("/v2/models/stats", stats),
        Route("/v2/models/{name}", model_meta),
        Route("/v2/models/{name}/versions/{version}", model_meta),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
        Route("/v2/models/{name}/stats", stats),
        Route("/v2/models/{name}/versions/{version}/stats", stats),
        Route("/v2/models/{name}/infer", not_served, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", not_served, methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no such endpoint: {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(500, f"{type(exc).__name__}: {exc}")

    return _Infer(Starlette(routes=routes, lifespan=lifespan,
                            exception_handlers={404: not_found, 405: not_allowed,
                                                Exception: internal}), models)
