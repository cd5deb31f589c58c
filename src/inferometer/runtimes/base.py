"""The one plug-in point.  A runtime is a class with a name, its variants, `available()`,
`supports(model)` and `load(model, options) -> Session`.  A session converts the named host
inputs into the runtime's input (`prepare`: an image input arrives as a decoded uint8 NHWC
batch and is normalised there; every other input arrives in the model's dtype and shape) and
runs it (`run`, which returns every output in the model's order, only when the work is
finished: devices are synchronised inside).  The model's I/O description (`model.io`) says
what each input is; no runtime special-cases a model.  Heavy imports happen inside `load`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from ..models.ref import ModelRef


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str = "fp32"
    help: str = ""
    devices: tuple[str, ...] = ("cpu",)  # where this variant can run ("cpu", "cuda")


@dataclass(frozen=True)
class Availability:
    available: bool
    version: str | None = None
    reason: str | None = None
    install: str | None = None  # the exact command that makes it available


@dataclass(frozen=True)
class LoadOptions:
    variant: str
    threads: int | None  # None: leave the runtime's default (host threads on any device)
    batch: int
    device: str = "cpu"
    # every input's concrete shape in this cell (the model's shape: an image is NCHW), for
    # runtimes that compile for static shapes
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # dynamic batching: the session is asked for every batch from 1 to `batch` (the leading
    # dim of every input), so a runtime that compiles static shapes leaves that dim bounded
    dynamic_batch: bool = False


class Session(Protocol):
    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        """Named host arrays -> the runtime's input (layout, dtype, normalisation, device)."""

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        """Infer; return every output as host numpy, in the model's order (valid until the
        next call)."""

    def info(self) -> dict[str, str]:
        """Effective settings as the runtime reports them (threads, precision, providers...)."""

    def close(self) -> None: ...


class Runtime(Protocol):
    name: ClassVar[str]
    variants: ClassVar[tuple[Variant, ...]]
    default_variants: ClassVar[tuple[str, ...]]

    def available(self) -> Availability: ...
    def version(self) -> str: ...
    def supports(self, model: ModelRef) -> str | None:
        """None if it can run `model`, else the reason it cannot."""
    def load(self, model: ModelRef, options: LoadOptions) -> Session: ...

    # Optional: `device_unavailable(device) -> str | None` says why a device its variants
    # support cannot be used here (a CPU-only build, a missing GPU package), without a GPU.
    # A session on a device may add `device_samples_ns()` (device-only time of each run, from
    # events) and `device_memory_mb()` (framework/driver memory figures).
    # Optional: `convert(model, variant) -> str` turns the ONNX file into the runtime's own
    # format (cached; returns what it did).  The runner calls it once per (model, variant), in
    # its own worker, before the cells, so conversion never counts as load time.  A runtime
    # whose variants do not all convert lists the ones that do in `convert_variants`.  One
    # whose conversion of a model is specialised to the cell's input shapes says so with
    # `converts_per_shape(model) -> bool`: it is then converted once per (model, variant,
    # batch, dims) and `convert` receives `shapes=` (every input's concrete shape).


def installed(module: str, dists: Sequence[str], install: str) -> Availability:
    """Availability without importing the runtime: importing torch or openvino in the
    orchestrator would cost seconds and memory for nothing."""
    if importlib.util.find_spec(module) is None:
        return Availability(False, reason=f"python module '{module}' not installed",
                            install=install)
    for dist in dists:
        try:
            return Availability(True, version=importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            continue
    return Availability(True, version="unknown")


def variant(runtime: type[Runtime] | Runtime, name: str) -> Variant:
    for v in runtime.variants:
        if v.name == name:
            return v
    raise KeyError(name)


def needs_conversion(runtime: type[Runtime] | Runtime, variant_name: str) -> bool:
    return hasattr(runtime, "convert") and variant_name in getattr(
        runtime, "convert_variants", (variant_name,))


def per_shape(model: ModelRef) -> bool:
    """Whether a runtime that fixes shapes at conversion converts `model` once per cell shape:
    every model but a one-image one (whose batch stays dynamic)."""
    return model.io.image is None


def shape_key(shapes: Mapping[str, Sequence[int]]) -> str:
    """A cache key for a conversion made at `shapes`."""
    text = ";".join(f"{k}={'x'.join(map(str, v))}" for k, v in sorted(shapes.items()))
    return "static-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def per_shape_key(model: ModelRef, shapes: Mapping[str, Sequence[int]] | None) -> str | None:
    """The cache key of a per-shape conversion of `model` at `shapes`; None for a one-image
    model, whose one conversion serves every batch."""
    if not per_shape(model):
        return None
    if shapes is None:
        raise ValueError(f"{model.name} converts per cell shape: the shapes are needed")
    return shape_key(shapes)


def refuse_dynamic_batch(model: ModelRef, options: LoadOptions, name: str) -> None:
    """For a runtime that converted `model` for the cell's one shape."""
    if options.dynamic_batch and per_shape(model):
        raise NotImplementedError(
            f"{name} runs this model as converted for one shape (batch {options.batch}); "
            "every batch up to it would need a conversion of its own")


def converts_per_shape(runtime: type[Runtime] | Runtime, model: ModelRef) -> bool:
    check = getattr(runtime, "converts_per_shape", None)
    return bool(check and check(model))


def conversion_key(runtime: type[Runtime] | Runtime, model: ModelRef, variant_name: str,
                   batch: int, dims: Sequence[tuple[str, int]]) -> str:
    """What one conversion serves: a (model, runtime, variant), or with a runtime that
    converts per shape, a (model, runtime, variant, batch, dims)."""
    key = f"{model.name}.{runtime.name}.{variant_name}"
    if converts_per_shape(runtime, model):
        key += f".b{batch}" + "".join(f".{k}{v}" for k, v in dims)
    return key


def image_batch(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The uint8 NHWC batch of a one-image model (runtimes whose module feeds one image)."""
    (batch,) = inputs.values()
    return batch
