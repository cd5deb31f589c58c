from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from inferometer.errors import ModelError
from inferometer.models.onnxfile import inspect_onnx


def _model(path: Path, dims: list, elem: int = TensorProto.FLOAT, n_inputs: int = 1) -> Path:
    inputs = [helper.make_tensor_value_info(f"x{i}", elem, dims) for i in range(n_inputs)]
    out = helper.make_tensor_value_info("y", elem, dims)
    node = helper.make_node("Identity", ["x0"], ["y"])
    graph = helper.make_graph([node], "g", inputs, [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_static_model(tmp_path: Path) -> None:
    ref = inspect_onnx(_model(tmp_path / "m.onnx", [1, 3, 8, 8]))
    assert ref.input_shape == (3, 8, 8) and ref.fixed_batch == 1 and ref.input_name == "x0"
    assert ref.torch_builder is None and len(ref.sha256) == 64


def test_dynamic_dims_need_shape(tmp_path: Path) -> None:
    p = _model(tmp_path / "m.onnx", ["N", 3, "H", "W"])
    with pytest.raises(ModelError, match="--shape"):
        inspect_onnx(p)
    ref = inspect_onnx(p, (3, 16, 16))
    assert ref.input_shape == (3, 16, 16) and ref.fixed_batch is None


def test_shape_must_match_static_dims(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not match"):
        inspect_onnx(_model(tmp_path / "m.onnx", [1, 3, 8, 8]), (3, 16, 16))


@pytest.mark.parametrize(("dims", "kw", "msg"), [
    ([1, 3, 8], {}, "rank 3"),
    ([1, 1, 8, 8], {}, "not NCHW RGB"),
    ([1, 3, 8, 8], {"elem": TensorProto.INT64}, "not float32"),
    ([1, 3, 8, 8], {"n_inputs": 2}, "exactly one image input"),
])
def test_unsupported_inputs(tmp_path: Path, dims: list, kw: dict, msg: str) -> None:
    with pytest.raises(ModelError, match=msg):
        inspect_onnx(_model(tmp_path / "m.onnx", dims, **kw))


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
