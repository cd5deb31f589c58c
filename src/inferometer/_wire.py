"""Named arrays as bytes between the server's dispatchers and its instance processes: a JSON
header (name, dtype, shape per array) and the raw buffers after it.  numpy and the stdlib only,
because an instance may run inside a runtime's environment that holds nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np


def pack(arrays: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]]) -> bytes:
    items = list(arrays.items()) if isinstance(arrays, Mapping) else list(arrays)
    header = [[name, str(a.dtype), list(a.shape)] for name, a in items]
    head = json.dumps(header).encode()
    body = b"".join(np.ascontiguousarray(a).tobytes() for _, a in items)
    return len(head).to_bytes(4, "little") + head + body


def unpack(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    view = memoryview(buf)
    n = int.from_bytes(view[:4], "little")
    header = json.loads(bytes(view[4:4 + n]))
    out: dict[str, np.ndarray] = {}
    pos = 4 + n
    for name, dtype, shape in header:
        dt = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        out[name] = np.frombuffer(view[pos:pos + size], dt).reshape(shape)
        pos += size
    if pos != len(view):
        raise ValueError(f"payload has {len(view) - pos} bytes beyond its arrays")
    return out
