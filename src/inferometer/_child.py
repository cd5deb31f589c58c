"""What both worker processes (_worker, _train) do on the way out: turn an exception into the
one-line reason a failed cell carries, and hand the report over atomically, then exit without
interpreter teardown (some runtimes' atexit and destructor paths are slow or crash, and nothing
is left to do once the report is on disk)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

from .results.codec import to_dict


def failure(stage: str, exc: BaseException, batch: int) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, MemoryError) or "out of memory" in msg.lower():
        # CUDA's OutOfMemoryError, MemoryError, allocator failures: say it in words
        msg = f"out of memory at batch {batch}: {msg}"
    return f"{stage}: {type(exc).__name__}: {msg}"[:500]


def finish(report_path: str, report: Any) -> NoReturn:
    tmp = report_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(to_dict(report), f)
    os.replace(tmp, report_path)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if report.status == "ok" else 1)
