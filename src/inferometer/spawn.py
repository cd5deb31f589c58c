"""One job in one fresh process: the only place a worker is started.  Config in as JSON on
stdin, a report file out (pyperf's shape); any way the child can fail becomes a failed
report that says how it died."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

from .childenv import worker_env
from .jobs import Job
from .results.codec import from_dict, to_dict
from .results.schema import WorkerReport

R = TypeVar("R")


def spawn_worker(job: Job, log_path: Path, timeout_s: float,
                 python: str = sys.executable) -> WorkerReport:
    """Run one job in a fresh process; any way it can fail becomes a failed report."""
    return spawn("inferometer._worker", job, Path(job.report_path), WorkerReport,
                 job.spec.threads, log_path, timeout_s, python)


def spawn(module: str, job: Any, report_path: Path, report_cls: type[R], threads: int | None,
          log_path: Path, timeout_s: float, python: str = sys.executable) -> R:
    """`python -m module` with `job` as JSON on stdin; its report is read from `report_path`.
    A timeout kills the whole process group; a death without a report becomes a failed report
    (report_cls(status="failed", error=...)) that says how it died."""
    report_path.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([python, "-m", module], stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, text=True,
                                env=worker_env(threads), start_new_session=True)
        try:
            proc.communicate(json.dumps(to_dict(job)), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return report_cls(status="failed",
                              error=f"timed out after {timeout_s:g} s (--timeout raises it)")
        except BaseException:
            _kill(proc)
            raise
    if report_path.exists():
        report = from_dict(report_cls, json.loads(report_path.read_text()))
        report_path.unlink()
        return report
    rc = proc.returncode
    how = (f"killed by signal {signal.Signals(-rc).name}" if rc < 0
           else f"exited with code {rc}")
    if rc == -signal.SIGKILL:  # not our timeout (that returned above): most likely the kernel
        how += " (the kernel's OOM killer sends SIGKILL: did the batch fit in memory?)"
    tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    return report_cls(status="failed",
                      error=f"worker {how} without a report" + (f": {tail[0]}" if tail else ""))


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: runtimes spawn helpers
    proc.wait()
