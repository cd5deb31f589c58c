"""train: the training step through the CLI on the CPU, its structure and integrity (the loss
falls), bad input, and the GPU detection that needs no GPU.  The CUDA run itself is tested
only where a GPU exists."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import cli

from inferometer.measure.gpu import cuda_devices, no_cuda_reason
from inferometer.results.trainrun import TrainReport
from inferometer.training import row

HAS_CUDA = bool(cuda_devices())
FAST = ["--batch", "4", "--warmup", "1", "--iterations", "4"]


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "run"
    r = cli("train", "tinynet", *FAST, "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "training step: tinynet on cpu" in r.stdout
    return out


def test_train_times_every_phase_and_trains(train_run: Path) -> None:
    data = json.loads((train_run / "results.json").read_text())
    assert data["kind"] == "train" and data["device"] == "cpu"
    assert [r["precision"] for r in data["rows"]] == ["fp32", "amp"]
    for r in data["rows"]:
        assert r["status"] == "ok", r["error"]
        raw = r["report"]
        assert len(raw["total_ns"]) == 4 and len(raw["losses"]) == 1 + 4
        for f, b, u, t in zip(raw["forward_ns"], raw["backward_ns"], raw["update_ns"],
                              raw["total_ns"], strict=True):
            assert min(f, b, u) > 0 and t >= f + b + u  # the phases are inside the step
        assert r["trained"] is True and r["loss_last"] < r["loss_first"]
        assert r["images_per_s"] == pytest.approx(4 * 1000 / r["total"]["p50_ms"])
    # AMP really ran in reduced precision: same seed and data, slightly different losses
    fp32, amp = (r["report"]["losses"] for r in data["rows"])
    assert fp32 != amp and abs(fp32[0] - amp[0]) < 0.05


def test_train_runs_show_and_report(train_run: Path) -> None:
    r = cli("show", str(train_run))
    assert r.returncode == 0 and "step p50 ms" in r.stdout and "yes" in r.stdout
    r = cli("report", str(train_run))
    assert r.returncode == 0, r.stderr
    assert (train_run / "plots" / "train-phases.svg").exists()
    assert "| precision | forward ms |" in (train_run / "report.md").read_text()


def test_train_runs_export(train_run: Path) -> None:
    import csv

    for fmt in ("csv", "json", "parquet"):
        r = cli("export", str(train_run), "--format", fmt)
        assert r.returncode == 0, r.stderr
    table = list(csv.DictReader((train_run / "export.csv").open()))
    assert [t["precision"] for t in table] == ["fp32", "amp"]
    assert all(float(t["total_p50_ms"]) >= float(t["forward_p50_ms"]) > 0 for t in table)


def test_a_step_that_does_not_lower_the_loss_is_flagged() -> None:
    rep = TrainReport(status="ok", forward_ns=(1, 1, 1), backward_ns=(1, 1, 1),
                      update_ns=(1, 1, 1), total_ns=(5, 5, 5), losses=(2.0, 2.1, 2.2, 2.3))
    assert row("fp32", 8, rep).trained is False
    failed = row("amp", 8, TrainReport(status="failed", error="load: boom"))
    assert failed.status == "failed" and failed.error == "load: boom"


@pytest.mark.parametrize(("args", "message"), [
    (["--optimizer", "lion"], "--optimizer: unknown 'lion'"),
    (["--precisions", "fp8"], "--precisions: unknown 'fp8'"),
    (["--batch", "1"], "--batch must be >= 2"),
    (["--device", "tpu"], "--device: unknown 'tpu'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    r = cli("train", "tinynet", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_so() -> None:
    r = cli("train", "tinynet", "--device", "cuda")
    assert r.returncode == 2  # the message's wording is checked in test_devices
    assert r.stderr.strip() == f"inferometer: error: {no_cuda_reason()}"


def test_gpu_names_come_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert cuda_devices() == ["NVIDIA H100 80GB HBM3"]


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here")
def test_train_on_cuda(tmp_path: Path) -> None:  # pragma: no cover - GPU machines only
    r = cli("train", "tinynet", *FAST, "--device", "cuda", "--output", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "t" / "results.json").read_text())
    assert all(r["report"]["gpu_peak_allocated_mb"] > 0 for r in data["rows"])
