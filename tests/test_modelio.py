"""The I/O description, its bindings and the input generators: pure code, no runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferometer.errors import ModelError, UsageError
from inferometer.models.inputs import check_samples, data_dims, generate, generate_all
from inferometer.models.io import Input, ModelIO, Tensor, Values, image_io
from inferometer.models.shapes import (
    check_sweep,
    dim_cells,
    parse_dims,
    parse_inputs,
    parse_value_ranges,
)

BERTISH = ModelIO(
    inputs=(Input(Tensor("input_ids", "int64", ("batch", "seq")), Values("tokens", 0, 50)),
            Input(Tensor("attention_mask", "int64", ("batch", "seq")), Values("ones")),
            Input(Tensor("token_type_ids", "int64", ("batch", "seq")), Values("zeros")),
            Input(Tensor("position_ids", "int64", ("batch", "seq")), Values("positions")),
            Input(Tensor("extra", "float32", ("batch", 3)), Values("normal")),
            Input(Tensor("flags", "bool", ("batch", 2)), Values("bool"))),
    outputs=(Tensor("h", "float32", ("batch", "seq", 8)),), batch_dim="batch",
    defaults=(("seq", 16),))


def test_generators_are_safe_and_item_deterministic() -> None:
    shapes = BERTISH.bind(4, {"seq": 6})
    feed = generate_all(BERTISH, shapes)
    ids = feed["input_ids"]
    assert ids.shape == (4, 6) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < 50 and len(np.unique(ids)) > 5
    assert (feed["attention_mask"] == 1).all() and (feed["token_type_ids"] == 0).all()
    assert (feed["position_ids"] == np.arange(6)).all()
    assert feed["extra"].dtype == np.float32 and abs(float(feed["extra"].std()) - 1) < 0.8
    assert feed["flags"].dtype == np.bool_
    # item i depends on i alone: the first two items are the same at batch 2 and batch 4
    two = generate_all(BERTISH, BERTISH.bind(2, {"seq": 6}))
    for k in feed:
        np.testing.assert_array_equal(two[k], feed[k][:2])
    other = generate_all(BERTISH, shapes, seed=7)
    assert not np.array_equal(other["input_ids"], ids)


def test_image_inputs_arrive_as_uint8_nhwc() -> None:
    io = image_io("input", (3, 5, 7))
    img = generate(io.inputs[0], io.bind(2, {})["input"])
    assert img.shape == (2, 5, 7, 3) and img.dtype == np.uint8


def test_unknown_range_is_an_error_not_a_guess() -> None:
    inp = Input(Tensor("idx", "int64", (1, 3)), Values("range"))
    with pytest.raises(ModelError, match="--value-range idx:LOW,HIGH"):
        generate(inp, (1, 3))


def test_defaults_bind_and_dims_sweep() -> None:
    assert BERTISH.bind(1, {})["input_ids"] == (1, 16)  # the model's default seq
    assert BERTISH.dims() == ("seq",)
    assert dim_cells(BERTISH, {"seq": (128, 384)}) == [(("seq", 128),), (("seq", 384),)]
    assert dim_cells(BERTISH, {}) == [()]
    with pytest.raises(UsageError, match="no model has a dim 'len'; valid: batch, seq"):
        check_sweep([_ref(BERTISH)], {"len": (1,)})


def _ref(io: ModelIO):  # type: ignore[no-untyped-def]
    from inferometer.models.ref import ModelRef

    return ModelRef("m", "m.onnx", io, (0, 0, 0), (1, 1, 1), "0" * 64)


def test_flag_parsing() -> None:
    assert parse_dims(["seq=128,384,128", "batch=1"]) == {"seq": (128, 384), "batch": (1,)}
    assert parse_value_ranges(["ids:0,1000"]) == {"ids": (0.0, 1000.0)}
    assert parse_inputs(["a.npz", "ids=x.npy,mask=m.npy"]) == (
        ("", "a.npz"), ("ids", "x.npy"), ("mask", "m.npy"))
    for bad in (["seq"], ["seq=0"], ["=4"], ["seq=4", "seq=5"]):
        with pytest.raises(UsageError, match="--dim"):
            parse_dims(bad)
    with pytest.raises(UsageError, match="LOW < HIGH"):
        parse_value_ranges(["ids:5,1"])


def test_samples_checked_against_the_cell() -> None:
    io = ModelIO((Input(Tensor("ids", "int64", ("batch", "seq")), Values("tokens", 0, 9)),),
                 (), batch_dim="batch")
    shapes = io.bind(1, {"seq": 4})
    one = check_samples(io, {"ids": np.zeros((1, 4), np.int64)}, shapes, "f.npz")
    assert len(one) == 1
    many = check_samples(io, {"ids": np.zeros((5, 1, 4), np.int64)}, shapes, "f.npz")
    assert len(many) == 5 and many[3]["ids"].shape == (1, 4)
    with pytest.raises(ModelError, match=r"no array for input.*ids"):
        check_samples(io, {"other": np.zeros(1)}, shapes, "f.npz")
    with pytest.raises(ModelError, match="is int32, the model wants int64"):
        check_samples(io, {"ids": np.zeros((1, 4), np.int32)}, shapes, "f.npz")
    with pytest.raises(ModelError, match=r"has shape \[1, 5\]"):
        check_samples(io, {"ids": np.zeros((1, 5), np.int64)}, shapes, "f.npz")


def test_data_fixes_the_dims(tmp_path: Path) -> None:
    io = ModelIO((Input(Tensor("ids", "int64", ("batch", "seq")), Values("tokens", 0, 9)),
                  Input(Tensor("mask", "int64", ("batch", "seq")), Values("ones"))),
                 (), batch_dim="batch")
    path = tmp_path / "d.npz"
    np.savez(path, ids=np.zeros((3, 2, 7), np.int64), mask=np.ones((3, 2, 7), np.int64))
    assert data_dims(io, (("", str(path)),)) == {"batch": 2, "seq": 7}
    np.savez(path, ids=np.zeros((2, 7), np.int64), mask=np.ones((2, 6), np.int64))
    with pytest.raises(ModelError, match="dim 'seq' is 7 in one array and 6"):
        data_dims(io, (("", str(path)),))


def test_integrity_checks_every_output_and_names_the_one_that_failed() -> None:
    from inferometer.integrity import compare_outputs

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 10)), rng.standard_normal((8, 3, 4))
    ok = compare_outputs([a, b], [a, b], "fp32", "ref", ["logits", "boxes"],
                         ["classes", "tensor"])
    assert ok.passed and [c.name for c in ok.outputs] == ["logits", "boxes"]
    assert ok.outputs[0].top1_agreement == 1.0 and ok.outputs[1].top1_agreement is None
    broken = b.copy()
    broken[0, 0, 0] += 1.0
    bad = compare_outputs([a, broken], [a, b], "fp32", "ref", ["logits", "boxes"],
                          ["classes", "tensor"])
    assert not bad.passed and bad.output == "boxes" and bad.outputs[0].passed
    # class logits over a sequence: top-1 per position (the last axis)
    seq = rng.standard_normal((2, 5, 7))
    moved = seq.copy()
    moved[0, 0] = -moved[0, 0]
    one = compare_outputs([moved], [seq], "int8", "ref", ["logits"], ["classes"])
    assert one.top1_agreement == pytest.approx(0.9)


def test_int8_means_dynamic_for_models_without_an_image_and_torch_calibrates_per_cell() -> None:
    from inferometer.runtimes._onnxruntime import _flavour
    from inferometer.runtimes._torch import _cell_dims
    from inferometer.runtimes.base import LoadOptions

    image, tokens = _ref(image_io("input", (3, 8, 8))), _ref(BERTISH)
    assert _flavour(image, "int8") == "cpu" and _flavour(tokens, "int8") == "dynamic"
    assert _flavour(image, "int8_dynamic") == "dynamic"
    assert _flavour(image, "tensorrt_int8") == _flavour(tokens, "tensorrt_int8") == "tensorrt"
    shapes = tuple(BERTISH.bind(2, {"seq": 384}).items())
    assert _cell_dims(tokens, LoadOptions("int8", 1, 2, shapes=shapes)) == {"seq": 384}


def test_one_rule_says_which_outputs_are_class_logits() -> None:
    """Every file reader asks output_kind: top-1 is checked on [batch, classes] floats that
    are the only output or are named for logits, never on a single score column (where it is
    100% whatever the runtime computes) nor on integers."""
    from inferometer.models.io import Tensor, output_kind

    assert output_kind(Tensor("out", "float32", ("batch", 10)), 1) == "classes"
    assert output_kind(Tensor("prob", "float32", ("batch", 1)), 1) == "tensor"
    assert output_kind(Tensor("ids", "int64", ("batch", 10)), 1) == "tensor"
    assert output_kind(Tensor("h", "float32", ("batch", "seq", 8)), 1) == "tensor"
    assert output_kind(Tensor("logits", "float32", ("batch", 4)), 2) == "classes"
    assert output_kind(Tensor("boxes", "float32", ("batch", 4)), 2) == "tensor"
    assert output_kind(Tensor("out", "bfloat16", ("batch", "classes")), 1) == "classes"
