"""End to end through the CLI, as a user runs it, on the tiny model."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import QUICK, cli

from inferometer.results.rounds import round_effects, with_rounds
from inferometer.results.store import RunDir
from inferometer.stats import median_interval, spread, summarize, summarize_processes

INSTALLED = [n for n in ("onnxruntime", "openvino", "torch")
             if __import__("importlib").util.find_spec(n) is not None]


def test_runtimes_and_models_listings() -> None:
    r = cli("runtimes")
    assert r.returncode == 0
    for name in ("onnxruntime", "openvino", "torch", "null"):
        assert name in r.stdout
    r = cli("models")
    assert r.returncode == 0
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("resnet50 "))
    assert "3x224x224" in row and "25.56" in row and "4.09" in row
    assert "arcface_r100" in r.stdout and "3x112x112" in r.stdout
    # listing imports transformers, which imports torchao: its import-time warnings about CUDA
    # kernels no CPU run uses must not greet the user
    assert "Failed to load" not in r.stderr and "Enum subclass" not in r.stderr, r.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("e2e") / "run"
    r = cli("run", "tinynet", "--runtimes", ",".join(INSTALLED), "--threads", "1,auto",
            "--batch", "1,2", "--output", str(out), *QUICK)
    return out, r


def test_run_writes_a_complete_run_directory(run_dir) -> None:  # type: ignore[no-untyped-def]
    out, r = run_dir
    assert r.returncode == 0, r.stderr
    run = RunDir(out).load()
    assert run.status == "complete"
    assert len(run.cells) == len(INSTALLED) * 2 * 2
    for c in run.cells:
        assert c.status == "ok", c.error
        assert c.integrity is not None and c.integrity.passed, (c.spec.id, c.integrity)
        assert c.integrity.top1_agreement == 1.0
        assert c.summary is not None and c.summary.count >= 5
        assert c.items_per_s == pytest.approx(c.spec.batch * 1000 / c.summary.p50_ms)
        assert c.peak_rss_mb and c.peak_rss_mb > 10
        assert c.libraries and c.runtime_version
        assert c.timed_region.startswith("uint8 NHWC")
        # every statistic is recomputable from the raw samples on disk, process by process
        raw = json.loads((out / "samples" / f"{c.spec.id}.json").read_text())
        assert raw["unit"] == "ns" and len(raw["processes"]) == 2 == len(c.processes)
        for p, rec in zip(c.processes, raw["processes"], strict=True):
            assert p.rep == rec["rep"] and len(rec["warmup"]) == 1
            assert summarize(rec["samples"]) == p.summary
            # the machine's speed just before the process: compare divides it out
            assert p.gemm_ms and 0.01 < p.gemm_ms < 1000 and p.probe_ms
        procs = [rec["samples"] for rec in raw["processes"]]
        lo, hi = median_interval(procs)
        s = summarize_processes(procs)
        assert replace(c.summary, median_ci_low_ms=0, median_ci_high_ms=0) == replace(
            s, median_ci_low_ms=0, median_ci_high_ms=0)
        assert (c.summary.median_ci_low_ms, c.summary.median_ci_high_ms) == pytest.approx(
            (lo / 1e6, hi / 1e6))
        if not round_effects(run.cells, run.settings):
            assert c.spread == spread([p.summary.p50_ms for p in c.processes])
    # with enough cells a round, the spread is taken past each round's shift of the whole
    # run, derived from the process medians alone (so loading it again changes nothing)
    assert [c.spread for c in with_rounds(run.cells, run.settings)] == [
        c.spread for c in run.cells]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == len(run.cells)
    assert run.machine["cpu_model"] and run.settings.reference_runtime == "onnxruntime"


def test_run_prints_the_table(run_dir) -> None:  # type: ignore[no-untyped-def]
    out, r = run_dir
    assert "== tinynet" in r.stdout
    for name in INSTALLED:
        assert f"{name}/" in r.stdout
    assert "fastest fp32 at batch 1:" in r.stdout and "fastest fp32 at batch 2:" in r.stdout
    assert "runtime dependencies" in r.stdout
    jobs = len(INSTALLED) * 4 * 2  # cells x processes
    assert f"[{jobs}/{jobs}]" in r.stderr
    shown = cli("show", str(out))
    assert shown.returncode == 0
    assert shown.stdout.split("machine:")[0] == r.stdout.split("machine:")[0]


@pytest.mark.skipif("torch" not in INSTALLED, reason="torch not installed")
def test_dry_run_lists_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    r = cli("run", "tinynet", "--runtimes", "onnxruntime,null", "--variants", "default,int8",
            "--threads", "1,auto", "--batch", "1,2", "--min-time", "3", "--max-time", "6",
            "--dry-run", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert not out.exists()
    rows = {tuple(ln.split()[:2]): ln.split()[2:] for ln in r.stdout.splitlines()
            if ln.startswith("tinynet ")}
    assert rows == {("tinynet", "onnxruntime/default"): ["cpu", "1,auto", "1,2", "4"],
                    ("tinynet", "onnxruntime/int8"): ["cpu", "1,auto", "1,2", "4"],
                    ("tinynet", "null/default"): ["cpu", "1,auto", "1,2", "4"]}
    # one reference run per batch size; int8 is the one variant converted first
    assert ("12 cells x 2 to 5 fresh worker processes each = 24 to 60 processes (as many as "
            "take at most 12 s together") in r.stdout
    assert ("scheduled interleaved; before them 2 reference run(s) (onnxruntime) and 1 "
            "conversion(s)") in r.stdout
    assert "measuring takes 1.2 to 6.0 min (3 to 6 s a process)" in r.stdout


def test_torch_variants_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "torch", "--variants", "channels_last,jit_freeze,bf16",
            "--threads", "1", "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    run = RunDir(out).load()
    assert [c.spec.variant for c in run.cells] == ["channels_last", "jit_freeze", "bf16"]
    assert [c.precision for c in run.cells] == ["fp32", "fp32", "bf16"]
    assert all(c.integrity and c.integrity.passed for c in run.cells)


def test_pin_restricts_each_worker_to_its_first_cpus(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "null", "--threads", "1,auto", "--pin",
            "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    one, auto = RunDir(out).load().cells
    allowed = sorted(__import__("os").sched_getaffinity(0))
    assert one.cpu_affinity == (allowed[0],)
    assert auto.cpu_affinity == tuple(allowed)


def test_user_onnx_file_runs(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    r = cli("run", tiny.onnx_path, "--runtimes", "onnxruntime", "--threads", "1",
            "--no-preprocess", "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    run = RunDir(out).load()
    assert run.models[0].source == tiny.onnx_path
    assert run.cells[0].timed_region.startswith("inference only")


def test_interrupt_keeps_finished_cells_and_resume_finishes(fakes: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "inferometer", "run", "tinynet", "--runtimes",
                             "onnxruntime,hang", "--threads", "1", "--timeout", "3",
                             "--output", str(out), *QUICK],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT and its children inherit
                            # that; give the run the disposition a terminal would
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((out / "cells").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the hang cell's worker is running now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: inferometer run --resume" in err
    run = RunDir(out).load()
    assert run.status == "interrupted"
    # interleaved: onnxruntime's first process finished, hang's first was cut short; the
    # onnxruntime cell is kept with the one process it has
    assert [c.spec.runtime for c in run.cells] == ["onnxruntime"]
    (first,) = run.cells[0].processes

    r = cli("run", "--resume", str(out))
    assert "onnxruntime/default threads=1 batch=1 process 1/2: (done earlier)" in r.stderr
    assert "hang/default threads=1 batch=1 process 2/2: (skipped: an earlier process" in r.stderr
    run = RunDir(out).load()
    assert run.status == "complete"
    assert [(c.spec.runtime, c.status) for c in run.cells] == [("onnxruntime", "ok"),
                                                               ("hang", "failed")]
    # only the missing process ran: the first one is the one measured before the interrupt
    assert [p.rep for p in run.cells[0].processes] == [0, 1]
    assert run.cells[0].processes[0] == first


def test_repeat_auto_gives_cheap_cells_more_processes_and_resume_adds_only_those(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    short = [a for a in QUICK if a not in ("--repeat", "2")]  # the default: --repeat auto
    r = cli("run", "tinynet", "--runtimes", "null", "--threads", "1", "--output", str(out),
            *short)
    assert r.returncode == 0, r.stderr
    run = RunDir(out).load()
    (cell,) = run.cells
    # a null process takes well under 2.4 s: 5 of them fit the cell's 12 s
    assert (run.settings.repeat, run.settings.repeat_max) == (2, 5)
    assert [p.rep for p in cell.processes] == [0, 1, 2, 3, 4]
    assert "[5/5]" in r.stderr and "process 5/5" in r.stderr
    assert "over 5 processes" in r.stderr and "over 2 processes" not in r.stderr
    assert "processes: 2-5 (as many as take <= 12 s together) per cell" in r.stdout

    # killed before its extra processes ran: their samples never reached the disk
    path = out / "samples" / f"{cell.spec.id}.json"
    raw = json.loads(path.read_text())
    raw["processes"] = raw["processes"][:3]
    path.write_text(json.dumps(raw))
    r = cli("run", "--resume", str(out))
    assert r.returncode == 0, r.stderr
    assert "process 3/5: (done earlier)" in r.stderr and "process 4/5: p50" in r.stderr
    again = RunDir(out).load().cells[0]
    assert [p.rep for p in again.processes] == [0, 1, 2, 3, 4]
    assert again.processes[:3] == cell.processes[:3]  # only the missing ones ran


def test_sigterm_kills_the_running_worker_and_keeps_finished_cells(fakes: None,
                                                                   tmp_path: Path) -> None:
    """A scheduler's SIGTERM must not leave the worker the run waits on behind (it runs in
    its own session, so the signal does not reach it): the run stops as on Ctrl-C."""
    import psutil

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "inferometer", "run", "tinynet", "--runtimes",
                             "onnxruntime,hang", "--threads", "1", "--timeout", "600",
                             "--output", str(out), *QUICK],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((out / "cells").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the hang cell's worker is running now
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "no worker was running"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: inferometer run --resume" in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert [c.spec.runtime for c in RunDir(out).load().cells] == ["onnxruntime"]
