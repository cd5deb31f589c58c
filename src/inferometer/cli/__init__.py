"""Command line: parse, call, print.  No logic lives here: the options are
`commands.options`, the work is `commands` (the Python API's too), and each handler below is
a few lines in _measure, _workloads, _tune, _serve or _reports that print what it returned."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from ..commands import options
from ..errors import InferometerError
from ._measure import cmd_env, cmd_models, cmd_run, cmd_runtimes, cmd_show
from ._models import cmd_inspect
from ._reports import cmd_compare, cmd_export, cmd_history, cmd_report
from ._serve import cmd_serve
from ._tune import cmd_tune
from ._workloads import cmd_accuracy, cmd_load, cmd_train

HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "runtimes": cmd_runtimes, "models": cmd_models, "inspect": cmd_inspect, "run": cmd_run,
    "env": cmd_env, "loadtest": cmd_load, "scan": cmd_load, "serve": cmd_serve,
    "accuracy": cmd_accuracy, "tune": cmd_tune, "show": cmd_show, "train": cmd_train,
    "report": cmd_report, "compare": cmd_compare, "export": cmd_export,
    "history": cmd_history,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    return options.parser(_Parser)


def _quiet_import_warnings() -> None:
    # Two libraries warn on import about things no CPU benchmark uses: torchao that its CUDA
    # kernels (mxfp8, sm90a cutlass) do not load on this build of torch, and torch's pytree
    # that torchao registers enums the old way.  Printed above every table, they read as
    # failures of the tool; their errors still print.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_import_warnings()
    args = _parser().parse_args(argv)
    # What a run records as its command: exactly what the user typed after `inferometer`.
    args.command_line = ("inferometer", *argv)
    # SIGTERM (a job scheduler, `timeout`, a closed session) takes Ctrl-C's path: Python's
    # default would end this process at once and leave the worker it waits on running, in
    # its own session, for as long as its cell takes; as an interrupt, the worker is killed
    # and what finished is saved.  serve installs its own draining handlers over this one.
    previous = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return HANDLERS[args.command](args)
    except InferometerError as exc:
        print(f"inferometer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM where the command has no word of its own
        print("\ninferometer: interrupted (what each command stores as it goes is kept; "
              "run and tune take --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `inferometer show RUN | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
