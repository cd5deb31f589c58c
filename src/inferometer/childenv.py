"""The environment a worker process starts with.  Its own module, below both `envs` (which
probes a new environment with it) and `runner` (which spawns cells with it), so neither
imports the other for it."""

from __future__ import annotations

import os
from pathlib import Path

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TVM_NUM_THREADS")
_SRC = str(Path(__file__).resolve().parent.parent)


def worker_env(threads: int | None) -> dict[str, str]:
    """The child's environment: thread knobs set (or removed, for "auto") before the runtime
    is imported, and this package importable from any interpreter."""
    env = dict(os.environ)
    for var in _THREAD_VARS:
        if threads is None:
            env.pop(var, None)
        else:
            env[var] = str(threads)
    if threads is None:
        env.pop("TF_NUM_INTEROP_THREADS", None)
    else:
        env["TF_NUM_INTEROP_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, env.get("PYTHONPATH")]))
    return env
