"""The Open Inference Protocol's (KServe v2) tensors over HTTP: JSON tensors and Triton's
binary-tensor extension, both ways.  The server (serve.app) and our client (loadgen.remote) share
this one codec, so what one writes the other reads: a leaf module, numpy and the stdlib only."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

# The protocol's datatypes and numpy's (BYTES, strings, is not a tensor any runtime here takes)
DATATYPES = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
             "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32",
             "INT64": "int64", "FP16": "float16", "FP32": "float32", "FP64": "float64"}
_FROM_NUMPY = {v: k for k, v in DATATYPES.items()}
HEADER_LENGTH = "Inference-Header-Content-Length"


class ProtocolError(ValueError):
    """A request or response that breaks the protocol: the text says what (a 400)."""


def datatype(dtype: str | np.dtype) -> str:
    name = str(np.dtype(dtype))
    if name not in _FROM_NUMPY:
        raise ProtocolError(f"dtype {name} has no Open Inference Protocol datatype")
    return _FROM_NUMPY[name]


def to_numpy(dt: str) -> np.dtype:
    if dt not in DATATYPES:
        raise ProtocolError(f"datatype '{dt}' is not supported; valid: {', '.join(DATATYPES)}")
    return np.dtype(DATATYPES[dt])


@dataclass(frozen=True)
class Request:
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]  # the outputs asked for ((): every output)
    binary: bool  # answer with binary tensors
    id: str = ""


def _array(spec: Mapping[str, Any], raw: memoryview | None) -> np.ndarray:
    name = spec.get("name")
    shape = spec.get("shape")
    if not isinstance(name, str) or not isinstance(shape, list) or \
            not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError("every tensor needs a 'name' and a 'shape' of non-negative ints")
    dt = to_numpy(str(spec.get("datatype")))
    count = int(np.prod(shape, dtype=np.int64))
    if raw is not None:
        if len(raw) != count * dt.itemsize:
            raise ProtocolError(f"tensor '{name}': {len(raw)} bytes of binary data for shape "
                                f"{shape} of {spec.get('datatype')} ({count * dt.itemsize})")
        return np.frombuffer(raw, dt).reshape(shape)
    if "data" not in spec:
        raise ProtocolError(f"tensor '{name}' has neither 'data' nor binary data")
    try:
        arr = np.asarray(spec["data"], dtype=dt).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"tensor '{name}': data does not fit shape {shape} "
                            f"({exc})") from None
    return arr


def _split(body: bytes, header_length: int | None) -> tuple[dict[str, Any], memoryview]:
    n = len(body) if header_length is None else header_length
    if n < 0 or n > len(body):
        raise ProtocolError(f"{HEADER_LENGTH} {n} is outside the body ({len(body)} bytes)")
    try:
        head = json.loads(body[:n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    if not isinstance(head, dict):
        raise ProtocolError("the body must be a JSON object")
    return head, memoryview(body)[n:]


def _tensors(specs: Any, rest: memoryview, key: str) -> list[tuple[Mapping, np.ndarray]]:
    if not isinstance(specs, list):
        raise ProtocolError(f"'{key}' must be a list of tensors")
    out, pos = [], 0
    for spec in specs:
        if not isinstance(spec, dict):
            raise ProtocolError(f"'{key}' must be a list of tensors")
        size = (spec.get("parameters") or {}).get("binary_data_size")
        raw = None
        if size is not None:
            if not isinstance(size, int) or size < 0 or pos + size > len(rest):
                raise ProtocolError(f"tensor '{spec.get('name')}': binary_data_size {size} "
                                    "runs past the body")
            raw, pos = rest[pos:pos + size], pos + size
        out.append((spec, _array(spec, raw)))
    if pos != len(rest):
        raise ProtocolError(f"{len(rest) - pos} bytes of binary data belong to no tensor")
    return out


@dataclass(frozen=True)
class _Plan:
    """A request header whose tensors are all binary, read once: where each tensor lies in
    the binary part and what the request asks for.  Load tests and deployed clients send the
    same header over and over (same names, shapes, parameters), and after a long inference the
    caches are cold, so parsing and checking that JSON again cost a served request ~0.1 ms."""

    tensors: tuple[tuple[str, np.dtype, tuple[int, ...], int, int], ...]  # + offset, size
    size: int  # the binary part's length
    outputs: tuple[str, ...]
    binary: bool
    id: str

    def arrays(self, rest: memoryview) -> dict[str, np.ndarray]:
        if len(rest) != self.size:
            raise ProtocolError(f"{len(rest)} bytes of binary data after the header; its "
                                f"tensors take {self.size}")
        return {name: np.ndarray(shape, dt, rest, pos) for name, dt, shape, pos, _ in self.tensors}


_PLANS: dict[bytes, _Plan] = {}
_PLANS_MAX = 64  # distinct headers kept; a client varying its ids or shapes past it re-parses


def decode_request(body: bytes, header_length: int | None = None) -> Request:
    if header_length is not None and 0 <= header_length <= len(body):
        plan = _PLANS.get(body[:header_length])
        if plan is not None:
            return Request(plan.arrays(memoryview(body)[header_length:]), plan.outputs,
                           plan.binary, plan.id)
    head, rest = _split(body, header_length)
    specs = _tensors(head.get("inputs"), rest, "inputs")
    inputs = {str(s["name"]): a for s, a in specs}
    params = head.get("parameters") or {}
    asked = head.get("outputs") or []
    if not isinstance(asked, list) or not all(isinstance(o, dict) and "name" in o
                                              for o in asked):
        raise ProtocolError("'outputs' must be a list of {\"name\": ...}")
    binary = bool(params.get("binary_data_output")) or any(
        (o.get("parameters") or {}).get("binary_data") for o in asked)
    req = Request(inputs, tuple(str(o["name"]) for o in asked), binary,
                  str(head.get("id", "")))
    if header_length is not None and specs and len(inputs) == len(specs) and all(
            "data" not in s for s, _ in specs):  # all binary: the header says everything
        tensors, pos = [], 0
        for s, a in specs:
            tensors.append((str(s["name"]), a.dtype, a.shape, pos, a.nbytes))
            pos += a.nbytes
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[bytes(body[:header_length])] = _Plan(tuple(tensors), pos, req.outputs,
                                                    binary, req.id)
    return req


Spec = tuple[str, np.dtype, tuple[int, ...]]  # a binary tensor's name, dtype and shape


def encode_tensors(key: str, arrays: Sequence[tuple[str, np.ndarray]], binary: bool,
                   extra: Mapping[str, Any]) -> tuple[bytes, int | None]:
    """A request or response body: JSON tensors, or a JSON header and the raw buffers after
    it (then the header's length, for the Inference-Header-Content-Length header)."""
    if not binary:
        return json.dumps({**extra, key: [
            {"name": name, "datatype": datatype(a.dtype), "shape": list(a.shape),
             "data": a.ravel().tolist()} for name, a in arrays]}).encode(), None
    blobs = [np.ascontiguousarray(a) for _, a in arrays]
    specs = tuple([(name, a.dtype, a.shape) for name, a in arrays])
    if all(isinstance(v, str) for v in extra.values()):  # a response's: names, id
        head = binary_header(key, specs, tuple(extra.items()))
    else:  # a request's parameters: made once, before any timing
        head = _binary_json(key, specs, extra)
    return b"".join((head, *(b.data for b in blobs))), len(head)


@lru_cache(maxsize=64)
def binary_header(key: str, specs: tuple[Spec, ...], extra: tuple[tuple[str, str], ...]
                  ) -> bytes:
    """The JSON header of binary tensors, made once per what it says: a server answers the
    same names, dtypes and shapes over and over, on the cold caches a long inference leaves."""
    return _binary_json(key, specs, dict(extra))


def _binary_json(key: str, specs: Sequence[Spec], extra: Mapping[str, Any]) -> bytes:
    return json.dumps({**extra, key: [
        {"name": name, "datatype": datatype(dt), "shape": list(shape),
         "parameters": {"binary_data_size": int(np.prod(shape, dtype=np.int64)) * dt.itemsize}}
        for name, dt, shape in specs]}).encode()


def response_extra(model: str, version: str, rid: str = "") -> dict[str, str]:
    """What a response says besides its tensors."""
    extra = {"model_name": model, "model_version": version}
    if rid:
        extra["id"] = rid
    return extra


def encode_response(model: str, version: str, outputs: Sequence[tuple[str, np.ndarray]],
                    binary: bool, rid: str = "") -> tuple[bytes, int | None]:
    return encode_tensors("outputs", outputs, binary, response_extra(model, version, rid))


def encode_request(inputs: Sequence[tuple[str, np.ndarray]], binary: bool = True
                   ) -> tuple[bytes, int | None]:
    extra = {"parameters": {"binary_data_output": True}} if binary else {}
    return encode_tensors("inputs", inputs, binary, extra)


def decode_response(body: bytes, header_length: int | None = None) -> dict[str, np.ndarray]:
    head, rest = _split(body, header_length)
    if "error" in head:
        raise ProtocolError(str(head["error"]))
    return {str(s["name"]): a for s, a in _tensors(head.get("outputs"), rest, "outputs")}
