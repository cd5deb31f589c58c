"""Process memory from /proc (Linux): VmHWM is the high-water mark the kernel keeps for us."""

from __future__ import annotations

import resource


def _status_kb(field: str, pid: int | str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: ru_maxrss is the same high-water mark (KiB on Linux, B on macOS)
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def process_peak_mb(pid: int) -> float:
    """Another live process's high-water mark (a serving instance, read by its pool); 0 when
    it cannot be read."""
    return (_status_kb("VmHWM", pid) or 0) / 1024.0


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024.0
