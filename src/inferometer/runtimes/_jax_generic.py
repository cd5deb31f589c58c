"""The JAX translator for any model that is not one image: the ONNX graph in its own layout,
every input by name, every output in order.

Under `jax.jit` every shape is static, so a graph's shape arithmetic (Shape, Gather on a
shape, Concat, Range, ConstantOfShape: a transformer's position ids and attention reshapes)
is computed here in numpy while tracing and becomes constants of the compiled program; only
tensors that depend on an input are traced.  Each op picks numpy when all its arguments are
host constants and jax.numpy otherwise.  A graph with an op outside the table fails at load,
naming every missing op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _host(*xs: Any) -> bool:
    return all(x is None or isinstance(x, np.ndarray | np.generic | int | float) for x in xs)


def _ints(x: Any) -> list[int]:
    return [int(v) for v in np.asarray(x).reshape(-1)]


def _constant(a: dict[str, Any]) -> np.ndarray:
    from onnx import numpy_helper

    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64),
                       ("value_floats", np.float32), ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype)
    raise NotImplementedError(f"Constant with {sorted(a)}")


def ops_table() -> dict[str, Callable]:
    """op type -> f(attrs, *inputs); `xp` below is numpy or jax.numpy per call."""
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    from onnx import helper

    def xp(*xs: Any) -> Any:
        return np if _host(*xs) else jnp

    def binary(name: str) -> Callable:
        return lambda a, x, y: getattr(xp(x, y), name)(x, y)

    def unary(name: str) -> Callable:
        return lambda a, x: getattr(xp(x), name)(x)

    def div(a: dict, x: Any, y: Any) -> Any:
        m = xp(x, y)
        if np.issubdtype(np.asarray(x).dtype if m is np else x.dtype, np.integer):
            return m.trunc(x / y).astype(x.dtype)  # ONNX integer division truncates
        return x / y

    def gather(a: dict, x: Any, idx: Any) -> Any:
        axis = a.get("axis", 0)
        m = xp(x, idx)
        idx = m.where(idx < 0, idx + x.shape[axis], idx)
        return m.take(x, idx, axis=axis)

    def cast(a: dict, x: Any) -> Any:
        dtype = helper.tensor_dtype_to_np_dtype(a["to"])
        return x.astype(dtype)

    def unsqueeze(a: dict, x: Any, axes: Any = None) -> Any:
        axes = _ints(a["axes"] if axes is None else axes)
        rank = x.ndim + len(axes)
        return xp(x).expand_dims(x, tuple(sorted(i % rank for i in axes)))

    def squeeze(a: dict, x: Any, axes: Any = None) -> Any:
        axes = a.get("axes") if axes is None else axes
        if axes is None:
            return xp(x).squeeze(x)
        return xp(x).squeeze(x, tuple(i % x.ndim for i in _ints(axes)))

    def slice_(a: dict, x: Any, starts: Any, ends: Any, axes: Any = None,
               steps: Any = None) -> Any:
        starts, ends = _ints(starts), _ints(ends)
        axes = _ints(axes) if axes is not None else list(range(len(starts)))
        steps = _ints(steps) if steps is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            index[ax % x.ndim] = slice(*slice(s, e, st).indices(x.shape[ax % x.ndim]))
        return x[tuple(index)]

    def reshape(a: dict, x: Any, shape: Any) -> Any:
        dims = _ints(shape)
        if not a.get("allowzero", 0):
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return xp(x).reshape(x, dims)

    def layernorm(a: dict, x: Any, scale: Any, bias: Any = None) -> Any:
        axes = tuple(range(a.get("axis", -1) % x.ndim, x.ndim))
        m = xp(x, scale, bias)
        mean = m.mean(x, axis=axes, keepdims=True)
        var = m.mean((x - mean) ** 2, axis=axes, keepdims=True)
        y = (x - mean) / m.sqrt(var + a.get("epsilon", 1e-5)) * scale
        return y if bias is None else y + bias

    def gemm(a: dict, x: Any, w: Any, c: Any = None) -> Any:
        x = x.T if a.get("transA", 0) else x
        w = w.T if a.get("transB", 0) else w
        y = a.get("alpha", 1.0) * (x @ w)
        return y if c is None else y + a.get("beta", 1.0) * c

    def softmax(a: dict, x: Any) -> Any:
        m = xp(x)
        axis = a.get("axis", -1)
        e = m.exp(x - m.max(x, axis=axis, keepdims=True))
        return e / m.sum(e, axis=axis, keepdims=True)

    def reduce(name: str) -> Callable:
        def f(a: dict, x: Any, axes: Any = None) -> Any:
            axes = a.get("axes") if axes is None else axes
            axis = None if axes is None else tuple(i % x.ndim for i in _ints(axes))
            return getattr(xp(x), name)(x, axis=axis, keepdims=bool(a.get("keepdims", 1)))
        return f

    def where(a: dict, c: Any, x: Any, y: Any) -> Any:
        return xp(c, x, y).where(c, x, y)

    def expand(a: dict, x: Any, shape: Any) -> Any:
        return xp(x).broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(shape))))

    def constant_of_shape(a: dict, shape: Any) -> Any:
        from onnx import numpy_helper

        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return np.full(tuple(_ints(shape)), value.reshape(-1)[0], value.dtype)

    def range_(a: dict, start: Any, limit: Any, delta: Any) -> Any:
        if not _host(start, limit, delta):
            raise NotImplementedError("Range over traced values")
        return np.arange(start, limit, delta, dtype=np.asarray(start).dtype)

    def flatten(a: dict, x: Any) -> Any:
        axis = a.get("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis  # axis == rank is allowed: (N, 1)
        return xp(x).reshape(x, (int(np.prod(x.shape[:axis])), -1))

    def erf(a: dict, x: Any) -> Any:
        return jsp.erf(x)

    def shape(a: dict, x: Any) -> Any:
        dims = np.asarray(x.shape, np.int64)
        return dims[a.get("start", 0):a.get("end", len(dims))]

    return {
        "Identity": lambda a, x: x, "Shape": shape, "Cast": cast, "Gather": gather,
        "Add": binary("add"), "Sub": binary("subtract"), "Mul": binary("multiply"),
        "Div": div, "Pow": binary("power"), "MatMul": binary("matmul"), "Gemm": gemm,
        "Equal": binary("equal"), "Less": binary("less"), "Greater": binary("greater"),
        "GreaterOrEqual": binary("greater_equal"), "LessOrEqual": binary("less_equal"),
        "And": binary("logical_and"), "Or": binary("logical_or"), "Not": unary("logical_not"),
        "Min": binary("minimum"), "Max": binary("maximum"),
        "Neg": unary("negative"), "Sqrt": unary("sqrt"), "Exp": unary("exp"),
        "Log": unary("log"), "Tanh": unary("tanh"), "Abs": unary("abs"), "IsNaN": unary("isnan"),
        "Relu": lambda a, x: xp(x).maximum(x, 0),
        "Sigmoid": lambda a, x: 1 / (1 + xp(x).exp(-x)), "Erf": erf,
        "Where": where, "Expand": expand, "ConstantOfShape": constant_of_shape,
        "Range": range_, "Unsqueeze": unsqueeze, "Squeeze": squeeze, "Slice": slice_,
        "Reshape": reshape, "Flatten": flatten, "Concat": lambda a, *xs: xp(*xs).concatenate(
            xs, axis=a["axis"]),
        "Transpose": lambda a, x: xp(x).transpose(x, a.get("perm")),
        "Softmax": softmax, "LayerNormalization": layernorm,
        "ReduceMean": reduce("mean"), "ReduceSum": reduce("sum"), "ReduceMax": reduce("max"),
    }


def translate(proto: Any) -> tuple[Callable, dict[str, np.ndarray], list[str]]:
    """ONNX graph -> (fn(params, inputs: dict) -> [outputs], params, input names)."""
    from onnx import numpy_helper

    ops = ops_table()
    nodes = list(proto.graph.node)
    unknown = sorted({n.op_type for n in nodes} - set(ops) - {"Constant"})
    if unknown:
        raise NotImplementedError(f"ONNX ops not covered by the JAX translator: {unknown}")
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    # float weights are the program's arguments; integer initializers are shapes, axes and
    # indices, kept on the host so what is computed from them folds
    params = {k: v for k, v in inits.items() if v.dtype.kind == "f"}
    consts = {k: v for k, v in inits.items() if v.dtype.kind != "f"}
    consts.update({n.output[0]: _constant(_attrs(n)) for n in nodes if n.op_type == "Constant"})
    names = [i.name for i in proto.graph.input if i.name not in inits]
    outs = [o.name for o in proto.graph.output]
    attrs = [(n, _attrs(n)) for n in nodes if n.op_type != "Constant"]

    def fn(p: dict[str, Any], inputs: dict[str, Any]) -> Sequence[Any]:
        # weights arrive as jax arrays (traced); Constant nodes stay numpy so the shape
        # arithmetic built on them folds while tracing
        env: dict[str, Any] = {**p, **consts, **inputs}
        for node, a in attrs:
            args = [env[i] if i else None for i in node.input]
            result = ops[node.op_type](a, *args)
            env[node.output[0]] = result
        return [env[o] for o in outs]

    return fn, params, names
