"""Errors the CLI turns into one line on stderr and exit code 2 (never a traceback)."""

from __future__ import annotations


class InferometerError(Exception):
    """Bad input or an unusable environment: the message is the whole story for the user."""


class UsageError(InferometerError):
    """An argument names something that does not exist or is out of range."""


class ModelError(InferometerError):
    """A model file is unreadable, malformed, or does not fit the requested shape."""


class RuntimeUnavailable(InferometerError):
    """A requested runtime is not installed; the message carries the exact install command."""


class RunDirError(InferometerError):
    """A directory is not a run, or its results file is unreadable."""
