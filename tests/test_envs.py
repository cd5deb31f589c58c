"""Managed environments: spec parsing, failure paths, and running a cell in another env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUICK, cli

from inferometer import envs
from inferometer.errors import UsageError
from inferometer.results.codec import to_dict

REPO = Path(__file__).resolve().parent.parent


def test_environment_pins_match_the_repository_constraints() -> None:
    lines = [ln.strip() for ln in (REPO / "constraints.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert tuple(lines) == envs.CONSTRAINTS


def test_specs() -> None:
    assert envs.resolve_spec("mxnet")[:2] == ("mxnet", "mxnet")
    assert envs.resolve_spec("onnxruntime==1.20.1") == ("onnxruntime@1.20.1", "onnxruntime",
                                                        ("onnxruntime==1.20.1",))
    with pytest.raises(UsageError, match="not a runtime package"):
        envs.resolve_spec("requests==2.0")
    with pytest.raises(UsageError, match="unknown environment 'onnxruntime>=1'"):
        envs.resolve_spec("onnxruntime>=1")


def test_pip_reason_keeps_the_error_lines() -> None:
    out = ("Collecting x\nERROR: Could not find a version that satisfies the requirement "
           "onnxruntime==0.0.0 (from versions: 1.20.1)\nERROR: No matching distribution found "
           "for onnxruntime==0.0.0\n")
    reason = envs._pip_reason(out)
    assert "Could not find a version" in reason and "No matching distribution" in reason
    assert "Collecting" not in reason


def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root = tmp_path / "envs"
    monkeypatch.setenv("INFEROMETER_ENVS", str(root))
    return root


def test_bad_spec_fails_with_pips_reason_and_registers_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _isolated(monkeypatch, tmp_path)
    r = cli("env", "create", "onnxruntime==0.0.0.999")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("inferometer: error")]
    assert len(err) == 1
    assert "pip could not install onnxruntime==0.0.0.999" in err[0]
    assert "onnxruntime==0.0.0.999" in err[0].split(":", 3)[-1]
    assert not (root / "onnxruntime@0.0.0.999").exists()
    assert "no environments" in cli("env", "list").stdout


def test_runtime_without_its_environment_says_how_to_create_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _isolated(monkeypatch, tmp_path)
    r = cli("run", "tinynet", "--runtimes", "mxnet", "--output", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "install it with: inferometer env create mxnet" in r.stderr
    r = cli("run", "tinynet", "--runtimes", "onnxruntime@1.20.1")
    assert r.returncode == 2
    assert "inferometer env create onnxruntime==1.20.1" in r.stderr


def test_list_and_remove(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _isolated(monkeypatch, tmp_path)
    info = envs.EnvInfo("onnxruntime@9.9", "onnxruntime", ("onnxruntime==9.9",),
                        "/nonexistent/python", "9.9", "2026-01-01T00:00:00+00:00")
    (root / info.name).mkdir(parents=True)
    (root / info.name / "env.json").write_text(json.dumps(to_dict(info)))
    (root / "half-made").mkdir()  # no env.json: not an environment
    listing = cli("env", "list").stdout
    assert "onnxruntime@9.9" in listing and "half-made" not in listing
    assert "onnxruntime@9.9" in cli("runtimes").stdout
    assert cli("env", "remove", "onnxruntime@9.9").returncode == 0
    assert not (root / info.name).exists()
    r = cli("env", "remove", "onnxruntime@9.9")
    assert r.returncode == 2 and "no environment 'onnxruntime@9.9'" in r.stderr


def test_an_environment_made_for_an_older_recipe_is_brought_up_to_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess

    root = _isolated(monkeypatch, tmp_path)
    old = envs.EnvInfo("tvm", "tvm", ("apache-tvm", "onnx"), "/envs/tvm/bin/python", "0.1",
                       "2026-01-01T00:00:00+00:00")
    (root / "tvm").mkdir(parents=True)
    (root / "tvm" / "env.json").write_text(json.dumps(to_dict(old)))
    calls: list[list[str]] = []

    def run(cmd: list[str], env: object = None) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        out = "0.2\n" if "-c" in cmd and "version()" in cmd[-1] else "{}"
        return subprocess.CompletedProcess(cmd, 0, out, "")

    monkeypatch.setattr(envs, "_run", run)
    info = envs.create("tvm", log=lambda *_: None)
    _, reqs = envs.RECIPES["tvm"]
    pip = [c for c in calls if c[1:4] == ["-m", "pip", "install"]]
    assert len(pip) == 1 and pip[0][0] == old.python and set(reqs) <= set(pip[0])
    assert info.requirements == reqs and info.runtime_version == "0.2"
    assert info.created == old.created  # the same environment, not a new one
    assert envs.load("tvm").requirements == reqs
    calls.clear()
    assert envs.create("tvm", log=lambda *_: None).requirements == reqs
    assert calls == []  # up to date: reused as it is


VERSION_ENVS = [e.name for e in envs.list_envs() if e.name.startswith("onnxruntime@")]


@pytest.mark.skipif(not VERSION_ENVS, reason="no onnxruntime version environment (make envs)")
def test_two_onnxruntime_versions_side_by_side(tmp_path: Path) -> None:
    other = VERSION_ENVS[0]
    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", f"onnxruntime,{other}", "--threads", "1",
            "--output", str(out), *QUICK)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    versions = {c["spec"]["runtime"]: c["runtime_version"] for c in data["cells"]}
    assert versions[other] == other.partition("@")[2]
    assert versions["onnxruntime"] != versions[other]
    assert all(c["integrity"]["passed"] for c in data["cells"])
