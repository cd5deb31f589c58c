"""inferometer: benchmark deep-learning inference across runtimes, and say what to deploy.

The Python API (`inferometer.run`, `loadtest`, `scan`, `tune`, `accuracy`, `load`, `Run`)
loads on first use: worker processes import this package too, and must stay light."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "__version__", "accuracy", "load", "loadtest", "run", "scan", "tune"]


def __getattr__(name: str) -> Any:
    if name in ("run", "load", "loadtest", "scan", "tune", "accuracy", "Run"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'inferometer' has no attribute {name!r}")
