"""Where a run's worker processes execute: this machine, one at a time (`Local`), or the nodes
of a Ray cluster (`cluster.RayExecutor`).  The runner hands either the same `Work` and gets
the same `Done` back, so nothing above this line knows whether a cluster exists."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import envs
from .jobs import Job
from .measure.speed import Speed, speed_probe
from .results.schema import WorkerReport
from .spawn import spawn_worker

LOCAL = "local"  # the node name of this machine when no cluster is used


@dataclass(frozen=True)
class Work:
    """One worker process to run: a cell's process, a reference or a conversion."""

    job: Job
    log_path: str
    timeout_s: float
    machine_type: str | None = None  # run only on a node of this type (the cell's machine)
    node: str | None = None  # run on this node (conversions run on every node)
    probe: bool = True  # time the machine's speed just before the process starts


@dataclass(frozen=True)
class Done:
    work: Work
    report: WorkerReport
    wall_s: float
    node: str  # the node it ran on (LOCAL without a cluster)
    probe: Speed | None = None  # the machine's speed just before the process


@dataclass(frozen=True)
class Node:
    """A machine the run may use: its id, its type (the key machines are compared by) and
    what measure.machine says of it."""

    id: str
    machine_type: str
    slots: int = 1
    machine: dict[str, object] = field(default_factory=dict)


class Executor(Protocol):
    nodes: Sequence[Node]

    def free(self, machine_type: str | None = None, node: str | None = None,
             cell: str = "") -> bool:
        """A slot can take work of this machine type (or on this node), for this cell, now."""

    def why_not(self, machine_type: str | None) -> str:
        """Why no node can take work of this machine type (none of it is alive)."""

    def submit(self, work: Work, tag: Any) -> str:
        """Start `work`; returns the node it was given to."""

    def wait(self) -> list[tuple[Any, Done]]:
        """Block until at least one submitted work is done; its tag and result."""

    def close(self) -> None: ...


def run_work(work: Work) -> tuple[WorkerReport, float, Speed | None]:
    """Run one worker process here: the report, its wall time and the speed probe taken
    just before it (where no runtime thread spins)."""
    try:
        python = envs.python_for(work.job.spec.runtime)
    except envs.EnvError as exc:  # removed since the plan was made, or missing on this node
        return WorkerReport(status="failed", error=str(exc)), 0.0, None
    probe = speed_probe() if work.probe else None
    t0 = time.monotonic()
    report = spawn_worker(work.job, Path(work.log_path), work.timeout_s, python)
    return report, time.monotonic() - t0, probe


class Local:
    """This machine, one process at a time: measurements never share the CPU with each other."""

    def __init__(self, machine: dict[str, object] | None = None) -> None:
        self.nodes = (Node(LOCAL, LOCAL, 1, machine or {}),)
        self._pending: list[tuple[Any, Work]] = []

    def free(self, machine_type: str | None = None, node: str | None = None,
             cell: str = "") -> bool:
        return not self._pending

    def why_not(self, machine_type: str | None) -> str:
        return "this machine is busy"  # never: one job at a time, waited for at once

    def submit(self, work: Work, tag: Any) -> str:
        self._pending.append((tag, work))
        return LOCAL

    def wait(self) -> list[tuple[Any, Done]]:
        tag, work = self._pending.pop(0)
        report, wall, probe = run_work(work)
        return [(tag, Done(work, report, wall, LOCAL, probe))]

    def close(self) -> None:
        self._pending.clear()
