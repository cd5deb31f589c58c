"""Small ONNX files of the shapes users bring, built with onnx.helper: a two-input,
two-output model with a dynamic batch and an embedding lookup, and a rank-3 transformer block
(self-attention + MLP) with symbolic batch and sequence dims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 100


def _save(nodes: list, name: str, inputs: list, outputs: list, inits: list, path: Path) -> Path:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def two_input_model(path: Path) -> Path:
    """x float [batch, 8] and ids int64 [batch, seq] (indexing a 100-row embedding table) ->
    logits [batch, 4] and the embedded tokens [batch, seq, 8]."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((VOCAB, 8)).astype(np.float32), "emb"),
             numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w")]
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["embedded"]),
             helper.make_node("ReduceMean", ["embedded"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("Add", ["pooled", "x"], ["summed"]),
             helper.make_node("MatMul", ["summed", "w"], ["logits"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
              helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4]),
               helper.make_tensor_value_info("embedded", TensorProto.FLOAT,
                                             ["batch", "seq", 8])]
    return _save(nodes, "two_inputs", inputs, outputs, inits, path)


def block_model(path: Path, width: int = 16) -> Path:
    """One transformer block on hidden states [batch, seq, width]: single-head attention
    (softmax(QK^T/sqrt(d)) V) plus a residual, then a ReLU MLP plus a residual."""
    rng = np.random.default_rng(1)

    def w(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(shape[0]))
                                       .astype(np.float32), name)

    inits = [w("wq", width, width), w("wk", width, width), w("wv", width, width),
             w("w1", width, 2 * width), w("w2", 2 * width, width),
             numpy_helper.from_array(np.array(1 / np.sqrt(width), np.float32), "scale")]
    nodes = [helper.make_node("MatMul", ["h", "wq"], ["q"]),
             helper.make_node("MatMul", ["h", "wk"], ["k"]),
             helper.make_node("MatMul", ["h", "wv"], ["v"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["scores"]),
             helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
             helper.make_node("Softmax", ["scaled"], ["attn"], axis=-1),
             helper.make_node("MatMul", ["attn", "v"], ["ctx"]),
             helper.make_node("Add", ["ctx", "h"], ["r1"]),
             helper.make_node("MatMul", ["r1", "w1"], ["u"]),
             helper.make_node("Relu", ["u"], ["a"]),
             helper.make_node("MatMul", ["a", "w2"], ["d"]),
             helper.make_node("Add", ["d", "r1"], ["out"])]
    inputs = [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", "seq", width])]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                             ["batch", "seq", width])]
    return _save(nodes, "block", inputs, outputs, inits, path)
