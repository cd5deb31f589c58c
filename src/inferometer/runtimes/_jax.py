"""JAX (XLA on the CPU): the ONNX graph translated op by op into jax.lax and jit-compiled.

There is no maintained ONNX->JAX converter, so these are small translators; a graph with any
other op fails at load naming the ops.  A one-image model uses the one here, covering the ops
the zoo exports (Conv, pools, Gemm, BN, PRelu, Clip, Concat, ...), with activations NHWC, the
layout XLA's CPU convolutions want: the input is normalised without a transpose, and conv
weights are transposed once at load.  Any other model uses `_jax_generic` (its own layout,
every input and output, a transformer's ops, shape arithmetic folded while tracing).

Threads: XLA's CPU client has no thread-count knob, so N threads means the worker's CPU
affinity is cut to N CPUs before jax is imported, and 1 thread also sets XLA's single-threaded
Eigen flag; the cell records both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays, Normalizer
from ..models.ref import ModelRef, onnx_missing
from .base import Availability, LoadOptions, Variant, image_batch, installed

_NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads(a: dict[str, Any], rank: int = 2) -> list[tuple[int, int]]:
    p = list(a.get("pads", [0] * (2 * rank)))
    return [(p[i], p[i + rank]) for i in range(rank)]


def _translate(proto: Any) -> tuple[Callable, dict[str, np.ndarray]]:
    """ONNX graph -> (fn(params, x_nhwc) -> output, params), params in JAX-ready layout."""
    import jax.numpy as jnp
    from jax import lax
    from onnx import numpy_helper

    params = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    nodes = list(proto.graph.node)
    for node in nodes:  # conv weights OIHW -> HWIO once, here, not per call
        if node.op_type == "Conv":
            w = params[node.input[1]]
            params[node.input[1]] = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
        if node.op_type == "Constant":
            params[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])

    def per_channel(v: Any) -> Any:  # (C,) or (C,1,1) -> broadcast over NHWC's last axis
        return jnp.reshape(v, (-1,))

    def pool(x: Any, a: dict, init: Any, op: Callable) -> Any:
        kh, kw = a["kernel_shape"]
        sh, sw = a.get("strides", [1, 1])
        (pt, pb), (pl, pr) = _pads(a)
        if a.get("ceil_mode", 0):
            raise NotImplementedError("pooling with ceil_mode=1")
        return lax.reduce_window(x, init, op, (1, kh, kw, 1), (1, sh, sw, 1),
                                 [(0, 0), (pt, pb), (pl, pr), (0, 0)])

    def conv(n: Any, a: dict, x: Any, w: Any, b: Any = None) -> Any:
        y = lax.conv_general_dilated(x, w, tuple(a.get("strides", [1, 1])), _pads(a),
                                     rhs_dilation=tuple(a.get("dilations", [1, 1])),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     feature_group_count=a.get("group", 1))
        return y if b is None else y + b

    def avgpool(n: Any, a: dict, x: Any) -> Any:
        s = pool(x, a, 0.0, lax.add)
        if a.get("count_include_pad", 0):
            return s / float(np.prod(a["kernel_shape"]))
        return s / pool(jnp.ones_like(x), a, 0.0, lax.add)

    def gemm(n: Any, a: dict, x: Any, w: Any, c: Any = None) -> Any:
        x = x.T if a.get("transA", 0) else x
        w = w.T if a.get("transB", 0) else w
        y = a.get("alpha", 1.0) * (x @ w)
        return y if c is None else y + a.get("beta", 1.0) * c

    def flatten(n: Any, a: dict, x: Any) -> Any:
        if x.ndim == 4:  # back to NCHW order so the flattened features match the weights
            x = jnp.transpose(x, (0, 3, 1, 2))
        return jnp.reshape(x, (x.shape[0], -1))

    def reduce_mean(n: Any, a: dict, x: Any, axes: Any = None) -> Any:
        ax = a.get("axes", axes)
        ax = tuple(_NCHW_TO_NHWC_AXIS[int(i) % 4] for i in ax) if x.ndim == 4 else tuple(ax)
        return jnp.mean(x, axis=ax, keepdims=bool(a.get("keepdims", 1)))

    def batchnorm(n: Any, a: dict, x: Any, s: Any, b: Any, m: Any, v: Any) -> Any:
        scale = s / jnp.sqrt(v + a.get("epsilon", 1e-5))
        return x * scale + (b - m * scale)

    ops: dict[str, Callable] = {
        "Conv": conv, "Relu": lambda n, a, x: jnp.maximum(x, 0),
        "MaxPool": lambda n, a, x: pool(x, a, -jnp.inf, lax.max), "AveragePool": avgpool,
        "GlobalAveragePool": lambda n, a, x: jnp.mean(x, axis=(1, 2), keepdims=True),
        "Add": lambda n, a, x, y: x + y, "Gemm": gemm, "Flatten": flatten,
        "ReduceMean": reduce_mean, "Identity": lambda n, a, x: x,
        "Concat": lambda n, a, *xs: jnp.concatenate(
            xs, axis=_NCHW_TO_NHWC_AXIS[a["axis"] % 4] if xs[0].ndim == 4 else a["axis"]),
        "Clip": lambda n, a, x, lo=None, hi=None: jnp.clip(x, lo, hi),
        "PRelu": lambda n, a, x, slope: jnp.where(x > 0, x, x * per_channel(slope)),
        "BatchNormalization": batchnorm, "Constant": None,
    }
    unknown = sorted({n.op_type for n in nodes} - set(ops))
    if unknown:
        raise NotImplementedError(f"ONNX ops not covered by the JAX translator: {unknown}")
    inp, out = proto.graph.input[0].name, proto.graph.output[0].name

    def fn(p: dict[str, Any], x: Any) -> Any:
        env = dict(p)
        env[inp] = x
        for node in nodes:
            if node.op_type == "Constant":
                continue
            args = [env[i] if i else None for i in node.input]
            env[node.output[0]] = ops[node.op_type](node, _attrs(node), *args)
        return env[out]

    return fn, params


class _JaxSession:
    """A one-image model's function takes the NHWC batch and returns its one output; any
    other's takes the model arrays by name and returns every output (`named`)."""

    def __init__(self, jax: Any, fn: Callable, params: Any, model: ModelRef,
                 info: dict[str, str], named: bool = False) -> None:
        self._jax = jax
        self._fn = fn
        self._params = params
        self._named = named
        self._norm = Normalizer.of(model)
        self._arrays = ModelArrays(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        if self._named:
            return {k: self._jax.device_put(v) for k, v in self._arrays(inputs).items()}
        return self._jax.device_put(self._norm.nhwc(image_batch(inputs)))

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        out = self._fn(self._params, feed)
        return [np.asarray(y) for y in (out if self._named else [out])]  # blocks until ready

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._fn = None


class Jax:
    name: ClassVar[str] = "jax"
    environment: ClassVar[str] = "jax"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("jit", "fp32", "ONNX ops translated to jax.lax, NHWC, jax.jit"),)
    default_variants: ClassVar[tuple[str, ...]] = ("jit",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "jit"}

    def available(self) -> Availability:
        return installed("jax", ("jax",), "inferometer env create jax")

    def version(self) -> str:
        import jax
        return jax.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    def load(self, model: ModelRef, options: LoadOptions) -> _JaxSession:
        if options.threads is not None:  # before jax is imported: XLA sizes its pool once
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: options.threads])
            if options.threads == 1:
                os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                           " --xla_cpu_multi_thread_eigen=false").strip()
        import jax
        import onnx

        named = model.io.image is None
        if named:
            from ._jax_generic import translate

            fn, params, names = translate(onnx.load(model.onnx_path))
            if set(names) != {i.name for i in model.io.inputs}:
                raise RuntimeError(f"the graph takes {names}, the model description "
                                   f"{[i.name for i in model.io.inputs]}")
        else:
            fn, params = _translate(onnx.load(model.onnx_path))
        dev = jax.devices("cpu")[0]
        params = {k: jax.device_put(v, dev) for k, v in params.items()}
        info = {"device": str(dev), "layout": "model's own" if named else "NHWC",
                "cpus_allowed": str(len(os.sched_getaffinity(0))),
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
        return _JaxSession(jax, jax.jit(fn), params, model, info, named=named)
