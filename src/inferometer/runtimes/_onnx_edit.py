"""Edits that make a valid ONNX file readable by a converter that expects what older exporters
wrote.  Each takes and changes an onnx ModelProto (imports onnx inside: the runtime
environments have their own onnx)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Shapes = Mapping[str, Sequence[int]]


def inline_constant_identities(m: Any) -> int:
    """Replace, in the onnx ModelProto `m`, each Identity that only copies an initializer by an
    initializer of its own; return how many there were.

    PyTorch's exporter stores equal weights once and feeds the other users through Identity
    nodes (ArcFace's PReLU slopes all start at 0.25).  Converters look for constants: onnx2tf
    lays constant slopes out for NHWC but takes an Identity's output for an activation and
    keeps its NCHW shape ("Dimensions must be equal, but are 112 and 64"), and MXNet's PReLU
    slope must be a weight it can reshape."""
    import onnx

    inits = {t.name: t for t in m.graph.initializer}
    kept, count = [], 0
    for node in m.graph.node:  # nodes are in topological order: chains resolve in one pass
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            m.graph.initializer.append(t)
            inits[t.name] = t
            count += 1
        else:
            kept.append(node)
    if count:
        del m.graph.node[:]
        m.graph.node.extend(kept)
    return count


def fix_input_shapes(m: Any, shapes: Shapes) -> None:
    """Give the graph inputs of the onnx ModelProto `m` the concrete `shapes` and drop every
    inferred intermediate shape, so a simplifier can fold what depends on them (a
    transformer's position ids, its attention reshapes) into constants.  Converters that
    trace a graph once (onnx2tf) misplace axes of dynamic, rank-3 tensors; static ones they
    convert exactly."""
    for graph_input in m.graph.input:
        if graph_input.name not in shapes:
            continue  # an initializer listed as an input (old exporters)
        dims = graph_input.type.tensor_type.shape.dim
        for d, n in zip(dims, shapes[graph_input.name], strict=True):
            d.Clear()
            d.dim_value = int(n)
    for out in m.graph.output:
        for d in out.type.tensor_type.shape.dim:
            if not d.dim_value:
                d.Clear()
    del m.graph.value_info[:]


def static_graph(onnx_path: str, shapes: Shapes) -> Any:
    """The ONNX file with its inputs fixed to `shapes`, simplified by onnxsim so the shape
    arithmetic becomes constants (onnxsim 0.4.36: 0.8.1's output leaves Shape ops on shapes,
    which TVM's frontend refuses)."""
    import onnx
    import onnxsim

    graph = onnx.load(onnx_path)
    fix_input_shapes(graph, shapes)
    inline_constant_identities(graph)
    simplified, ok = onnxsim.simplify(graph)
    return simplified if ok else graph


def decompose_layernorm(m: Any) -> int:
    """Replace each LayerNormalization (opset 17) of the onnx ModelProto `m` that only yields
    its normalised output by the opset-13 ops it stands for (ReduceMean, Sub, Mul, Add, Sqrt,
    Div), for converters that read an older opset; return how many there were.  The axes are
    the trailing ones from `axis`, which must be negative (as exporters write it)."""
    import numpy as np
    from onnx import helper, numpy_helper

    kept, count = [], 0
    for node in m.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axis = attrs.get("axis", -1)
        if (node.op_type != "LayerNormalization" or any(node.output[1:]) or axis >= 0
                or node.domain not in ("", "ai.onnx")):
            kept.append(node)
            continue
        p = f"{node.output[0]}/ln{count}_"
        count += 1
        axes = list(range(axis, 0))
        m.graph.initializer.append(numpy_helper.from_array(
            np.array(attrs.get("epsilon", 1e-5), np.float32), p + "eps"))
        scaled = p + "scaled" if len(node.input) > 2 and node.input[2] else node.output[0]
        kept += [helper.make_node("ReduceMean", [node.input[0]], [p + "mean"], axes=axes),
                 helper.make_node("Sub", [node.input[0], p + "mean"], [p + "d"]),
                 helper.make_node("Mul", [p + "d", p + "d"], [p + "sq"]),
                 helper.make_node("ReduceMean", [p + "sq"], [p + "var"], axes=axes),
                 helper.make_node("Add", [p + "var", p + "eps"], [p + "ve"]),
                 helper.make_node("Sqrt", [p + "ve"], [p + "std"]),
                 helper.make_node("Div", [p + "d", p + "std"], [p + "n"]),
                 helper.make_node("Mul", [p + "n", node.input[1]], [scaled])]
        if scaled != node.output[0]:
            kept.append(helper.make_node("Add", [scaled, node.input[2]], [node.output[0]]))
    if count:
        del m.graph.node[:]
        m.graph.node.extend(kept)
    return count


def flatten_gather_indices(m: Any) -> int:
    """Rewrite each Gather of the static-shaped onnx ModelProto `m` whose indices have rank 2
    or more as Reshape(indices, [-1]) -> Gather -> Reshape to the output's shape, for converters
    whose gather takes 1-D indices only (x2paddle's paddle.gather); return how many."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(m).graph
    shapes = {t.name: list(t.dims) for t in m.graph.initializer}
    for v in [*inferred.value_info, *inferred.input, *inferred.output]:
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = [d.dim_value for d in dims]
    kept, count = [], 0
    for node in m.graph.node:
        data = shapes.get(node.input[0]) if node.op_type == "Gather" else None
        index = shapes.get(node.input[1]) if node.op_type == "Gather" else None
        if data is None or index is None or len(index) < 2:
            kept.append(node)
            continue
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"),
                    0) % len(data)
        p = f"{node.output[0]}/flat{count}_"
        count += 1
        m.graph.initializer.extend([
            numpy_helper.from_array(np.array([-1], np.int64), p + "flat"),
            numpy_helper.from_array(np.array(data[:axis] + index + data[axis + 1:], np.int64),
                                    p + "shape")])
        kept += [helper.make_node("Reshape", [node.input[1], p + "flat"], [p + "index"]),
                 helper.make_node("Gather", [node.input[0], p + "index"], [p + "out"],
                                  axis=axis),
                 helper.make_node("Reshape", [p + "out", p + "shape"], [node.output[0]])]
    if count:
        del m.graph.node[:]
        m.graph.node.extend(kept)
    return count


def constant_divisions_as_products(m: Any) -> int:
    """Turn each Div of the onnx ModelProto `m` by a float initializer into a Mul by its
    reciprocal (within an ulp); return how many.  Paddle's oneDNN divide by a broadcast
    constant writes over its input while another op still reads it: a GELU's x / sqrt(2)
    replaced x itself, measured on tinybert (max|d| 0.0097, the Mul form exact to 5e-7)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in m.graph.initializer}
    count = 0
    for node in m.graph.node:
        if node.op_type != "Div" or node.input[1] not in inits:
            continue
        value = numpy_helper.to_array(inits[node.input[1]])
        if value.dtype.kind != "f" or not value.all():
            continue
        recip = numpy_helper.from_array((1 / value).astype(value.dtype),
                                        f"{node.output[0]}/reciprocal")
        m.graph.initializer.append(recip)
        node.op_type = "Mul"
        node.input[1] = recip.name
        count += 1
    return count
