"""Named arrays as bytes between the server's dispatchers and its instance processes: a JSON
header (name, dtype, shape per array) and the raw buffers after it.  numpy and the stdlib only,
because an instance may run inside a runtime's environment that holds nothing else.

The same layout travels through a pipe (`pack`) or is written in place into a shared segment
(`pack_into`), where it costs one copy per array and no system call.  Every array starts on a
64-byte boundary of the payload, so in a (page-aligned) segment the runtime gets aligned views.
A server sees the same few layouts over and over, so each is worked out once (`_layout`,
`_parse`): after a long inference the caches are cold and every line of Python on this path
shows in the request's latency."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

import numpy as np

Named = Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]]
Key = tuple[tuple[str, np.dtype, tuple[int, ...]], ...]
Entry = tuple[str, np.dtype, tuple[int, ...], int, int]  # name, dtype, shape, offset, count
ALIGN = 64


def _up(pos: int) -> int:
    return -(-pos // ALIGN) * ALIGN


def _items(arrays: Named) -> list[tuple[str, np.ndarray]]:
    # a list or a dict before the ABC check, which costs ~14 us on the cold caches an
    # instance's answer is packed on
    if type(arrays) is list:
        return arrays
    if isinstance(arrays, dict):
        return list(arrays.items())
    return list(arrays.items()) if isinstance(arrays, Mapping) else list(arrays)


def _entries(key: Key, start: int) -> tuple[tuple[Entry, ...], int]:
    entries, pos = [], start
    for name, dt, shape in key:
        count = int(np.prod(shape, dtype=np.int64))
        pos = _up(pos)
        entries.append((name, dt, shape, pos, count))
        pos += count * dt.itemsize
    return tuple(entries), pos


@lru_cache(maxsize=256)
def _layout(key: Key) -> tuple[bytes, tuple[Entry, ...], int]:
    """The header of these arrays, where each goes, and the payload's size."""
    head = json.dumps([[name, str(dt), list(shape)] for name, dt, shape in key]).encode()
    head = head.ljust(_up(4 + len(head)) - 4)  # JSON allows the trailing blanks
    head = len(head).to_bytes(4, "little") + head
    return (head, *_entries(key, len(head)))


@lru_cache(maxsize=256)
def _parse(head: bytes) -> tuple[tuple[Entry, ...], int]:
    key = tuple((name, np.dtype(dtype), tuple(shape)) for name, dtype, shape in json.loads(head))
    return _entries(key, 4 + len(head))


def _key(items: list[tuple[str, np.ndarray]]) -> Key:
    return tuple([(name, a.dtype, a.shape) for name, a in items])


def pack(arrays: Named) -> bytearray:
    """The packed arrays, for the pipe (a bytearray: a bytes copy of a large payload would
    cost as much as packing it)."""
    items = _items(arrays)
    head, entries, end = _layout(_key(items))
    out = bytearray(end)
    out[:len(head)] = head
    _fill(memoryview(out), items, entries)
    return out


def pack_into(buf: memoryview, arrays: Named) -> int | None:
    """Write the packed arrays at the start of `buf`; their size, or None (nothing written
    that matters) when they do not fit."""
    items = _items(arrays)
    head, entries, end = _layout(_key(items))
    if end > len(buf):
        return None
    buf[:len(head)] = head
    _fill(buf, items, entries)
    return end


def _fill(buf: memoryview, items: list[tuple[str, np.ndarray]],
          entries: tuple[Entry, ...]) -> None:
    for (_, a), entry in zip(items, entries, strict=True):
        if entry[4]:  # one memory copy: the layout took its dtype and shape from `a` itself
            m = memoryview(a)
            if not m.c_contiguous:
                m = memoryview(np.ascontiguousarray(a))
            pos = entry[3]
            buf[pos:pos + m.nbytes] = m.cast("B")


def unpack(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    """The arrays, as views of `buf` (no copy)."""
    p = Packed(buf)
    return {name: np.ndarray(shape, dt, p._view, pos) for name, dt, shape, pos, _ in p.entries}


class Packed(Mapping[str, np.ndarray]):
    """Packed arrays read back as a read-only mapping: an array is made when first asked for,
    and `raw` gives an array's bytes without making it, so a served answer can go from the
    instance's packed outputs to the HTTP body with no numpy call at all (each one costs 4-15
    us on the cold caches a long inference leaves)."""

    __slots__ = ("_arrays", "_view", "entries", "head")

    def __init__(self, buf: bytes) -> None:
        view = memoryview(buf)
        n = int.from_bytes(view[:4], "little")
        self.head = bytes(view[4:4 + n])  # names, dtypes and shapes: the same for like answers
        self.entries, end = _parse(self.head)
        if end != len(view):
            raise ValueError(f"payload of {len(view)} bytes, its arrays take {end}")
        self._view = view
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None:
            for n, dt, shape, pos, _ in self.entries:
                if n == name:
                    a = self._arrays[name] = np.ndarray(shape, dt, self._view, pos)
                    break
            else:
                raise KeyError(name)
        return a

    def __iter__(self) -> Iterator[str]:
        return (e[0] for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def raw(self) -> list[memoryview]:
        """Every array's bytes, in order (C order, no padding)."""
        return [self._view[pos:pos + count * dt.itemsize]
                for _, dt, _, pos, count in self.entries]


class InPlace:
    """Requests unpacked where they lie, at the start of a fixed buffer (an instance's shared
    segment): the views of a layout are made once and kept, since the next request like it
    lands in the same place, so a repeated request costs one compare of its header instead
    of a numpy call per array.  A view shows whatever the buffer holds now: valid for the
    request just unpacked, until the buffer is written again."""

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self._views = lru_cache(maxsize=16)(self._made)

    def _made(self, head: bytes, size: int) -> dict[str, np.ndarray]:
        return unpack(self.buf[:size])  # checks the layout fills `size`

    def unpack(self, size: int) -> dict[str, np.ndarray]:
        n = int.from_bytes(self.buf[:4], "little")
        # the caller may change its dict, not the one kept
        return dict(self._views(bytes(self.buf[4:4 + n]), size))
