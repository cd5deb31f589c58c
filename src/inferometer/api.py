"""The Python API: each function does what its command does and returns the stored run:
`inferometer.run(...)` (`inferometer run`), `loadtest`, `scan`, `tune` and `accuracy`;
`inferometer.load(RUN_DIR)` opens any stored run (speed, load test or scan, tune, accuracy,
training); `Run.to_pandas()` gives one row per cell, load step, candidate or precision (per
process with raw=True).  Keyword options are the command's flags by their Python names, with
lists and dicts where the command line takes comma lists:

    run = inferometer.run("resnet50", runtimes=["onnxruntime", "openvino"], threads=[1, 2])
    df = run.to_pandas()
    best = inferometer.tune("resnet50", slo="p99:100ms", budget="10m").result.recommendation

The options become the command line they stand for (stored as the run's command, so a tune
run made here resumes from the shell too), parsed by the command's own parser: the API and
the CLI cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

__all__ = ["Run", "accuracy", "load", "loadtest", "run", "scan", "tune"]


@dataclass(frozen=True)
class Run:
    """A stored run: where it is and what it holds (`result`: the typed results file)."""

    path: Path
    result: Any  # RunResult, LoadRun, TuneRun, AccuracyRun or TrainRun

    @property
    def kind(self) -> str:
        return str(self.result.kind)

    def rows(self, raw: bool = False) -> list[dict[str, Any]]:
        """The export's rows: one a cell (or a load step, a tune candidate, a precision);
        with raw=True, one a worker process of a speed run, with the node it ran on."""
        from .results.export import process_rows, rows

        if raw:
            if self.kind != "run":
                raise UsageError(f"raw=True: a {self.kind} run keeps no processes per cell")
            return process_rows(self.result)
        return rows(self.result)

    def to_pandas(self, raw: bool = False) -> Any:
        try:
            import pandas as pd
        except ImportError:
            raise UsageError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows(raw))

    def tables(self) -> str:
        """The tables `inferometer show` prints."""
        from .report.table import tables

        return tables(self.result)


def load(path: str | Path) -> Run:
    from .results.store import load_result

    p = Path(path)
    return Run(p, load_result(p))


def _args(command: str, positional: str | Sequence[str] | None,
          options: dict[str, Any]) -> argparse.Namespace:
    """The command line these options stand for, parsed as the CLI would parse it."""
    from .commands.options import command_parser
    from .sweep import _value

    parser = command_parser(command)

    def refuse(message: str) -> None:  # a usage error, not the CLI's exit
        raise UsageError(f"inferometer.{command}(): {message}")

    parser.error = refuse  # type: ignore[method-assign,assignment]
    flags = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    argv = [positional if isinstance(positional, str) else ",".join(positional)
            ] if positional else []
    for key, value in options.items():
        if key not in flags:
            raise TypeError(f"{command}() got an unknown option '{key}'; valid: "
                            f"{', '.join(sorted(flags))}")
        if value is None or value is False:
            continue
        action = flags[key]
        flag = max(action.option_strings, key=len)
        given = _value(action, key, value, f"inferometer.{command}()")
        if action.nargs == 0:
            argv.append(flag)
        else:  # --flag=VALUE: a value such as "-1,1" is not taken for a flag
            argv += [f"{flag}={g}" for g in (given if isinstance(given, list) else [given])]
    args = parser.parse_args(argv)
    args.command = command
    args.command_line = ("inferometer", command, *argv)
    return args


def run(models: str | Sequence[str] | None = None, **options: Any) -> Run:
    """Measure like `inferometer run MODELS --OPTION ...`; also `output=DIR`,
    `resume=RUN_DIR` and `config=FILE.toml`, as on the command line."""
    from .commands.run import start

    started = start(_args("run", models, options))
    if started is None:  # dry_run=True: the plan was printed, nothing ran
        raise UsageError("dry_run=True runs nothing: there is no run to return")
    result, rundir = started
    return Run(rundir.path, result)


def _stored(done: tuple[Any, Path]) -> Run:
    result, path = done
    return Run(path, result)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def loadtest(model: str | None = None, **options: Any) -> Run:
    """A load test like `inferometer loadtest`: `runtime=`, `qps=` (server scenario),
    `concurrency=[1, 2, 4]`, or `target="http://HOST:PORT/v2/models/NAME"` for a remote
    server (no model then).  Progress goes to stderr."""
    from .commands.workloads import start_load

    return _stored(start_load(_args("loadtest", model, options), _stderr))


def scan(model: str | None = None, **options: Any) -> Run:
    """The max-QPS scan like `inferometer scan`: the highest load whose tail latency meets
    each of `targets=["50ms", "100ms"]`, per arrival process."""
    from .commands.workloads import start_load

    return _stored(start_load(_args("scan", model, options), _stderr))


def tune(model: str | None = None, **options: Any) -> Run:
    """The deployment advisor like `inferometer tune`: `slo="p99:50ms"` and the other flags;
    `result.recommendation` is what to deploy (None when no candidate met the SLO);
    `resume=RUN_DIR` continues a stopped search."""
    from .commands.tune import start_tune

    return _stored(start_tune(_args("tune", model, options)))


def accuracy(model: str, **options: Any) -> Run:
    """Accuracy per runtime x precision like `inferometer accuracy`: `dataset=` is
    digits, imagenet:DIR, folder:DIR or npz:FILE."""
    from .commands.workloads import start_accuracy

    return _stored(start_accuracy(_args("accuracy", model, options)))
