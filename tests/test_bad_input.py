"""Bad input: one clear line on stderr, exit 2, no traceback, no run directory left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nosuchmodel"], "unknown model 'nosuchmodel'; valid: resnet18"),
    (["run", "tinynet", "--runtimes", "tensorrtx"], "unknown runtime 'tensorrtx'; valid:"),
    (["run", "tinynet", "--runtimes", "onnxruntime", "--variants", "fast"],
     "unknown variant 'fast'; valid: onnxruntime: default"),
    (["run", "tinynet", "--threads", "0"], "--threads: 0 is outside"),
    (["run", "tinynet", "--threads", "4096"], "--threads: 4096 is outside"),
    (["run", "tinynet", "--threads", "many"], "--threads: 'many' is not a number"),
    (["run", "tinynet", "--batch", "0"], "--batch: 0 is outside"),
    (["run", "tinynet", "--runtimes", "missing"], "install it with: pip install missing-rt"),
    (["run", "tinynet", "--timeout", "0"], "--timeout must be > 0"),
    (["run", "tinynet", "--repeat", "0"], "--repeat: 0 is outside 1..100"),
    (["run", "tinynet", "--repeat", "2.5"], "--repeat: '2.5' is not a whole number"),
    (["run", "tinynet", "--order", "shuffled"],
     "--order: unknown 'shuffled'; valid: interleaved, sequential, random"),
    (["run"], "name a model"),
    (["show", "/nonexistent/run"], "not a directory"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(fakes: None, tmp_path: Path, args: list[str],
                                      message: str) -> None:
    out = tmp_path / "run"
    extra = ["--output", str(out)] if args[0] == "run" and len(args) > 1 else []
    r = cli(*args, *extra, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("preparing")]
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_bad_model_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("definitely not a model")
    r = cli("run", str(junk), "--runtimes", "onnxruntime", cwd=tmp_path)
    assert r.returncode == 2 and "is not an ONNX model" in r.stderr
    r = cli("run", str(tmp_path / "absent.onnx"), cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_torch_only_on_an_onnx_file_says_why(tmp_path: Path, tiny) -> None:  # type: ignore[no-untyped-def]
    r = cli("run", tiny.onnx_path, "--runtimes", "torch", cwd=tmp_path)
    assert r.returncode == 2
    assert "an .onnx file carries no PyTorch module" in r.stderr


def test_corrupt_results_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"schema_version": 1, "cells": [')
    r = cli("show", str(tmp_path))
    assert r.returncode == 2
    assert f"{tmp_path / 'results.json'} is corrupt or truncated" in r.stderr
