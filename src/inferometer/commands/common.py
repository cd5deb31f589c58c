"""Helpers the commands share."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..errors import UsageError
from ..units import seconds

__all__ = ["out_dir", "seconds"]


def out_dir(output: str | None, label: str) -> Path:
    """--output, or runs/<timestamp>-<label> (numbered if taken); never a non-empty directory:
    a run directory holds one run."""
    if output:
        path = Path(output)
        if path.exists() and any(path.iterdir()):
            raise UsageError(f"{path} already exists and is not empty; choose another --output")
        return path
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{label}"[:120]
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


