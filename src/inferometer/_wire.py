"""Named arrays as bytes between the server's dispatchers and its instance processes: a JSON
header (name, dtype, shape per array) and the raw buffers after it.  numpy and the stdlib only,
because an instance may run inside a runtime's environment that holds nothing else.

The same layout travels through a pipe (`pack`) or is written in place into a shared segment
(`pack_into`), where it costs one copy per array and no system call.  Every array starts on a
64-byte boundary of the payload, so in a (page-aligned) segment the runtime gets aligned views."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

Named = Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]]
ALIGN = 64


def _up(pos: int) -> int:
    return -(-pos // ALIGN) * ALIGN


def _items(arrays: Named) -> list[tuple[str, np.ndarray]]:
    return list(arrays.items()) if isinstance(arrays, Mapping) else list(arrays)


def _header(items: list[tuple[str, np.ndarray]]) -> bytes:
    head = json.dumps([[name, str(a.dtype), list(a.shape)] for name, a in items]).encode()
    head = head.ljust(_up(4 + len(head)) - 4)  # JSON allows the trailing blanks
    return len(head).to_bytes(4, "little") + head


def _size(items: list[tuple[str, np.ndarray]], start: int) -> int:
    pos = start
    for _, a in items:
        pos = _up(pos) + a.nbytes
    return pos


def pack(arrays: Named) -> bytes:
    items = _items(arrays)
    parts = [_header(items)]
    pos = len(parts[0])
    for _, a in items:
        pad = _up(pos) - pos
        parts += [b"\0" * pad, np.ascontiguousarray(a).tobytes()]
        pos += pad + a.nbytes
    return b"".join(parts)


def pack_into(buf: memoryview, arrays: Named) -> int | None:
    """Write the packed arrays at the start of `buf`; their size, or None (nothing written
    that matters) when they do not fit."""
    items = _items(arrays)
    head = _header(items)
    if _size(items, len(head)) > len(buf):
        return None
    buf[:len(head)] = head
    pos = len(head)
    for _, a in items:
        pos = _up(pos)
        if a.nbytes:  # frombuffer refuses an empty view
            dst = np.frombuffer(buf, a.dtype, a.size, pos).reshape(a.shape)
            np.copyto(dst, a, casting="no")
        pos += a.nbytes
    return pos


def unpack(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    """The arrays, as views of `buf` (no copy)."""
    view = memoryview(buf)
    n = int.from_bytes(view[:4], "little")
    header = json.loads(bytes(view[4:4 + n]))
    out: dict[str, np.ndarray] = {}
    pos = 4 + n
    for name, dtype, shape in header:
        dt = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        pos = _up(pos)
        out[name] = np.frombuffer(view[pos:pos + size], dt).reshape(shape)
        pos += size
    if pos != len(view):
        raise ValueError(f"payload has {len(view) - pos} bytes beyond its arrays")
    return out
