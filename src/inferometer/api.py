"""The Python API: `inferometer.run(...)` does what `inferometer run` does and returns the
stored run; `inferometer.load(RUN_DIR)` opens any stored run (speed, load test or scan,
tune, accuracy, training); `Run.to_pandas()` gives one row per cell (per process with
raw=True).  Keyword options are `run`'s flags by their Python names, with lists and dicts
where the command line takes comma lists:

    run = inferometer.run("resnet50", runtimes=["onnxruntime", "openvino"], threads=[1, 2])
    df = run.to_pandas()
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

__all__ = ["Run", "load", "run"]


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


def _options(models: str | Sequence[str] | None, options: dict[str, Any]) -> argparse.Namespace:
    from .cli import run_parser
    from .sweep import _options, _value

    parser = run_parser()
    names = models if isinstance(models, str) or models is None else ",".join(models)
    args = parser.parse_args([names] if names else [])
    known = _options(parser)
    starting = ("resume", "output", "dry_run", "config")
    for key, value in options.items():
        if key in starting:
            continue
        if key not in known:
            raise TypeError(f"run() got an unknown option '{key}'; valid: "
                            f"{', '.join(sorted(known))}")
        if value is not None:
            setattr(args, key, _value(known[key], key, value, "inferometer.run()"))
    for key in starting:
        if key in options:
            setattr(args, key, str(options[key]) if key != "dry_run" else options[key])
    args.command_line = ("inferometer.run", *([names] if names else []),
                         *(f"{k}={v!r}" for k, v in options.items()))
    return args


def run(models: str | Sequence[str] | None = None, **options: Any) -> Run:
    """Measure like `inferometer run MODELS --OPTION ...`; returns the stored run.  Also
    `output=DIR`, `resume=RUN_DIR` and `config=FILE.toml`, as on the command line."""
    from .cli._measure import start

    started = start(_options(models, options))
    if started is None:  # dry_run=True: the plan was printed, nothing ran
        raise UsageError("dry_run=True runs nothing: there is no run to return")
    result, rundir = started
    return Run(rundir.path, result)
