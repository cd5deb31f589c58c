import json
import shutil
from pathlib import Path

import pytest

from inferometer.errors import RunDirError
from inferometer.results.accuracyrun import AccuracyRun
from inferometer.results.codec import from_dict, to_dict
from inferometer.results.export import COLUMNS, to_csv
from inferometer.results.loadrun import LoadRun
from inferometer.results.schema import SCHEMA_VERSION, RunResult
from inferometer.results.store import RunDir, load_result, migrate

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = range(1, SCHEMA_VERSION + 1)


def _golden_run(tmp_path: Path, version: int = SCHEMA_VERSION, kind: str = "run") -> RunDir:
    d = tmp_path / f"{kind}-v{version}"
    d.mkdir()
    shutil.copy(GOLDEN / f"{kind}-v{version}.json", d / "results.json")
    return RunDir(d)


def test_every_schema_version_has_golden_files_of_every_kind() -> None:
    for v in VERSIONS:
        for kind in ("run", "scan", "accuracy"):
            data = json.loads((GOLDEN / f"{kind}-v{v}.json").read_text())
            assert data["schema_version"] == v, (kind, v)


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_run_loads_with_typed_fields(tmp_path: Path, version: int) -> None:
    run = _golden_run(tmp_path, version).load()
    assert run.kind == "run"
    assert run.schema_version == SCHEMA_VERSION
    assert run.status == "complete"
    cell = run.cells[0]
    assert cell.summary is not None and cell.summary.p50_ms > 0
    assert cell.integrity is not None and cell.integrity.passed
    assert isinstance(cell.spec.batch, int)
    assert all(isinstance(lib.size_mb, float) for lib in cell.libraries)
    if version < 3:  # one process a cell, migrated: its process is the cell's own figures
        (proc,) = cell.processes
        assert proc.summary == cell.summary and proc.peak_rss_mb == cell.peak_rss_mb
        assert cell.spread is None and run.settings.repeat == 1
    else:
        assert len(cell.processes) == run.settings.repeat >= 2
        assert cell.spread is not None and cell.spread >= 0
    model = run.models[0]
    if version < 4:  # one image input, migrated into the I/O description
        assert model.inputs[0].kind == "image" and len(model.inputs[0].shape) == 4
        assert cell.spec.dims == ()
    else:  # a token model swept over seq
        assert [i.name for i in model.inputs][:1] == ["input_ids"]
        assert {c.spec.dims for c in run.cells} == {(("seq", 8),), (("seq", 16),)}
        assert len(cell.integrity.outputs) == 2
    nodes = {p.node for c in run.cells for p in c.processes}
    assert nodes and nodes <= set(run.machines)
    if version < 5:  # one machine: the header's, as the one node
        assert set(run.machines) == {"local"} and run.settings.cluster is None
        assert run.machines["local"]["cpu_model"] == run.machine["cpu_model"]
    else:  # ran on a 2-node local Ray cluster: processes on both nodes
        assert run.settings.cluster == "local:2" and len(nodes) == 2 == len(run.machines)


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_scan_and_accuracy_load_through_the_one_reader(tmp_path: Path,
                                                               version: int) -> None:
    scan = load_result(_golden_run(tmp_path, version, "scan").path)
    assert isinstance(scan, LoadRun) and scan.kind == "scan"
    assert scan.schema_version == SCHEMA_VERSION
    assert scan.scan and all(isinstance(s.step.offered_qps, float) for s in scan.scan)
    acc = load_result(_golden_run(tmp_path, version, "accuracy").path)
    assert isinstance(acc, AccuracyRun) and acc.kind == "accuracy"
    assert any(r.top1 is not None and r.top1 > 50 for r in acc.rows)


def test_golden_train_run_loads(tmp_path: Path) -> None:
    from inferometer.results.trainrun import TrainRun

    run = load_result(_golden_run(tmp_path, 2, "train").path)  # kind "train" began in v2
    assert isinstance(run, TrainRun) and [r.precision for r in run.rows] == ["fp32", "amp"]
    assert all(r.total is not None and r.total.p50_ms > 0 for r in run.rows)
    assert all(len(r.report.total_ns) == run.iterations for r in run.rows if r.report)


def test_a_speed_run_reader_refuses_other_kinds_by_name(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="holds a scan run, not a speed run"):
        _golden_run(tmp_path, kind="scan").load()


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    run = _golden_run(tmp_path).load()
    again = from_dict(RunResult, json.loads(json.dumps(to_dict(run))))
    assert again == run


def test_csv_has_one_row_per_cell(tmp_path: Path) -> None:
    run = _golden_run(tmp_path).load()
    lines = to_csv(run).strip().splitlines()
    assert lines[0].split(",") == list(COLUMNS)
    assert len(lines) == 1 + len(run.cells)


def test_newer_schema_is_refused_with_advice() -> None:
    with pytest.raises(RunDirError, match="upgrade inferometer"):
        migrate({"schema_version": SCHEMA_VERSION + 1})


def test_migrations_chain_to_current(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferometer.results import store

    def v0_to_v1(d: dict) -> dict:
        return {**d, "schema_version": 1, "upgraded": True}

    monkeypatch.setitem(store.MIGRATIONS, 0, v0_to_v1)
    out = migrate({"schema_version": 0})
    assert out["upgraded"] is True and out["schema_version"] == SCHEMA_VERSION
    assert out["kind"] == "run"  # and on through v1 -> v2


def test_truncated_results_say_where(tmp_path: Path) -> None:
    rd = _golden_run(tmp_path)
    text = (rd.path / "results.json").read_text()
    (rd.path / "results.json").write_text(text[: len(text) // 2])
    with pytest.raises(RunDirError, match=r"results.json is corrupt or truncated: .* line \d+"):
        rd.load()


def test_directory_without_results_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a run directory"):
        RunDir(tmp_path).load()


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(RunDirError, match="not empty"):
        RunDir(tmp_path).create({})


def test_a_stored_tune_run_loads_shows_and_round_trips(tmp_path: Path) -> None:
    """A real tune run (ResNet-50, ONNX Runtime and OpenVINO, p99 <= 300 ms, this machine)."""
    from inferometer.report.tunetable import tune_text
    from inferometer.results.tunerun import TuneRun

    run = load_result(_golden_run(tmp_path, 4, "tune").path)  # unchanged in v5: migrated
    assert isinstance(run, TuneRun) and run.status == "done"
    assert len(run.space) == 24 and len(run.verdicts) == 24
    rec = run.recommendation
    assert rec is not None and rec.max_qps and rec.p99_ms and rec.p99_ms <= 300
    assert all(isinstance(m.seconds, float) for m in run.measurements)
    text = tune_text(run)
    assert text.startswith("tune resnet50: max QPS with p99 <= 300 ms")
    assert "recommended:" in text and "Pareto fronts" in text
    again = from_dict(TuneRun, json.loads(json.dumps(to_dict(run))))
    assert again == run
