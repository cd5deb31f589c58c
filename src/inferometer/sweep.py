"""Sweeps as data: `run --config FILE.toml` holds any of `run`'s options, and every run
directory keeps the resolved options as `sweep.toml`, so `run --config RUN/sweep.toml` reruns
the sweep exactly.  Keys are the options' names (`runtimes`, `threads`, `cost_per_hour` or
`cost-per-hour`); lists stand for comma lists; `dim` is a table (`dim = {seq = [128, 384]}`).
Options given on the command line win over the file's."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError

# run options that say how to start, not what to measure: never read from or written to a file
_NOT_SWEEP = {"resume", "config", "output", "dry_run", "handler", "command", "command_line"}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions  # argparse keeps no public list of them
            if a.dest not in _NOT_SWEEP and a.dest != "help"}


def _line(text: str, key: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return n
    return 1


def _value(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """The file's value as the command line would have given it."""
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise UsageError(f"{where}: '{key}' takes true or false, not {value!r}")
        return value
    if action.dest == "dim" and isinstance(value, dict):
        return [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in value.items()]
    if action.dest == "cost_per_hour" and isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, dict):
        raise UsageError(f"{where}: '{key}' takes a value or a list, not a table")
    if isinstance(value, list):
        text = ",".join(str(v) for v in value)
        return [text] if action.__class__.__name__ == "_AppendAction" else text
    if isinstance(value, bool):
        raise UsageError(f"{where}: '{key}' takes a value, not {str(value).lower()}")
    if action.type is not None:
        try:
            return action.type(value)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: '{key}': {value!r} is not a valid value") from None
    return [str(value)] if action.__class__.__name__ == "_AppendAction" else str(value)


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser, path: str,
                 given: set[str]) -> dict[str, str]:
    """Fill `args` from the TOML file at `path` for every option the command line did not
    give (`given`: the dests it gave).  Unknown keys and bad values name file:line; returns
    where each applied option stands in the file ("--repeat" -> "sweep.toml:4")."""
    p = Path(path)
    try:
        text = p.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path}: {exc}") from None
    options = _options(parser)
    applied = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        where = f"{path}:{_line(text, key)}"
        if dest not in options:
            raise UsageError(f"{where}: unknown key '{key}'; valid: "
                             f"{', '.join(sorted(options))}")
        if dest not in given:
            setattr(args, dest, _value(options[dest], key, value, where))
            applied[f"--{dest.replace('_', '-')}"] = f"{where}: '{key}'"
    return applied


def located(exc: UsageError, applied: dict[str, str]) -> UsageError:
    """A later check's error on an option the file gave, with the file's line and key."""
    flag = str(exc).split(":", 1)[0].split()[0] if str(exc) else ""
    return UsageError(f"{applied[flag]}: {exc}") if flag in applied else exc


def given_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options the command line itself gave (long flags; `run`'s positional models)."""
    flags = {s: a.dest for a in parser._actions for s in a.option_strings}
    return {flags[t.split("=", 1)[0]] for t in argv if t.split("=", 1)[0] in flags}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def resolved(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The run's options as a TOML file `--config` reads back (unset ones left out)."""
    lines = ["# the options this run was made with: inferometer run --config THIS_FILE"]
    for dest in _options(parser):
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        lines.append(f"{dest} = {_toml(value)}")
    return "\n".join(lines) + "\n"
