"""Shared libraries a process has mapped: the "runtime dependencies" of the CPU study."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# Libraries every Python process on Linux carries; listing them says nothing about a runtime.
_SYSTEM_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/python")


@dataclass(frozen=True)
class Library:
    name: str
    path: str
    size_mb: float


def mapped_libraries() -> set[str]:
    """Paths of the shared objects mapped into this process (empty where /proc is missing)."""
    paths: set[str] = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and ".so" in parts[5]:
                    paths.add(parts[5].strip())
    except OSError:
        pass
    return paths


def _is_system(path: str) -> bool:
    stdlib = os.path.join(sys.base_prefix, "lib")
    return path.startswith(_SYSTEM_DIRS) or path.startswith(stdlib + os.sep)


def runtime_libraries(before: set[str], after: set[str]) -> tuple[Library, ...]:
    """Libraries loaded between two snapshots that are not system libraries, biggest first."""
    libs = []
    for path in sorted(after - before):
        if _is_system(path) or not os.path.exists(path):
            continue
        libs.append(Library(os.path.basename(path), path, os.path.getsize(path) / 2**20))
    return tuple(sorted(libs, key=lambda lib: -lib.size_mb))
