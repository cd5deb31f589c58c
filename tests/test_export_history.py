"""export (csv, json, parquet for every kind of run) and history across stored runs."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import cli
from synthetic import Cell, noisy, processes, write_run

from inferometer.results.schema import SCHEMA_VERSION

GOLDEN = Path(__file__).parent / "golden"


def _golden(tmp_path: Path, kind: str) -> Path:
    d = tmp_path / kind
    d.mkdir()
    shutil.copy(GOLDEN / f"{kind}-v1.json", d / "results.json")  # an old one: migrated first
    return d


@pytest.mark.parametrize(("kind", "column"), [
    ("run", "p50_ms"), ("scan", "achieved_qps"), ("accuracy", "top1")])
def test_export_every_kind_in_every_format(tmp_path: Path, kind: str, column: str) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    d = _golden(tmp_path, kind)
    stored = json.loads((GOLDEN / f"{kind}-v1.json").read_text())
    expected = len(stored.get("cells") or stored.get("scan") or stored.get("rows"))
    for fmt in ("csv", "json", "parquet"):
        r = cli("export", str(d), "--format", fmt)
        assert r.returncode == 0, r.stderr
        out = d / f"export.{fmt}"
        assert r.stdout.strip() == f"wrote {out}"
        if fmt == "csv":
            table = list(csv.DictReader(io.StringIO(out.read_text())))
            assert len(table) == expected and column in table[0]
        elif fmt == "json":
            data = json.loads(out.read_text())
            assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == kind
        else:
            table = pq.read_table(out)
            assert table.num_rows == expected and column in table.column_names


def test_export_to_a_named_file_and_bad_format(tmp_path: Path) -> None:
    d = _golden(tmp_path, "run")
    r = cli("export", str(d), "--format", "csv", "--output", str(tmp_path / "x.csv"))
    assert r.returncode == 0 and (tmp_path / "x.csv").read_text().startswith("model,runtime")
    r = cli("export", str(d), "--format", "xml")
    assert r.returncode == 2 and "invalid choice: 'xml'" in r.stderr


def test_history_orders_runs_and_shows_the_trend(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, (day, median) in enumerate((("03", 12e6), ("01", 10e6), ("02", 11e6))):
        write_run(runs / f"r{i}", [Cell("onnxruntime", "default", 1, 1, noisy(median, seed=i),
                                        model="resnet50"),
                                   Cell("openvino", "latency", 1, 1, noisy(median, seed=i),
                                        model="resnet50")],
                  created=f"2026-01-{day}T00:00:00+00:00", version=f"1.{day}")
    (runs / "broken").mkdir()
    (runs / "broken" / "results.json").write_text("{")  # skipped, not fatal
    r = cli("history", "--model", "resnet50", "--runtime", "onnxruntime", "--runs", str(runs))
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("2026-")]
    assert [ln.split()[0][:10] for ln in rows] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all("onnxruntime/default" in ln and "openvino" not in ln for ln in rows)
    # vs first: +10% then +20% (medians 10, 11, 12 ms, within the samples' jitter)
    firsts = [ln.split()[8] for ln in rows]  # after the 4-word configuration
    assert firsts[0] == "-"
    assert 5 < float(firsts[1].rstrip("%")) < 15 and 15 < float(firsts[2].rstrip("%")) < 25
    r = cli("history", "--model", "resnet50", "--runs", str(runs), "--plot",
            str(tmp_path / "trend.svg"))
    assert r.returncode == 0 and f"plot: {tmp_path / 'trend.svg'}" in r.stdout
    svg = (tmp_path / "trend.svg").read_text()
    assert svg.startswith("<?xml") and "resnet50: median latency across stored runs" in svg
    r = cli("history", "--model", "resnet50", "--runs", str(runs), "--plot", "x.pdf")
    assert r.returncode == 2 and "must end in .png or .svg" in r.stderr
    r = cli("history", "--model", "nothing", "--runs", str(runs))
    assert r.returncode == 1 and "no stored cells of nothing" in r.stderr
    r = cli("history", "--model", "resnet50", "--runs", str(tmp_path / "none"))
    assert r.returncode == 2 and "is not a directory" in r.stderr


def test_history_verdicts_clear_the_process_spread(tmp_path: Path) -> None:
    """Against the previous run: a 4% step inside processes that spread 10% is a tie, a 40%
    step is slower; with one process a cell the 4% step would have been called."""
    from inferometer.report.history import history, history_rows

    runs = tmp_path / "runs"
    for i, (day, median) in enumerate((("01", 10e6), ("02", 10.4e6), ("03", 14.5e6))):
        write_run(runs / f"r{i}", [Cell("onnxruntime", "default", 1, 1,
                                        processes(median, [0.95, 1.0, 1.05], seed=i),
                                        model="resnet50")],
                  created=f"2026-01-{day}T00:00:00+00:00")
    rows = history_rows(history(runs, "resnet50"))
    assert [r[7] for r in rows] == ["-", "tied", "slower"]
    one = tmp_path / "one"
    for i, (day, median) in enumerate((("01", 10e6), ("02", 10.4e6))):
        write_run(one / f"r{i}", [Cell("onnxruntime", "default", 1, 1,
                                       noisy(median, seed=i, spread=0.005), model="resnet50")],
                  created=f"2026-01-{day}T00:00:00+00:00")
    assert [r[7] for r in history_rows(history(one, "resnet50"))] == ["-", "slower"]
