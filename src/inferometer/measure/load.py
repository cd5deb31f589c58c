"""CPU load from *other* processes on the CPUs this process may run on, while a cell ran.

Busy time of those CPUs (from /proc/stat via psutil, per CPU) minus this process's own CPU
time, divided by the wall time and the number of those CPUs: 0.5 for a worker free to use
both cores of a 2-core machine means one other core was busy all along, and the numbers of
that cell are suspect.  A pinned worker counts its own CPUs only: the other node of a local
cluster, pinned to the other core, takes nothing from it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def _busy_s(cpus: frozenset[int]) -> float:
    """Busy seconds of `cpus` (all: every CPU the process may run on)."""
    return sum(t.user + t.nice + t.system + getattr(t, "irq", 0.0)
               + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)
               for i, t in enumerate(psutil.cpu_times(percpu=True)) if i in cpus)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class LoadProbe:
    """Start before the timed loop, read after it."""

    _busy0: float = 0.0
    _own0: float = 0.0
    _wall0: float = 0.0
    _cpus: frozenset[int] = frozenset()

    def start(self) -> LoadProbe:
        self._cpus = frozenset(os.sched_getaffinity(0))
        self._busy0, self._own0 = _busy_s(self._cpus), _own_cpu_s()
        self._wall0 = time.monotonic()
        return self

    def other_load(self) -> float:
        """Fraction of the capacity of this process's CPUs used by other processes, in
        [0, 1]."""
        wall = time.monotonic() - self._wall0
        if wall <= 0 or not self._cpus:
            return 0.0
        other = (_busy_s(self._cpus) - self._busy0) - (_own_cpu_s() - self._own0)
        return min(1.0, max(0.0, other / (wall * len(self._cpus))))
