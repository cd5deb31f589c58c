from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from onnx_models import VOCAB, block_model, two_input_model

from inferometer.errors import ModelError
from inferometer.models.onnxfile import inspect_onnx
from inferometer.models.shapes import apply_shapes, apply_value_ranges, check_generable


def _model(path: Path, dims: list, elem: int = TensorProto.FLOAT, n_inputs: int = 1) -> Path:
    inputs = [helper.make_tensor_value_info(f"x{i}", elem, dims) for i in range(n_inputs)]
    out = helper.make_tensor_value_info("y", elem, dims)
    node = helper.make_node("Identity", ["x0"], ["y"])
    graph = helper.make_graph([node], "g", inputs, [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_static_image_model(tmp_path: Path) -> None:
    ref = inspect_onnx(_model(tmp_path / "m.onnx", [1, 3, 8, 8]))
    assert ref.input_shape == (3, 8, 8) and ref.fixed_batch == 1 and ref.input_name == "x0"
    assert ref.io.image is not None and ref.io.batch_dim is None
    assert ref.torch_builder is None and len(ref.sha256) == 64


def test_unbound_dims_are_named_with_the_flag(tmp_path: Path) -> None:
    ref = inspect_onnx(_model(tmp_path / "m.onnx", ["N", 3, "H", "W"]))
    assert ref.io.batch_dim == "N" and ref.io.dims() == ("H", "W")
    with pytest.raises(ModelError, match="dim 'H' unbound; bind it with --dim H=N"):
        ref.io.bind(1, {})
    assert ref.io.bind(2, {"H": 16, "W": 8}) == {"x0": (2, 3, 16, 8)}
    fixed = apply_shapes(ref, [(None, (3, 16, 16))])  # one item's shape: batch stays free
    assert fixed.input_shape == (3, 16, 16) and fixed.fixed_batch is None
    assert fixed.io.bind(4, {}) == {"x0": (4, 3, 16, 16)}


def test_shape_must_match_static_dims(tmp_path: Path) -> None:
    ref = inspect_onnx(_model(tmp_path / "m.onnx", [1, 3, 8, 8]))
    with pytest.raises(ModelError, match="does not match"):
        apply_shapes(ref, [(None, (3, 16, 16))])
    with pytest.raises(ModelError, match="no input 'nope'; its inputs: x0"):
        apply_shapes(ref, [("nope", (1, 3, 8, 8))])


def test_multi_input_model_described(tmp_path: Path) -> None:
    ref = inspect_onnx(two_input_model(tmp_path / "two.onnx"))
    io = ref.io
    assert [i.name for i in io.inputs] == ["x", "ids"] and io.batch_dim == "batch"
    assert io.dims() == ("seq",)
    ids = io.input("ids").values
    assert (ids.kind, ids.low, ids.high) == ("tokens", 0, VOCAB)  # from the Gather's table
    assert io.input("x").values.kind == "normal"
    assert [(o.name, o.kind) for o in io.outputs] == [("logits", "classes"),
                                                      ("embedded", "tensor")]
    # --shape on one input binds the dims it shares with the others
    fixed = apply_shapes(ref, [("ids", (2, 7))])
    assert fixed.io.bind(2, {}) == {"x": (2, 8), "ids": (2, 7)} and fixed.fixed_batch == 2


def test_rank3_block_needs_only_seq(tmp_path: Path) -> None:
    ref = inspect_onnx(block_model(tmp_path / "block.onnx"))
    assert ref.io.dims() == ("seq",) and ref.io.input("h").values.kind == "normal"
    assert ref.io.bind(1, {"seq": 5}) == {"h": (1, 5, 16)}


def test_integer_input_of_unknown_range_refused(tmp_path: Path) -> None:
    ref = inspect_onnx(_model(tmp_path / "m.onnx", ["batch", 4], elem=TensorProto.INT64))
    with pytest.raises(ModelError, match="--value-range x0:LOW,HIGH"):
        check_generable(ref)
    ranged = apply_value_ranges(ref, {"x0": (0, 10)})
    check_generable(ranged)
    assert ranged.io.input("x0").values.high == 10
    with pytest.raises(ModelError, match="not a range of whole int64"):
        apply_value_ranges(ref, {"x0": (0.5, 10)})


def test_string_inputs_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="string tensor"):
        inspect_onnx(_model(tmp_path / "m.onnx", [1, 4], elem=TensorProto.STRING))


def test_garbage_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        inspect_onnx(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffthis is not protobuf" * 10)
    with pytest.raises(ModelError, match="not an ONNX model"):
        inspect_onnx(junk)
    bad = tmp_path / "bad.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [x], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), bad)
    with pytest.raises(ModelError, match="malformed ONNX model"):
        inspect_onnx(bad)
