"""N runtime instances (processes), each with T threads, served from one FIFO queue.

One dispatcher thread per instance takes the next query from the shared queue, writes it to
its instance and blocks (GIL released) on the answer, so an instance is never given a second
query while busy and the queue is the only place where queries wait: "run multiple instances
in parallel, each with fewer threads" becomes a measured configuration.  With dynamic batching
(`PoolSpec.batching`) a free instance takes the oldest query and the ones queued behind it,
up to the batch's size (load.batching), and runs them as one call.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..childenv import worker_env
from ..errors import InferometerError
from ..measure.memory import process_peak_mb
from ..models.ref import ModelRef
from ..results.codec import to_dict
from .batching import Batching, Item, collect

Completion = Callable[[int, int], None]  # (query id, completion time ns)


@dataclass(frozen=True)
class PoolSpec:
    model: ModelRef
    runtime: str
    variant: str
    instances: int
    threads: int | None  # per instance
    batch: int  # largest batch an instance is asked to run
    pin: bool = False
    preprocess_timed: bool = True
    batching: Batching | None = None  # dynamic batching in the dispatchers
    dynamic_batch: bool = False  # instances take every batch up to `batch` (without batching)

    @property
    def instance_batch(self) -> int:
        """The largest batch an instance must run (with dynamic batching: the max size, and
        every size below it)."""
        return max(self.batch, self.batching.max_batch if self.batching else 1)


class PoolError(InferometerError):
    """An instance failed to start."""


class _Instance:
    def __init__(self, spec: PoolSpec, index: int, python: str, log: Path) -> None:
        r, w = os.pipe()
        self.log = log
        cpus = None
        if spec.pin and spec.threads:
            allowed = sorted(os.sched_getaffinity(0))
            cpus = [allowed[(index * spec.threads + k) % len(allowed)]
                    for k in range(spec.threads)]
        with open(log, "w") as f:
            self.proc = subprocess.Popen([python, "-m", "inferometer._serve"],
                                         stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT,
                                         text=True, env=worker_env(spec.threads), pass_fds=(w,),
                                         start_new_session=True, bufsize=1)
        os.close(w)
        self.responses = os.fdopen(r, "r")
        job = {"model": to_dict(spec.model), "runtime": spec.runtime, "variant": spec.variant,
               "threads": spec.threads, "batch": spec.instance_batch, "response_fd": w,
               "cpus": cpus, "preprocess_timed": spec.preprocess_timed,
               "dynamic_batch": spec.batching is not None or spec.dynamic_batch}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()

    def ready(self) -> tuple[float, str]:
        line = self.responses.readline().strip()
        if not line.startswith("READY"):
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:]
            raise PoolError(f"instance failed to start: {line or 'no answer'}"
                            + (f" ({tail[0]})" if tail and not line else ""))
        _, load_s, version = line.split(maxsplit=2)
        return float(load_s), version

    def ask(self, qid: int, n: int) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{qid} {n}\n")
        self.proc.stdin.flush()
        _, t_done = self.responses.readline().split()
        return int(t_done)

    def peak_mb(self) -> float:
        """The instance's resident high-water mark (VmHWM), while it is alive."""
        return process_peak_mb(self.proc.pid)

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.responses.close()


class InstancePool:
    def __init__(self, spec: PoolSpec, log_dir: Path, python: str = sys.executable) -> None:
        self.spec = spec
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.on_complete: Completion = lambda qid, t: None
        self.on_start: Callable[[int], None] = lambda qid: None
        self._instances = [_Instance(spec, i, python, log_dir / f"instance{i}.log")
                           for i in range(spec.instances)]
        self._threads: list[threading.Thread] = []
        try:
            starts = [inst.ready() for inst in self._instances]
        except BaseException:
            self.close()
            raise
        self.load_s = max(s[0] for s in starts)
        self.version = starts[0][1]
        for inst in self._instances:
            t = threading.Thread(target=self._dispatch, args=(inst,), daemon=True)
            t.start()
            self._threads.append(t)

    def _dispatch(self, inst: _Instance) -> None:
        policy = self.spec.batching
        pending: Item | None = None
        stop = False
        while not stop:
            item = pending if pending is not None else self.queue.get()
            if item is None:
                return
            if policy is None:
                batch, pending = [item], None
            else:
                batch, pending, stop = collect(self.queue, item, policy)
            size = sum(b[1] for b in batch)
            with self._lock:
                self._counts[size] += 1
            for qid, _, _ in batch:
                self.on_start(qid)
            done = inst.ask(batch[0][0], size)
            for qid, _, _ in batch:
                self.on_complete(qid, done)

    def submit(self, qid: int, n: int = 1) -> None:
        self.queue.put((qid, n, time.monotonic_ns()))

    def take_batch_counts(self) -> dict[int, int]:
        """Calls per batch size since the last take (a step's histogram; none without
        dynamic batching, where every call is the size it was asked for)."""
        if self.spec.batching is None:
            return {}
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return dict(sorted(counts.items()))

    def peak_mb(self) -> float:
        """The instances' resident high-water marks, summed: what the deployment needs (shared
        library pages are counted in each process, so it errs high)."""
        return sum(inst.peak_mb() for inst in self._instances)

    def close(self) -> None:
        for _ in self._threads:
            self.queue.put(None)
        for t in self._threads:
            t.join(timeout=60)
        for inst in self._instances:
            inst.close()

    def __enter__(self) -> InstancePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
