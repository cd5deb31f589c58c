"""Helpers the commands share."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..errors import UsageError


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


def seconds(text: str, flag: str) -> float:
    """'100ms', '30s', '2m' or a bare number of seconds."""
    t = text.strip().lower()
    for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], scale
            break
    else:
        mult = 1.0
    try:
        return float(t) * mult
    except ValueError:
        raise UsageError(f"{flag}: '{text}' is not a duration like 100ms or 30s") from None
