"""Converters against files as current exporters write them: weights shared through Identity
nodes (PyTorch stores equal tensors once), which onnx2tf took for NCHW activations and MXNet
could not use as PReLU slopes; opset 14's BatchNorm attribute, which MXNet's importer
rejects; and a user's file not called model.onnx, after which onnx2tf names its .tflite
files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, cli

from inferometer import envs
from inferometer.runtimes._onnx_edit import (
    constant_divisions_as_products,
    decompose_layernorm,
    flatten_gather_indices,
    inline_constant_identities,
)


def _shared_slope_model(path: Path) -> None:
    """conv -> PReLU -> conv -> PReLU -> pool -> dense, both PReLUs fed one slope through
    Identity nodes, the way torch.onnx.export writes ArcFace's equal 0.25 slopes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32),
                                       name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Identity", ["slope"], ["slope_a"]),
        helper.make_node("PRelu", ["c1", "slope_a"], ["p1"]),
        # a BatchNorm the exporter could not fold, with opset 14's explicit training_mode
        helper.make_node("BatchNormalization", ["p1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"],
                         epsilon=1e-5, training_mode=0),
        helper.make_node("Conv", ["n1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Identity", ["slope_a"], ["slope_b"]),  # a chain resolves too
        helper.make_node("PRelu", ["c2", "slope_b"], ["p2"]),
        helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["output"], transB=1),
    ]
    slope = numpy_helper.from_array(np.full((8, 1, 1), 0.25, np.float32), "slope")
    graph = helper.make_graph(
        nodes, "shared_slopes",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        [init("w1", 8, 3, 3, 3), init("b1", 8), init("w2", 8, 8, 3, 3, scale=0.15),
         init("b2", 8), slope, init("wf", 10, 8), init("bf", 10),
         numpy_helper.from_array(1 + 0.1 * rng.standard_normal(8).astype(np.float32), "bn_s"),
         init("bn_b", 8, scale=0.1), init("bn_m", 8, scale=0.1),
         numpy_helper.from_array(np.full(8, 0.8, np.float32), "bn_v")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every runtime's onnx here
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_identity_copies_of_weights_become_weights(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    src = tmp_path / "shared.onnx"
    _shared_slope_model(src)
    m = onnx.load(str(src))
    assert inline_constant_identities(m) == 2
    onnx.checker.check_model(m)
    assert [n.op_type for n in m.graph.node].count("Identity") == 0
    assert {"slope_a", "slope_b"} <= {t.name for t in m.graph.initializer}
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    outs = [ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0] for p in (str(src), m.SerializeToString())]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert inline_constant_identities(m) == 0  # nothing left to inline


def _transformer_bits(path: Path) -> None:
    """LayerNormalization (opset 17), a Gather with 2-D indices and a division by a constant:
    what the Paddle conversion rewrites, in one small static graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "table"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "bias"),
             numpy_helper.from_array(np.array([1.4142135], np.float32), "root2")]
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
             helper.make_node("LayerNormalization", ["emb", "scale", "bias"], ["ln"],
                              axis=-1, epsilon=1e-12),
             helper.make_node("Div", ["ln", "root2"], ["half"]),
             helper.make_node("Add", ["half", "ln"], ["y"])]
    graph = helper.make_graph(
        nodes, "bits", [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_paddle_edits_keep_the_graph_s_meaning(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    src = tmp_path / "bits.onnx"
    _transformer_bits(src)
    m = onnx.load(str(src))
    assert decompose_layernorm(m) == 1
    assert flatten_gather_indices(m) == 1
    assert constant_divisions_as_products(m) == 1
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    assert "LayerNormalization" not in ops and "Div" in ops  # the normalisation's own Div
    assert all(onnx.defs.get_schema(op, 13).since_version <= 13 for op in ops)
    gathers = [n for n in m.graph.node if n.op_type == "Gather"]
    shapes = {v.name: len(v.type.tensor_type.shape.dim)
              for v in onnx.shape_inference.infer_shapes(m).graph.value_info}
    assert all(shapes[g.input[1]] == 1 for g in gathers)
    ids = np.random.default_rng(1).integers(0, 10, (2, 3))
    before, after = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(
        None, {"ids": ids})[0] for p in (str(src), m.SerializeToString()))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("runtimes", [
    pytest.param(("tensorflow", "tflite"), marks=pytest.mark.skipif(
        not envs.availability("tensorflow").available, reason="no tensorflow environment")),
    pytest.param(("mxnet",), marks=pytest.mark.skipif(
        not envs.availability("mxnet").available, reason="no mxnet environment"))])
def test_converters_take_what_current_exporters_write(runtimes: tuple[str, ...],
                                                      tmp_path: Path) -> None:
    """ArcFace's pattern (shared PReLU slopes, an unfolded opset-14 BatchNorm) in a small
    file; tflite's files are named after the model, and this one is not model.onnx."""
    model = tmp_path / "shared.onnx"
    _shared_slope_model(model)
    out = tmp_path / "run"
    r = cli("run", str(model), "--runtimes", ",".join(runtimes), "--threads", "1",
            "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stdout + r.stderr
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert tuple(c["spec"]["runtime"] for c in cells) == runtimes
    for cell in cells:
        assert cell["status"] == "ok" and cell["integrity"]["passed"], cell
