"""benchmarks/gpu_session.sh runs only on a lent GPU machine, where a typo in a flag would cost
scarce device time: its inferometer and pytest command lines are checked here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from inferometer.cli import HANDLERS, _parser

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh"


def _commands(tool: str) -> list[list[str]]:
    text = SCRIPT.read_text().replace("\\\n", " ")
    text = text.replace('"$variants"', "eager").replace("$stage", "sweep")
    text = re.sub(r'"?\$work/([\w-]+)"?', r"/tmp/\1", text)
    return [shlex.split(line.split(f"$py -m {tool}", 1)[1].split("||")[0])
            for line in text.splitlines() if f"$py -m {tool} " in line]


def test_inferometer_commands_parse() -> None:
    commands = _commands("inferometer")
    assert {c[0] for c in commands} == {"run", "report", "train", "accuracy"}
    for argv in commands:
        args = _parser().parse_args(argv)  # exits (SystemExit) on an unknown flag
        assert args.command in HANDLERS


def test_the_baseline_s_harness_command_parses() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cuda_graph_baseline", SCRIPT.parent / "cuda_graph_baseline.py")
    assert spec and spec.loader
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)  # imports no torch at module level
    args = _parser().parse_args(baseline.harness_argv("resnet50", 50, Path("/tmp/b")))
    assert args.device == "cuda" and args.variants == "cuda_graph" and args.no_preprocess


def test_test_files_exist() -> None:
    for argv in _commands("pytest"):
        files = [a for a in argv if a.startswith("tests/")]
        assert files and all((SCRIPT.parents[1] / f).is_file() for f in files)
