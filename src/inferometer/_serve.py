"""Serving instance: `python -m inferometer._serve`, one per runtime instance of a load test.

First stdin line: the job (JSON).  Then one request per line, "QID N" (run a batch of N of the
fixed images), answered on the response fd with "QID T_DONE" where T_DONE is CLOCK_MONOTONIC
in ns, taken here right after the result is on the host: the load generator measures latency
from the scheduled issue time to that instant, whatever its own threads were doing.  The
protocol has its own fd because runtimes print to stdout at will.  Like the worker, this
imports only numpy, psutil, the stdlib and the one runtime.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .models.preprocess import make_images
from .models.ref import ModelRef
from .results.codec import from_dict
from .runtimes import LoadOptions, get


def main() -> None:
    job = json.loads(sys.stdin.readline())
    out = os.fdopen(job["response_fd"], "w", buffering=1)
    try:
        if job.get("cpus"):
            os.sched_setaffinity(0, job["cpus"])
        model = from_dict(ModelRef, job["model"])
        runtime = get(job["runtime"])()
        t0 = time.perf_counter()
        session = runtime.load(model, LoadOptions(job["variant"], job["threads"], job["batch"]))
        load_s = time.perf_counter() - t0
        images = make_images(job["batch"], *model.input_shape[1:])
        feeds = {}
        for _ in range(job.get("warmup", 3)):
            session.run(session.prepare(images))
    except Exception as exc:
        msg = (str(exc).strip().splitlines() or [""])[0]
        out.write(f"ERROR {type(exc).__name__}: {msg}\n")
        os._exit(1)
    out.write(f"READY {load_s:.3f} {runtime.version()}\n")
    preprocess = job.get("preprocess_timed", True)
    for line in sys.stdin:
        qid, n = line.split()
        k = int(n)
        if preprocess:
            session.run(session.prepare(images[:k]))
        else:
            feed = feeds.get(k)
            if feed is None:
                feed = feeds[k] = session.prepare(images[:k])
            session.run(feed)
        out.write(f"{qid} {time.monotonic_ns()}\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
