"""A v2 (Open Inference Protocol) server as the system under test: ours, Triton, KServe, any.
`Remote` is a pool to the load engine (submit a query; completion or error comes back), so the
open-loop server scenario, the scan and the concurrency mode drive a remote server exactly as
they drive the in-process pool, with latency from the scheduled instant to the moment the
whole answer is read.  Requests are built once, before any timing, from the server's model
metadata and the any-model input generators (or the user's --inputs), and sent with binary
tensors; a failed request (refused, timed out, non-200, an answer without outputs) is counted
and reported, never dropped."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InferometerError, UsageError
from ..models.inputs import Feed, generate_all, load_samples
from ..models.io import Input, ModelIO, Tensor, Values
from ..models.onnxfile import default_values
from ..models.ref import ModelRef
from ..oip import (
    DATATYPES,
    HEADER_LENGTH,
    ProtocolError,
    decode_response,
    encode_request,
)

_HTTP = re.compile(r"^http://([^/:]+|\[[^\]]+\]):(\d+)/v2/models/([^/]+)(?:/versions/([^/]+))?/?$")
_GRPC = re.compile(r"^grpc://([^/:]+|\[[^\]]+\]):(\d+)/([^/]+)(?:/([^/]+))?/?$")


class RemoteError(InferometerError):
    """The target is unreachable or is not a v2 server."""


@dataclass(frozen=True)
class Target:
    scheme: str  # "http" or "grpc"
    host: str
    port: int
    model: str
    version: str = ""

    @property
    def url(self) -> str:
        if self.scheme == "http":
            return (f"http://{self.host}:{self.port}/v2/models/{self.model}"
                    + (f"/versions/{self.version}" if self.version else ""))
        return f"grpc://{self.host}:{self.port}/{self.model}" + (
            f"/{self.version}" if self.version else "")


def parse_target(text: str) -> Target:
    for scheme, rx in (("http", _HTTP), ("grpc", _GRPC)):
        m = rx.match(text)
        if m:
            return Target(scheme, m.group(1).strip("[]"), int(m.group(2)), m.group(3),
                          m.group(4) or "")
    raise UsageError(f"--target '{text}': give http://HOST:PORT/v2/models/NAME[/versions/V] "
                     "or grpc://HOST:PORT/NAME[/VERSION]")


# --- the server's side of things ------------------------------------------------------------
class _Http:
    def __init__(self, t: Target, timeout_s: float) -> None:
        self.t, self.timeout_s = t, timeout_s
        self._local = threading.local()
        base = f"/v2/models/{t.model}" + (f"/versions/{t.version}" if t.version else "")
        self.infer_path, self.meta_path, self.stats_path = (base + "/infer", base,
                                                            base + "/stats")

    def _get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """A GET on this thread's keep-alive connection (metadata, statistics)."""
        return self._wire().exchange(
            f"GET {path} HTTP/1.1\r\nHost: {self.t.host}:{self.t.port}\r\n\r\n".encode())

    def metadata(self) -> dict[str, Any]:
        status, headers, body = self._get(self.meta_path)
        return _meta_json(self.t, status, headers, body)

    def encode(self, feed: Feed) -> bytes:
        """The whole request, head and body, as the bytes sent: built once, before timing."""
        body, hl = encode_request(list(feed.items()), binary=True)
        head = (f"POST {self.infer_path} HTTP/1.1\r\nHost: {self.t.host}:{self.t.port}\r\n"
                f"Content-Type: application/octet-stream\r\n{HEADER_LENGTH}: {hl}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    def infer(self, req: bytes) -> tuple[int, dict[str, str], bytes]:
        """The answer as it arrived; `check` reads it after the completion time is taken."""
        return self._wire().exchange(req)

    def check(self, answer: tuple[int, dict[str, str], bytes]) -> None:
        status, rh, data = answer
        if status != 200:
            raise RemoteError(f"HTTP {status}: {_error_text(data)}")
        hl = rh.get(HEADER_LENGTH.lower())
        if not decode_response(data, int(hl) if hl else None):
            raise RemoteError("an answer without outputs")

    def _wire(self) -> _Wire:
        w = getattr(self._local, "wire", None)
        if w is None:
            w = self._local.wire = _Wire(self.t.host, self.t.port, self.timeout_s)
        return w

    def stats(self) -> dict[str, Any] | None:
        try:
            status, _, body = self._get(self.stats_path)
            if status != 200:
                return None
            model_stats = json.loads(body)["model_stats"][0]
            return dict(model_stats["inference_stats"])
        except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
            return None

    def close(self) -> None:
        w = getattr(self._local, "wire", None)
        if w is not None:
            w.close()


class _Wire:
    """One keep-alive HTTP/1.1 connection: the prepared request in one write,
    the answer read by Content-Length (or chunks).  http.client rebuilds headers and parses
    the answer's through the email package on every request, which costs this client about
    0.4 ms a request on this machine; timing the server, not our client, needs less."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.addr, self.timeout_s = (host, port), timeout_s
        self.sock: socket.socket | None = None
        self.f: Any = None

    def _open(self) -> None:
        self.sock = socket.create_connection(self.addr, timeout=self.timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def exchange(self, req: bytes) -> tuple[int, dict[str, str], bytes]:
        fresh = self.sock is None
        if fresh:
            self._open()
        try:
            return self._once(req)
        except (ConnectionResetError, BrokenPipeError, _Closed):
            self.close()
            if fresh:
                raise
            self._open()  # the server closed an idle keep-alive connection: one fresh try
            return self._once(req)
        except BaseException:
            self.close()
            raise

    def _once(self, req: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.sock is not None
        self.sock.sendall(req)
        line = self.f.readline()
        if not line:
            raise _Closed
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise RemoteError(f"not an HTTP answer: {line[:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            h = self.f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = self.f.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.f.readline().split(b";")[0], 16)
                if size == 0:
                    self.f.readline()
                    break
                chunks.append(self.f.read(size))
                self.f.readline()
            body = b"".join(chunks)
        else:
            body = self.f.read()  # delimited by close
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.f = None


class _Closed(ConnectionError):
    """The server closed the connection before answering."""


def server_timing(headers: Mapping[str, str]) -> dict[str, float]:
    """An answer's W3C Server-Timing header (`serve` gives its queue and compute_infer), name
    -> ms; empty when the server sent none."""
    text = headers.get("server-timing", "")
    parts = [p.strip().partition(";dur=") for p in text.split(",") if p.strip()]
    return {name: float(ms) for name, _, ms in parts}


def _error_text(data: bytes) -> str:
    """The server's error message, in one line of at most 300 characters (a server may send a
    whole traceback)."""
    try:
        text = str(json.loads(data).get("error", data[:300].decode(errors="replace")))
    except (ValueError, AttributeError):
        text = data[:300].decode(errors="replace").strip() or "(empty body)"
    return _short(text)


def _short(text: str, limit: int = 300) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _meta_json(t: Target, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    what = headers.get("server", "")
    if status == 404:
        raise RemoteError(f"{t.url}: 404 from {what or 'the server'}: "
                          f"{_error_text(body)} (no model '{t.model}' there, or not a v2 "
                          "server)")
    if status != 200:
        raise RemoteError(f"{t.url}: HTTP {status} from {what or 'the server'}: "
                          f"{_error_text(body)}")
    try:
        meta = json.loads(body)
        assert isinstance(meta, dict) and isinstance(meta.get("inputs"), list)
    except (ValueError, AssertionError):
        kind = headers.get("content-type", "unknown content")
        raise RemoteError(f"{t.url}: not a v2 server: it answered {status} with {kind} "
                          f"({body[:60]!r}...), not model metadata") from None
    return meta


class _Grpc:
    def __init__(self, t: Target, timeout_s: float) -> None:
        import grpc
        from tritonclient.grpc import service_pb2 as pb
        from tritonclient.grpc import service_pb2_grpc as pb_grpc

        self.t, self.timeout_s, self.pb, self.grpc = t, timeout_s, pb, grpc
        self.channel = grpc.insecure_channel(
            f"{t.host}:{t.port}", options=[("grpc.max_receive_message_length", 256 << 20),
                                           ("grpc.max_send_message_length", 256 << 20)])
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def metadata(self) -> dict[str, Any]:
        try:
            m = self.stub.ModelMetadata(self.pb.ModelMetadataRequest(
                name=self.t.model, version=self.t.version), timeout=self.timeout_s)
        except self.grpc.RpcError as exc:
            raise RemoteError(f"{self.t.url}: {exc.code().name}: {exc.details()} (not a v2 "
                              "gRPC server, or no such model)") from None
        return {"name": m.name, "platform": m.platform,
                "inputs": [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)}
                           for i in m.inputs],
                "outputs": [{"name": o.name, "datatype": o.datatype, "shape": list(o.shape)}
                            for o in m.outputs]}

    def encode(self, feed: Feed) -> Any:
        from ..oip import datatype

        req = self.pb.ModelInferRequest(model_name=self.t.model, model_version=self.t.version)
        for name, a in feed.items():
            req.inputs.add(name=name, datatype=datatype(a.dtype), shape=list(a.shape))
            req.raw_input_contents.append(np.ascontiguousarray(a).tobytes())
        return req

    def infer(self, req: Any) -> Any:
        try:
            return self.stub.ModelInfer(req, timeout=self.timeout_s)
        except self.grpc.RpcError as exc:
            raise RemoteError(f"gRPC {exc.code().name}: {_short(exc.details() or '')}") \
                from None

    def check(self, answer: Any) -> None:
        if not answer.outputs:
            raise RemoteError("an answer without outputs")

    def stats(self) -> dict[str, Any] | None:
        try:
            r = self.stub.ModelStatistics(self.pb.ModelStatisticsRequest(
                name=self.t.model, version=self.t.version), timeout=self.timeout_s)
        except self.grpc.RpcError:
            return None
        if not r.model_stats:
            return None
        s = r.model_stats[0].inference_stats
        return {k: {"count": getattr(s, k).count, "ns": getattr(s, k).ns}
                for k in ("success", "fail", "queue", "compute_input", "compute_infer",
                          "compute_output")}

    def close(self) -> None:
        self.channel.close()


# --- the model as the server describes it ---------------------------------------------------
def remote_model(t: Target, meta: dict[str, Any]) -> ModelRef:
    """The server's model metadata as an I/O description: a -1 leading dim shared by every
    input is the batch dim; any other -1 must be bound with --shape.  Values as the server
    states them (`serve` gives each input's in its parameters), else by name and dtype as for
    a file (bytes fill uint8/int8 inputs whole); --value-range overrides either."""
    raw = []
    for spec in meta["inputs"]:
        dt = DATATYPES.get(spec.get("datatype", ""))
        if dt is None:
            raise RemoteError(f"{t.url}: input '{spec.get('name')}' has datatype "
                              f"{spec.get('datatype')}, which we cannot generate")
        raw.append((spec["name"], dt, [int(d) for d in spec.get("shape", [])], spec))
    batched = bool(raw) and all(s and s[0] == -1 for _, _, s, _ in raw)
    inputs = []
    for name, dt, shape, spec in raw:
        dims = tuple("batch" if (a == 0 and batched) else (f"{name}_{a}" if d == -1 else d)
                     for a, d in enumerate(shape))
        tensor = Tensor(name, dt, dims)
        stated = stated_values(t, spec)
        if stated is not None:
            values = stated
        elif dt in ("uint8", "int8"):
            info = np.iinfo(dt)
            values = Values("range", int(info.min), int(info.max) + 1, f"{dt}: every value")
        else:
            values = default_values(None, tensor)
            if values.kind == "image":  # a float NCHW input: plain normal values on the wire
                values = Values("normal", why="float: standard normal")
        inputs.append(Input(tensor, values))
    outputs = tuple(Tensor(o["name"], DATATYPES.get(o.get("datatype", ""), "float32"),
                           tuple("batch" if (a == 0 and batched and d == -1) else
                                 (f"{o['name']}_{a}" if d == -1 else int(d))
                                 for a, d in enumerate(o.get("shape", []))))
                    for o in meta.get("outputs", []))
    io = ModelIO(inputs=tuple(inputs), outputs=outputs, batch_dim="batch" if batched else None)
    # A model with no file here: the target's URL stands where a path would, and no runtime
    # will ever be asked to open it.
    return ModelRef(name=t.model, onnx_path=t.url, io=io, mean=(0.0, 0.0, 0.0),
                    std=(1.0, 1.0, 1.0), sha256="", onnx_error="served remotely: no file here")


_KINDS = ("tokens", "range", "ones", "zeros", "positions", "normal", "bool")


def stated_values(t: Target, spec: Mapping[str, Any]) -> Values | None:
    """The input's values as the server's metadata states them (`inferometer serve` gives
    them as the tensor's parameters); None where it says nothing we can use."""
    params = spec.get("parameters")
    kind = params.get("values") if isinstance(params, dict) else None
    if kind not in _KINDS:
        return None
    low, high = params.get("low"), params.get("high")
    if kind in ("tokens", "range"):
        if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) \
                or not low < high:
            return None
        return Values(kind, low, high, f"as {t.url} states it")
    return Values(kind, why=f"as {t.url} states it")


def request_feeds(model: ModelRef, batch: int, data: Sequence[tuple[str, str]],
                  samples: int = 8) -> list[Feed]:
    """The requests' inputs: the user's samples, or `samples` generated ones (different
    values, the same shapes), used round-robin."""
    shapes = model.io.bind(batch, {})
    if data:
        return load_samples(model.io, data, shapes)
    return [generate_all(model.io, shapes, model.seed + k) for k in range(samples)]


# --- the pool the engine drives -------------------------------------------------------------
class Remote:
    """A remote v2 server as a load-engine pool: `submit` sends a request from one of
    `connections` client threads (each with its own keep-alive connection); its completion
    time or its error comes back through the callbacks."""

    def __init__(self, target: Target, *, connections: int = 64, timeout_s: float = 30.0
                 ) -> None:
        self.target = target
        self.on_complete: Callable[[int, int], None] = lambda qid, t: None
        self.on_start: Callable[[int], None] = lambda qid: None
        self.on_error: Callable[[int, str], None] = lambda qid, reason: None
        self.client: _Http | _Grpc = (_Http if target.scheme == "http" else _Grpc)(
            target, timeout_s)
        try:
            self.meta = self.client.metadata()
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"{target.url}: {_reason(exc)}") from None
        self.connections = connections
        self._pool = ThreadPoolExecutor(max_workers=connections,
                                        thread_name_prefix="inferometer-client")
        self._requests: list[Any] = []
        self._local = threading.local()  # a client thread's next request (see submit)

    def prepare(self, feeds: Sequence[Feed]) -> None:
        """Encode the requests once, before any timing."""
        self._requests = [self.client.encode(f) for f in feeds]

    def _one(self, qid: int) -> None:
        self.on_start(qid)
        try:
            answer = self.client.infer(self._requests[qid % len(self._requests)])
            # complete when the whole answer is in, as perf_analyzer times it: decoding its
            # tensors is the client's work (0.1 ms on a cold cache after a ResNet-50 call)
            done = time.monotonic_ns()
            self.client.check(answer)
        except (RemoteError, ProtocolError, OSError, http.client.HTTPException) as exc:
            self.on_error(qid, _reason(exc))
            return
        self.on_complete(qid, done)

    def submit(self, qid: int, n: int = 1) -> None:
        local = self._local
        if getattr(local, "next", None) == []:
            # submitted from a client thread's own completion (concurrency mode: an answered
            # request is replaced at once): that thread sends it as soon as it returns, as
            # each of perf_analyzer's threads loops.  Handing it to another thread put a
            # thread wake-up (0.1-0.2 ms here after a ResNet-50 call) inside every latency.
            local.next.append(qid)
            return
        self._pool.submit(self._loop, qid)

    def _loop(self, qid: int) -> None:
        local = self._local
        local.next = [qid]
        try:
            while local.next:
                self._one(local.next.pop())
        finally:
            local.next = None

    def stats(self) -> dict[str, Any] | None:
        """The server's statistics extension, when it has one."""
        return self.client.stats()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
