from pathlib import Path

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


def test_repeat_auto_gives_cheap_cells_more_processes_within_the_budget() -> None:
    from inferometer.plan import AUTO_BUDGET_S, AUTO_FIRST, AUTO_MAX, parse_repeat
    from inferometer.results.schema import processes_wanted

    assert parse_repeat("auto") == parse_repeat(None) == (AUTO_FIRST, AUTO_MAX) == (2, 5)
    assert parse_repeat("4") == (4, 4)
    auto = _settings(repeat=2, repeat_max=5, cell_budget_s=20.0)
    assert AUTO_BUDGET_S == 12.0
    assert processes_wanted(auto, [2.0, 2.5]) == 5  # 5 x 2.5 s fit 20 s
    assert processes_wanted(auto, [4.5, 4.5]) == 4  # 4 x 4.5 s do, 5 do not
    assert processes_wanted(auto, [9.0, 6.0]) == 3
    assert processes_wanted(auto, [60.0, 25.0]) == 2  # TVM: never fewer than the first 2
    # the first also ran the integrity pass (30 s of TVM): the later ones say what one costs
    assert processes_wanted(auto, [34.0, 3.0]) == 5
    assert processes_wanted(auto, [1.0]) == 2  # undecided until the first 2 ran
    # the decision rests on the first 2 alone, so it stays put as the extra ones finish
    assert processes_wanted(auto, [4.5, 4.5, 30.0, 30.0]) == 4
    # runs made with three first processes decide on the two after the first
    old_auto = _settings(repeat=3, repeat_max=5, cell_budget_s=20.0)
    assert processes_wanted(old_auto, [30.0, 2.0, 2.5]) == 5
    assert processes_wanted(old_auto, [7.0, 8.0, 9.0]) == 3  # never fewer than repeat
    fixed = _settings(repeat=3)
    assert processes_wanted(fixed, [0.1, 0.1, 0.1]) == 3  # --repeat N: exactly N
    assert processes_wanted(_settings(repeat=3, repeat_max=0), [0.1] * 3) == 3  # old runs


def test_each_process_stops_at_the_cell_target_times_sqrt_of_the_processes_pooled() -> None:
    from inferometer.plan import parse_repeat, process_target

    assert process_target(1, 1) == 0.01  # one process: the cell's own target
    assert process_target(2, 2) == 0.0141
    assert process_target(*parse_repeat("auto")) == process_target(3, 3) == 0.0173
    assert process_target(10, 10) == 0.0173  # counted up to 3


@pytest.mark.parametrize(("argv", "length"), [
    ([], (2, 1.0, 0.0173)),  # the defaults: a capped warm-up, the pooled target
    (["--repeat", "1"], (2, 1.0, 0.01)),
    (["--warmup", "3", "--target-ci", "0.5"], (3, 0.0, 0.005)),  # given: as given, whole
])
def test_run_length_from_the_command_line(argv: list[str], length: tuple) -> None:
    from inferometer.commands.options import parser
    from inferometer.commands.run import _length
    from inferometer.plan import parse_repeat

    args = parser().parse_args(["run", "tinynet", *argv])
    got = _length(args, *parse_repeat(args.repeat))
    assert (got.warmup, got.warmup_max_s, got.target_rel_ci) == length


def test_the_extra_processes_are_scheduled_as_the_first_ones() -> None:
    from inferometer.results.schema import CellSpec
    from inferometer.runner import schedule

    a, b, c = (CellSpec("m", r, "v", 1, 1) for r in "xyz")
    ids = lambda jobs: [(c.runtime, k) for c, k in jobs]  # noqa: E731
    wanted = {a.id: 5, b.id: 4}  # c's processes were too slow for more
    assert ids(schedule([a, b], 3, "interleaved", first=3, wanted=wanted)) == [
        ("x", 3), ("y", 3), ("x", 4)]
    assert ids(schedule([a, b, c], 3, "interleaved", first=3,
                        wanted={**wanted, c.id: 3})) == [("x", 3), ("y", 3), ("x", 4)]
    assert ids(schedule([a, b], 3, "sequential", first=3, wanted=wanted)) == [
        ("x", 3), ("x", 4), ("y", 3)]
    shuffled = ids(schedule([a, b], 3, "random", seed="s", first=3, wanted=wanted))
    assert sorted(shuffled) == [("x", 3), ("x", 4), ("y", 3)]
    assert [k for r, k in shuffled if r == "x"] == [3, 4]  # numbered in time, from 3


def _settings(**kw: object):  # type: ignore[no-untyped-def]
    from inferometer.results.schema import RunSettings

    base = dict(preprocess_timed=True, pin=False, timeout_s=60.0, reference_runtime="x",
                warmup=1, min_time_s=0.1, min_count=4, max_time_s=1.0, target_rel_ci=0.01,
                noisy_threshold=0.2)
    return RunSettings(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("cap_s", "calls"), [(0.0, 4), (0.25, 2), (10.0, 4)])
def test_warm_up_ends_once_it_has_run_its_time(cap_s: float, calls: int, fakes: None, tiny,  # type: ignore[no-untyped-def]
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A call of seconds is warm after one: TVM's untuned 3.7 s a call paid two more in every
    process.  The warm-up stops once it has lasted warmup_max_s (0: runs all `warmup`)."""
    from inferometer._worker import run_job
    from inferometer.jobs import Job
    from inferometer.results.schema import CellSpec
    from inferometer.scenarios import RunLength

    monkeypatch.setenv("ECHO_SLEEP_MS", "150")  # each call 0.15 s
    length = RunLength(warmup=4, warmup_max_s=cap_s, min_time_s=0.0, min_count=1,
                       max_time_s=0.0)
    job = Job(spec=CellSpec("tinynet", "echo", "default", 1, 1), model=tiny, length=length,
              preprocess_timed=True, pin=False, report_path=str(tmp_path / "r.json"),
              outputs_path=None)
    report = run_job(job)
    assert report.status == "ok", report.error
    assert len(report.warmup_ns) == calls  # 0.15 s then 0.30 s >= 0.25 s: two
    assert all(ns >= 0.14e9 for ns in report.warmup_ns)
