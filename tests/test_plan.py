import pytest

from inferometer.errors import ModelError, RuntimeUnavailable, UsageError
from inferometer.models.shapes import parse_shapes
from inferometer.plan import (
    expand,
    parse_batches,
    parse_threads,
    select_runtimes,
    usable_cpus,
)


def test_threads_default_is_one_to_ncpu_and_auto() -> None:
    assert parse_threads(None) == (*range(1, usable_cpus() + 1), None)
    assert parse_threads("1,2,auto,2") == (1, 2, None)


@pytest.mark.parametrize("text", ["0", "-1", "abc", "100000", ""])
def test_bad_threads(text: str) -> None:
    with pytest.raises(UsageError, match="--threads"):
        parse_threads(text)


@pytest.mark.parametrize("text", ["0", "x", "5000", ""])
def test_bad_batches(text: str) -> None:
    with pytest.raises(UsageError, match="--batch"):
        parse_batches(text)


def test_shapes() -> None:
    assert parse_shapes("3x224x224") == [(None, (3, 224, 224))]
    assert parse_shapes("input_ids:1x128,mask:1x128") == [("input_ids", (1, 128)),
                                                          ("mask", (1, 128))]
    assert parse_shapes("input_ids[1,128],mask[1, 64]") == [("input_ids", (1, 128)),
                                                            ("mask", (1, 64))]
    for bad in ("3x0x4", "axbxc", "a:1x2,3x4", "a[1,2]junk", "a:"):
        with pytest.raises(UsageError, match="--shape"):
            parse_shapes(bad)


def test_unknown_runtime_lists_valid_names() -> None:
    with pytest.raises(UsageError, match="unknown runtime 'nope'; valid: onnxruntime"):
        select_runtimes("nope", None)


def test_variant_selection() -> None:
    got = select_runtimes("onnxruntime,null", "basic")
    assert [(c.name, c.variants) for c in got] == [("onnxruntime", ("basic",)),
                                                   ("null", ("default",))]
    pinned = select_runtimes("onnxruntime:disabled,onnxruntime:default", None)
    assert pinned[0].variants == ("disabled", "default")


def test_unknown_variant_lists_valid_ones() -> None:
    with pytest.raises(UsageError, match="unknown variant 'warp'; valid: onnxruntime: default"):
        select_runtimes("onnxruntime", "warp")
    with pytest.raises(UsageError, match="has no variant 'bf16'"):
        select_runtimes("onnxruntime:bf16", None)


def test_missing_runtime_prints_install_command(fakes: None) -> None:
    with pytest.raises(RuntimeUnavailable, match="install it with: pip install missing-rt"):
        select_runtimes("missing", None)
    # ...but it is silently left out of the default "everything installed" selection.
    assert "missing" not in [c.name for c in select_runtimes(None, None)]


def test_expand_makes_the_full_matrix_and_skips_what_cannot_run(tiny) -> None:  # type: ignore[no-untyped-def]
    choices = select_runtimes("onnxruntime,null", None)
    cells, notes = expand([tiny], choices, (1, None), (1, 4))
    assert len(cells) == 2 * 2 * 2
    assert len({c.id for c in cells}) == len(cells)
    onnx_only = tiny.__class__(**{**tiny.__dict__, "torch_builder": None})
    from inferometer import runtimes
    from inferometer.plan import RuntimeChoice
    cells, notes = expand([onnx_only],
                          [RuntimeChoice("torch", ("eager",), runtimes.get("torch")),
                           RuntimeChoice("null", ("default",), runtimes.get("null"))], (1,), (1,))
    assert [c.runtime for c in cells] == ["null"]
    assert "an .onnx file carries no PyTorch module" in notes[0]


def test_fixed_batch_models_reject_other_batches(tiny) -> None:  # type: ignore[no-untyped-def]
    from inferometer.models.io import image_io

    fixed = tiny.__class__(**{**tiny.__dict__, "io": image_io("input", (3, 32, 32), batch=1)})
    with pytest.raises(ModelError, match="fixed batch of 1; --batch 4"):
        expand([fixed], select_runtimes("null", None), (1,), (1, 4))


def test_precisions_map_to_each_runtimes_variants() -> None:
    got = {c.name: c.variants for c in select_runtimes("onnxruntime,openvino", None, "fp32,int8")}
    assert got == {"onnxruntime": ("default", "int8"), "openvino": ("latency", "int8")}
    got = {c.name: c.variants for c in select_runtimes("onnxruntime,null", None, "int8")}
    assert got == {"onnxruntime": ("int8",)}  # null has no int8 variant: left out
    got = {c.name: c.variants for c in select_runtimes("onnxruntime,openvino", None, "bf16")}
    assert got == {"openvino": ("bf16",)}  # onnxruntime has no bf16 variant: left out
    with pytest.raises(UsageError, match="unknown 'fp8'"):
        select_runtimes("onnxruntime", None, "fp8")


def test_processes_are_scheduled_interleaved_sequential_or_random() -> None:
    from inferometer.results.schema import CellSpec
    from inferometer.runner import schedule

    a, b = CellSpec("m", "x", "v", 1, 1), CellSpec("m", "y", "v", 1, 1)
    ids = lambda jobs: [(c.runtime, k) for c, k in jobs]  # noqa: E731
    assert ids(schedule([a, b], 3, "interleaved")) == [
        ("x", 0), ("y", 0), ("x", 1), ("y", 1), ("x", 2), ("y", 2)]
    assert ids(schedule([a, b], 2, "sequential")) == [("x", 0), ("x", 1), ("y", 0), ("y", 1)]
    shuffled = ids(schedule([a, b], 4, "random", seed="2026-01-01"))
    assert shuffled == ids(schedule([a, b], 4, "random", seed="2026-01-01"))  # resumable
    assert sorted(shuffled) == sorted(ids(schedule([a, b], 4, "sequential")))
    for rt in ("x", "y"):  # each cell's processes keep their numbering in time
        assert [k for r, k in shuffled if r == rt] == [0, 1, 2, 3]
