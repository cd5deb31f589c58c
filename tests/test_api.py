"""The Python API and sweeps as files: the public names stay put, options map onto `run`'s,
a run's sweep.toml reruns it, and bad files say file:line and the key."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import cli

import inferometer
from inferometer.errors import UsageError

FAST = {"repeat": 2, "min_time": 0.05, "max_time": 0.2, "min_count": 5, "warmup": 1}


API = ("run", "loadtest", "scan", "tune", "accuracy", "load", "Run")


def test_the_public_names_stay_stable() -> None:
    assert sorted(inferometer.__all__) == sorted(["__version__", *API])
    for name in API:
        assert getattr(inferometer, name) is getattr(inferometer.api, name)
    assert [f.name for f in dataclasses.fields(inferometer.Run)] == ["path", "result"]
    assert {"kind", "rows", "to_pandas", "tables"} <= set(dir(inferometer.Run))
    with pytest.raises(AttributeError):
        inferometer.nothing_here  # noqa: B018


def test_run_load_and_pandas_rows_per_cell_and_per_process(tmp_path: Path) -> None:
    run = inferometer.run(["tinynet"], runtimes=["onnxruntime", "null"], threads=[1],
                          output=tmp_path / "r", **FAST)
    assert run.kind == "run" and run.path == tmp_path / "r"
    df = run.to_pandas()
    assert sorted(df["runtime"]) == ["null", "onnxruntime"] and (df["processes"] == 2).all()
    raw = inferometer.load(tmp_path / "r").to_pandas(raw=True)
    assert len(raw) == 4 and set(raw["node"]) == {"local"} and set(raw["rep"]) == {0, 1}
    assert "onnxruntime/default" in run.tables()
    with pytest.raises(TypeError, match="unknown option 'thread'"):
        inferometer.run("tinynet", thread=[1])
    with pytest.raises(UsageError, match="--threads"):
        inferometer.run("tinynet", threads=[0])


def test_load_tune_and_accuracy_runs_through_the_api(tmp_path: Path, fakes: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command's API call stores the run the command would, with the command line it
    stands for, and gives its rows to pandas."""
    from inferometer.cli import _parser

    lt = inferometer.loadtest("tinynet", runtime="null", scenario="single-stream",
                              duration="0.3s", output=tmp_path / "lt")
    assert lt.kind == "loadtest" and (tmp_path / "lt" / "results.json").is_file()
    assert lt.result.command == ("inferometer", "loadtest", "tinynet", "--runtime=null",
                                 "--scenario=single-stream", "--duration=0.3s",
                                 f"--output={tmp_path / 'lt'}")
    steps = inferometer.load(tmp_path / "lt").to_pandas()
    assert len(steps) == 1 and steps["achieved_qps"].iloc[0] > 0
    with pytest.raises(UsageError, match=r"inferometer.loadtest\(\): argument --scenario"):
        inferometer.loadtest("tinynet", runtime="null", scenario="bursty")

    monkeypatch.setenv("COSTMODEL_DIR", str(tmp_path / "live"))
    # an SLO under the service time alone: pruned without load (the search itself is tested
    # in test_tune*; here, that the API returns the stored run and its command)
    tuned = inferometer.tune("tinynet", runtimes=["costmodel"], layouts=["1x1", "2x1"],
                             max_batch=1, slo="p99:2ms", output=tmp_path / "t")
    assert tuned.kind == "tune" and tuned.result.recommendation is None
    assert len(tuned.to_pandas()) == len(tuned.result.space) == 2
    stored = _parser().parse_args(list(tuned.result.command[1:]))  # resumable from the shell
    assert (stored.slo, stored.layouts, stored.max_batch) == ("p99:2ms", "1x1,2x1", 1)

    acc = inferometer.accuracy("digits", runtimes=["onnxruntime"], precisions=["fp32"],
                               limit=40, output=tmp_path / "a")
    (row,) = acc.result.rows
    assert acc.kind == "accuracy" and row.status == "ok" and acc.result.items == 40
    assert list(acc.to_pandas()["precision"]) == ["fp32"]


def test_a_runs_sweep_toml_reruns_it_and_the_command_line_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('models = "tinynet"\nruntimes = ["null"]\nthreads = [1, 2]\nrepeat = 2\n'
                   "min_time = 0.05\nmax-time = 0.1\n")
    r = cli("run", "--config", str(cfg), "--threads", "1", "--output", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    assert [c["spec"]["threads"] for c in a["cells"]] == [1]  # the flag over the file's 1,2
    assert a["settings"]["repeat"] == 2 and a["settings"]["max_time_s"] == 0.1
    r2 = cli("run", "--config", str(tmp_path / "a" / "sweep.toml"), "--output",
             str(tmp_path / "b"))
    assert r2.returncode == 0, r2.stderr
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert [c["spec"] for c in b["cells"]] == [c["spec"] for c in a["cells"]]
    assert b["settings"] == a["settings"]


@pytest.mark.parametrize(("text", "message"), [
    ('models = "tinynet"\nthreds = [1]\n', ":2: unknown key 'threds'; valid: batch"),
    ('models = "tinynet"\n\nrepeat = "many"\n', ":3: 'repeat': --repeat: 'many' is not"),
    ('models = "tinynet"\npin = 3\n', ":2: 'pin' takes true or false, not 3"),
    ('models = "tinynet"\nthreads = [1,,2]\n', "at line 2"),
])
def test_bad_config_files_name_file_line_and_key(tmp_path: Path, text: str,
                                                 message: str) -> None:
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(text)
    r = cli("run", "--config", str(cfg), "--dry-run")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
