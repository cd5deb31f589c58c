"""CPU load on the machine from *other* processes while a cell ran.

Busy time of the whole machine (from /proc/stat via psutil) minus this process's own CPU time,
divided by the wall time and the number of CPUs: 0.5 on a 2-core machine means one other core
was busy all along, and the numbers of that cell are suspect.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) \
        + getattr(t, "steal", 0.0)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class LoadProbe:
    """Start before the timed loop, read after it."""

    _busy0: float = 0.0
    _own0: float = 0.0
    _wall0: float = 0.0

    def start(self) -> LoadProbe:
        self._busy0, self._own0, self._wall0 = _machine_busy_s(), _own_cpu_s(), time.monotonic()
        return self

    def other_load(self) -> float:
        """Fraction of the machine's CPU capacity used by other processes, in [0, 1]."""
        wall = time.monotonic() - self._wall0
        if wall <= 0:
            return 0.0
        other = (_machine_busy_s() - self._busy0) - (_own_cpu_s() - self._own0)
        ncpu = psutil.cpu_count() or 1
        return min(1.0, max(0.0, other / (wall * ncpu)))
