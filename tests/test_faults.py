"""A crash, a hang or an exception costs one cell, never the run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import QUICK, cli


def test_faulty_cells_fail_with_reasons_and_the_sweep_goes_on(fakes: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "crash,hang,raise,onnxruntime", "--threads", "1",
            "--timeout", "4", "--output", str(out), *QUICK)
    assert r.returncode == 1, r.stderr  # some cells failed
    assert "Traceback" not in r.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "complete"
    cells = {c["spec"]["runtime"]: c for c in data["cells"]}
    assert cells["crash"]["status"] == "failed"
    assert "SIGSEGV" in cells["crash"]["error"]
    assert cells["hang"]["status"] == "failed"
    assert "timed out after 4 s" in cells["hang"]["error"]
    assert cells["raise"]["status"] == "failed"
    assert "kernel exploded on purpose" in cells["raise"]["error"]
    assert "first inference" in cells["raise"]["error"]
    assert cells["onnxruntime"]["status"] == "ok"
    assert "FAILED: worker killed by signal SIGSEGV" in r.stdout
    # the failing worker's traceback is kept for diagnosis
    log = (out / "logs" / "tinynet.raise.default.t1.b1.p0.log").read_text()  # first process
    assert "RuntimeError: kernel exploded on purpose" in log


def test_failed_conversion_fails_its_cells_without_running_them(fakes: None,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "badconvert,null", "--threads", "1,auto",
            "--output", str(out), *QUICK)
    assert r.returncode == 1
    data = json.loads((out / "results.json").read_text())
    assert data["conversions"] == {
        "tinynet.badconvert.default": "failed: conversion: ValueError: unsupported operator "
                                      "Frobnicate"}
    bad = [c for c in data["cells"] if c["spec"]["runtime"] == "badconvert"]
    assert len(bad) == 2 and all("conversion failed" in c["error"] for c in bad)
    assert not list((out / "logs").glob("tinynet.badconvert.default.t*.log"))  # never spawned
    assert all(c["status"] == "ok" for c in data["cells"] if c["spec"]["runtime"] == "null")


def test_a_runtime_that_converts_per_shape_gets_one_conversion_per_shape(
        fakes: None, tmp_path: Path) -> None:
    """Threads share a conversion, batches do not: each conversion receives its cell's
    shapes, and every cell's load finds the one made for it."""
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "shapeconvert", "--threads", "1,2", "--batch",
            "1,2", "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["conversions"] == {
        "tinynet.shapeconvert.default.b1": "converted at input=1x3x32x32",
        "tinynet.shapeconvert.default.b2": "converted at input=2x3x32x32"}
    assert len(data["cells"]) == 4 and all(c["status"] == "ok" for c in data["cells"])


def test_out_of_memory_is_named_and_the_sweep_goes_on(fakes: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "oom,killed,null", "--threads", "1", "--batch",
            "1,2", "--output", str(out), *QUICK)
    assert r.returncode == 1, r.stderr
    cells = {(c["spec"]["runtime"], c["spec"]["batch"]): c
             for c in json.loads((out / "results.json").read_text())["cells"]}
    assert cells[("oom", 2)]["error"] == ("first inference: MemoryError: out of memory at "
                                          "batch 2: could not allocate 96.0 GiB")
    assert "killed by signal SIGKILL (the kernel's OOM killer sends SIGKILL" in \
        cells[("killed", 1)]["error"]
    assert all(cells[("null", b)]["status"] == "ok" for b in (1, 2))
