"""loadtest and scan through the CLI, on the tiny model."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import cli

LINE = re.compile(r"^(linear|exponential)/[\d.]+/[\d.]+ qps=[\d.]+, mean=[\d.]+, time=[\d.]+, "
                  r"queries=\d+, tiles=50:[\d.]+,80:[\d.]+,90:[\d.]+,95:[\d.]+,99:[\d.]+,"
                  r"99.9:[\d.]+, issue_lag_p99=\d+us (VALID|INVALID)")


def test_scan_prints_the_reference_lines_and_stores_every_step(tmp_path: Path) -> None:
    out = tmp_path / "scan"
    r = cli("scan", "tinynet", "--runtime", "onnxruntime", "--targets", "50ms,20ms,1us",
            "--arrivals", "linear,exponential", "--precision", "0.5", "--duration", "0.3s",
            "--output", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("check_accuracy skipped: no labelled dataset")
    steps = [ln for ln in lines if LINE.match(ln)]
    assert steps, r.stdout
    final = next(ln for ln in lines if ln.startswith("===FINAL_RESULT: "))
    result = ast.literal_eval(final.removeprefix("===FINAL_RESULT: "))
    assert set(result) == {"linear", "exponential"}
    for by_target in result.values():
        assert by_target["1e-06"] == -1  # no QPS meets a 1 us bound
        assert by_target["0.05"] >= by_target["0.02"]  # a looser bound never allows less
    # tinynet answers in well under a millisecond, so some load meets 20 ms and 50 ms. (The
    # load generator's lag on a busy 2-core host once voided every step here; it is a note now)
    for t in ("0.02", "0.05"):
        assert max(by_target[t] for by_target in result.values()) > 0, lines
    data = json.loads((out / "results.json").read_text())
    assert data["kind"] == "scan" and data["engine"] == "native"
    assert len(data["scan"]) == len(steps)
    linear = data["results"]["1xauto"]["linear"]

    def valid(target: float) -> list[float]:
        """QPS values every test of which passed: a pass that failed its confirmation
        rerun bounds the answer from above instead (engine.max_qps)."""
        tests: dict[float, list[bool]] = {}
        for s in data["scan"]:
            st = s["step"]
            if st["arrivals"] == "linear" and st["target_s"] == target:
                tests.setdefault(st["offered_qps"], []).append(st["valid"])
        return [q for q, oks in tests.items() if all(oks)]

    assert linear["0.02"] == max(valid(0.02), default=-1)
    # the 50 ms search starts from the 20 ms answer: its own passes, or that answer
    assert linear["0.05"] == max([*valid(0.05), linear["0.02"]])
    shown = cli("show", str(out))
    assert shown.returncode == 0 and "max QPS 1xauto linear" in shown.stdout


def test_offline_and_two_instances(tmp_path: Path) -> None:
    r = cli("loadtest", "tinynet", "--runtime", "onnxruntime", "--scenario", "offline",
            "--instances", "2", "--threads-per-instance", "1", "--queries", "64", "--batch", "4",
            "--output", str(tmp_path / "off"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "off" / "results.json").read_text())
    step = data["scan"][0]
    assert step["config"] == "2x1"
    assert step["step"]["scenario"] == "offline" and step["step"]["queries"] == 64
    assert step["step"]["achieved_qps"] > 0
    assert len(list((tmp_path / "off" / "logs" / "2x1").glob("instance*.log"))) == 2


@pytest.mark.skipif(__import__("importlib").util.find_spec("mlperf_loadgen") is None,
                    reason="mlcommons-loadgen not installed")
def test_server_through_loadgen(tmp_path: Path) -> None:
    r = cli("loadtest", "tinynet", "--runtime", "onnxruntime", "--qps", "300", "--duration",
            "2s", "--target", "50ms", "--engine", "mlperf", "--output", str(tmp_path / "lg"))
    assert r.returncode == 0, r.stderr
    step = json.loads((tmp_path / "lg" / "results.json").read_text())["scan"][0]["step"]
    assert step["queries"] >= 459 and step["tiles_s"]["99"] > 0
    assert (tmp_path / "lg" / "logs").rglob("mlperf_log_summary.txt")


def test_single_stream_is_closed_loop(tmp_path: Path) -> None:
    r = cli("loadtest", "tinynet", "--runtime", "null", "--scenario", "single-stream",
            "--duration", "0.2s", "--output", str(tmp_path / "ss"))
    assert r.returncode == 0, r.stderr
    step = json.loads((tmp_path / "ss" / "results.json").read_text())["scan"][0]["step"]
    assert step["scenario"] == "single-stream" and step["queries"] >= 459
    # one query in flight at a time: the latencies add up to at most the wall time
    assert 0 < step["achieved_qps"] * step["mean_s"] <= 1.02


@pytest.mark.skipif(__import__("importlib").util.find_spec("mlperf_loadgen") is None,
                    reason="mlcommons-loadgen not installed")
def test_offline_through_loadgen_runs_exactly_the_requested_samples(tmp_path: Path) -> None:
    r = cli("loadtest", "tinynet", "--runtime", "onnxruntime", "--scenario", "offline",
            "--engine", "mlperf", "--queries", "96", "--batch", "8",
            "--output", str(tmp_path / "lgo"))
    assert r.returncode == 0, r.stderr
    step = json.loads((tmp_path / "lgo" / "results.json").read_text())["scan"][0]["step"]
    assert step["valid"], step["reasons"]
    assert step["queries"] == 96 and step["achieved_qps"] > 0


@pytest.mark.parametrize(("args", "message"), [
    (["scan", "tinynet", "--runtime", "onnxruntime", "--targets", "0ms"], "targets must be > 0"),
    (["loadtest", "tinynet", "--runtime", "onnxruntime", "--qps", "0"], "--qps must be > 0"),
    (["loadtest", "tinynet", "--runtime", "onnxruntime", "--qps", "50", "--duration", "3s"],
     "needs at least 459"),
    (["scan", "tinynet", "--runtime", "onnxruntime", "--engine", "warp"], "unknown engine"),
    (["scan", "tinynet", "--runtime", "onnxruntime", "--engine", "mlperf", "--arrivals",
      "linear"], "Poisson arrivals only"),
    (["loadtest", "tinynet", "--runtime", "onnxruntime"], "--qps is required"),
])
def test_bad_load_input(tmp_path: Path, args: list[str], message: str) -> None:
    r = cli(*args, "--output", str(tmp_path / "out"))
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("inferometer: error")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
