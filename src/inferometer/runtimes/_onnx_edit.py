"""Edits that make a valid ONNX file readable by a converter that expects what older exporters
wrote.  Each takes and changes an onnx ModelProto (imports onnx inside: the runtime
environments have their own onnx)."""

from __future__ import annotations

import hashlib
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


def shape_key(shapes: Shapes) -> str:
    """A cache key for a conversion made at `shapes`."""
    text = ";".join(f"{k}={'x'.join(map(str, v))}" for k, v in sorted(shapes.items()))
    return "static-" + hashlib.sha256(text.encode()).hexdigest()[:12]


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
