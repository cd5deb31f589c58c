"""Every `inferometer` command the README and docs/studies.md show is one a user can paste:
it parses, and the runtimes, variants and precisions of its `run` lines exist.  A renamed
flag or variant fails here rather than in a new user's terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from inferometer import runtimes
from inferometer.cli import HANDLERS, _parser
from inferometer.errors import RuntimeUnavailable
from inferometer.plan import select_runtimes

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = (README, ROOT / "docs" / "studies.md")


def _commands() -> list[list[str]]:
    """The docs' inferometer commands (code blocks and inline spans) as argv: continuation
    lines joined, comments dropped, optional [parts] kept, the first of a|b alternatives,
    "a / b" shorthand split."""
    text = "\n".join(doc.read_text() for doc in DOCS)
    blocks = re.findall(r"```\n(.*?)```", text, flags=re.S)
    spans = re.findall(r"(?<!`)`(inferometer [^`]+)`", text)  # inline, as in the studies table
    text = "\n".join(blocks + spans).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        if not line.startswith("inferometer "):
            continue
        line = re.sub(r"\[(--[^\]]+)\]", r"\1", line)
        for part in line.removeprefix("inferometer ").split(" / "):
            argv = shlex.split(part)
            out.append([a.split("|")[0] if "|" in a and not a.startswith("-") else a
                        for a in argv])
    return out


def test_the_readme_shows_every_command() -> None:
    shown = {argv[0] for argv in _commands()}
    assert shown == {"runtimes", "models", "run", "show", "report", "compare", "export",
                     "history", "env", "loadtest", "scan", "accuracy", "train", "inspect",
                     "tune", "serve"}
    assert set(HANDLERS) == shown  # every command the parser takes has a handler


@pytest.mark.parametrize("argv", _commands(), ids=" ".join)
def test_readme_command_parses_and_names_what_exists(argv: list[str]) -> None:
    args = _parser().parse_args(argv)  # SystemExit(2) on an unknown flag or choice
    assert args.command in HANDLERS
    if argv[0] != "run" or not args.models:
        return
    if args.device != "cpu":  # no GPU needed to check the names: every variant is listed
        on_device = {name: [v for v in runtimes.get(name).variants if args.device in v.devices]
                     for name in runtimes.names()}
        for name in args.runtimes.split(",") if args.runtimes else on_device:
            if args.variants:
                assert set(args.variants.split(",")) <= {v.name for v in on_device[name]}
        precisions = {v.precision for vs in on_device.values() for v in vs}
        assert set((args.precisions or "fp32").split(",")) <= precisions
        return
    try:
        choices = select_runtimes(args.runtimes, args.variants, args.precisions, args.device)
    except RuntimeUnavailable as exc:  # an environment this checkout has not created
        pytest.skip(str(exc))
    assert choices and all(c.variants for c in choices)


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python API example, run as a user would paste it (in a fresh directory:
    its run lands under runs/ there)."""
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    df, same = scope["df"], scope["same"]
    assert list(df["threads"]) == ["1", "2"] and (df["p50_ms"] > 0).all()  # type: ignore[index]
    assert (df["processes"] == 2).all()  # type: ignore[index]
    assert same.kind == "run" and same.path.parent == Path("runs")  # type: ignore[attr-defined]
    load = scope["load"]
    steps = load.to_pandas()  # type: ignore[attr-defined]
    assert load.kind == "loadtest" and list(steps["concurrency"]) == [1, 2]  # type: ignore[attr-defined]
    assert (steps["achieved_qps"] > 0).all() and (steps["errors"] == 0).all()
