"""Input values for a cell: generated from each input's `Values`, or read from the user's
.npz/.npy files.  Item i of a generated batch depends only on (seed, input, i), so the first k
items are the same at every batch size and integrity compares like with like."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ModelError
from .io import INPUT_SEED, Input, ModelIO, host_shape
from .preprocess import make_images

Feed = dict[str, np.ndarray]  # input name -> host array (images as uint8 NHWC)


def _item_rng(seed: int, name: str, i: int) -> np.random.Generator:
    return np.random.default_rng((seed, zlib.crc32(name.encode()), i))


def generate(inp: Input, shape: Sequence[int], seed: int = INPUT_SEED) -> np.ndarray:
    """One input's host array of `shape` (the model's shape; an image comes back NHWC)."""
    v, dtype = inp.values, np.dtype(inp.tensor.dtype)
    shape = tuple(shape)
    if inp.is_image:
        n, _, h, w = shape
        return make_images(n, h, w, seed)
    if v.kind == "ones":
        return np.ones(shape, dtype)
    if v.kind == "zeros":
        return np.zeros(shape, dtype)
    if v.kind == "positions":
        return np.ascontiguousarray(np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape))
    n = shape[0] if shape else 1
    item = shape[1:] if shape else ()
    out = np.empty(shape, dtype)
    for i in range(n):
        rng = _item_rng(seed, inp.name, i)
        if v.kind == "normal":
            x = rng.standard_normal(item)
        elif v.kind == "bool":
            x = rng.random(item) < 0.5
        elif v.kind in ("tokens", "range"):
            if v.low is None or v.high is None:
                raise ModelError(f"input '{inp.name}' ({inp.tensor.dtype}) has no known value "
                                 f"range; give one with --value-range {inp.name}:LOW,HIGH")
            if dtype.kind in "iub":
                x = rng.integers(int(v.low), int(v.high), item)
            else:
                x = rng.uniform(v.low, v.high, item)
        else:
            raise ValueError(f"unknown value kind {v.kind!r}")
        if shape:
            out[i] = x
        else:
            out[...] = x
    return out


def generate_all(io: ModelIO, shapes: Mapping[str, tuple[int, ...]],
                 seed: int = INPUT_SEED) -> Feed:
    return {i.name: generate(i, shapes[i.name], seed) for i in io.inputs}


def read_data(data: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """--inputs FILE.npz (arrays named after the inputs) and/or --inputs name=FILE.npy."""
    arrays: dict[str, np.ndarray] = {}
    for name, path in data:
        try:
            if name:
                arrays[name] = np.load(path, allow_pickle=False)
            else:
                with np.load(path, allow_pickle=False) as f:
                    if not hasattr(f, "files"):
                        raise ModelError(f"--inputs {path}: an .npy file needs the input's "
                                         "name: --inputs NAME=FILE.npy")
                    arrays.update({k: f[k] for k in f.files})
        except (OSError, ValueError) as exc:
            raise ModelError(f"--inputs: cannot read {path}: {exc}") from None
    return arrays


def data_source(data: Sequence[tuple[str, str]]) -> str:
    return "--inputs " + ",".join(f"{n}={p}" if n else p for n, p in data)


def load_samples(io: ModelIO, data: Sequence[tuple[str, str]],
                 shapes: Mapping[str, tuple[int, ...]]) -> list[Feed]:
    """The user's data: an array of the input's rank is one sample, one rank more is a stack
    of samples (used round-robin).  Shapes and dtypes are checked against the cell's, so a
    wrong file is one line, not a runtime's traceback."""
    return check_samples(io, read_data(data), shapes, data_source(data))


def _require_inputs(io: ModelIO, arrays: Mapping[str, np.ndarray], source: str) -> None:
    missing = [i.name for i in io.inputs if i.name not in arrays]
    if missing:
        raise ModelError(f"{source}: no array for input(s) {', '.join(missing)} "
                         f"(has {', '.join(arrays) or 'none'})")


def check_samples(io: ModelIO, arrays: Mapping[str, np.ndarray],
                  shapes: Mapping[str, tuple[int, ...]], source: str) -> list[Feed]:
    _require_inputs(io, arrays, source)
    stacks: dict[str, np.ndarray] = {}
    for i in io.inputs:
        a = np.asarray(arrays[i.name])
        want = host_shape(i, shapes[i.name])
        want_dtype = np.dtype("uint8" if i.is_image else i.tensor.dtype)
        if a.dtype != want_dtype:
            raise ModelError(f"{source}: '{i.name}' is {a.dtype}, the model wants {want_dtype}"
                             + (" (decoded RGB images, NHWC)" if i.is_image else ""))
        if a.shape == want:
            a = a[None]
        elif a.shape[1:] != want:
            raise ModelError(f"{source}: '{i.name}' has shape {list(a.shape)}; the cell wants "
                             f"{list(want)} (or a stack of them)")
        stacks[i.name] = a
    counts = {len(a) for a in stacks.values()}
    n = max(counts)
    if len(counts) > 1:
        raise ModelError(f"{source}: the inputs hold different numbers of samples "
                         f"({', '.join(f'{k}: {len(a)}' for k, a in stacks.items())})")
    return [{k: np.ascontiguousarray(a[s]) for k, a in stacks.items()} for s in range(n)]


def data_dims(io: ModelIO, data: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The symbolic dims the user's data fixes (its arrays' shapes), for plan: data, not
    flags, decides the shape of a cell that runs on it."""
    return array_dims(io, read_data(data), data_source(data))


def array_dims(io: ModelIO, arrays: Mapping[str, np.ndarray], source: str) -> dict[str, int]:
    """The symbolic dims arrays named after the inputs fix: an array of the input's rank is
    one sample, one rank more a stack of them; images are NHWC."""
    _require_inputs(io, arrays, source)
    bound: dict[str, int] = {}
    for i in io.inputs:
        shape = arrays[i.name].shape
        rank = len(i.tensor.shape)
        if len(shape) == rank + 1:
            shape = shape[1:]
        if i.is_image and len(shape) == 4:
            n, h, w, c = shape
            shape = (n, c, h, w)
        if len(shape) != rank:
            raise ModelError(f"{source}: '{i.name}' has rank {len(shape)}; the model's input "
                             f"{i.tensor.shape_text()} has rank {rank}")
        for d, size in zip(i.tensor.shape, shape, strict=True):
            if isinstance(d, int):
                if d != size:
                    raise ModelError(f"{source}: '{i.name}' has shape {list(shape)}; the "
                                     f"model's input is {i.tensor.shape_text()}")
            elif bound.setdefault(d, int(size)) != size:
                raise ModelError(f"{source}: dim '{d}' is {bound[d]} in one array and {size} "
                                 f"in '{i.name}'")
    return bound
