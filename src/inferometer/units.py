"""Durations and sizes as users write them on the command line ('100ms', '15m', '3GB'):
parsed once here, so every layer that takes one (load tests, batching, tune) reads it alike;
and figures as the tool prints them."""

from __future__ import annotations

from .errors import UsageError


def _scaled(text: str, flag: str, units: tuple[tuple[str, float], ...], example: str) -> float:
    t = text.strip().lower()
    for suffix, scale in units:
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], scale
            break
    else:
        mult = 1.0
    try:
        return float(t) * mult
    except ValueError:
        raise UsageError(f"{flag}: '{text}' is not {example}") from None


def seconds(text: str, flag: str) -> float:
    """'100ms', '30s', '2m' or a bare number of seconds."""
    return _scaled(text, flag, (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0),
                                ("h", 3600.0)), "a duration like 100ms or 30s")


def megabytes(text: str, flag: str) -> float:
    """'3GB', '512MB', '1.5g' or a bare number of MB (powers of 1024, as /proc reports)."""
    return _scaled(text, flag, (("gib", 1024.0), ("mib", 1.0), ("gb", 1024.0), ("mb", 1.0),
                                ("g", 1024.0), ("m", 1.0)), "a size like 3GB or 512MB")


def figure(x: float | None, digits: int = 2) -> str:
    """A figure with `digits` decimals, and three significant digits below 1 (a tiny model's
    0.0123 ms is not "0.01")."""
    if x is None:
        return "-"
    return f"{x:#.3g}" if 0 < abs(x) < 1 else f"{x:.{digits}f}"
