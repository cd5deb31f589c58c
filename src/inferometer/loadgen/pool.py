"""N runtime instances (processes), each with T threads, served from one FIFO queue.

One dispatcher thread per instance takes the next query from the shared queue, writes it to
its instance and blocks (GIL released) on the answer, so an instance is never given a second
query while busy and the queue is the only place where queries wait: "run multiple instances
in parallel, each with fewer threads" becomes a measured configuration.  With dynamic batching
(`PoolSpec.batching`) a free instance takes the oldest query and the ones queued behind it,
up to the batch's size (load.batching), and runs them as one call.

A load test's queries run the instance's own fixed inputs; a served request (`submit(...,
data=...)`) carries its inputs, which travel to the instance and whose outputs come back
(`on_served`).  Those arrays cross into the instance through a shared segment (memfd) the
dispatcher writes in place and the instance reads without a copy, with only a short line on the
pipe; a request too large for the segment, or a platform without memfd, uses the pipe.  An
instance that dies is replaced; the queries it held fail (`on_error`, `Served.error`) and are
never left waiting.  A server's event loop can drive the instances itself instead of the
dispatcher threads (`threads=False`, serve.dispatch): the same instances, two thread
wake-ups fewer a request.
"""

from __future__ import annotations

import json
import mmap
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._wire import Packed, pack, pack_into
from ..childenv import worker_env
from ..errors import InferometerError
from ..measure.memory import process_peak_mb
from ..models.ref import ModelRef
from ..results.codec import to_dict
from .batching import Batching, Item, collect

Completion = Callable[[int, int], None]  # (query id, completion time ns)
Arrays = dict[str, np.ndarray]
Outputs = Mapping[str, np.ndarray]  # a dict, or a served answer's Packed arrays

# Address space only: a memfd's pages exist once written, so this costs what a request uses.
SEGMENT_BYTES = 64 << 20


@dataclass(frozen=True)
class Served:
    """What became of a served request: its outputs or its error, and where its time went."""

    outputs: Outputs | None
    error: str | None
    queue_ns: int  # enqueued -> handed to an instance
    compute_ns: int  # handed to an instance -> outputs back (the whole batch's call)
    batch: int  # items in the call that ran it
    # compute_ns split as Triton's statistics split it: inputs to the instance and unpacked;
    # the inference (prepare and run); outputs copied and packed.  0 where not known.
    input_ns: int = 0
    infer_ns: int = 0
    output_ns: int = 0

    @property
    def inference_ns(self) -> int:
        """The inference as the instance timed it; the whole call where that is not known."""
        return self.infer_ns or self.compute_ns


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
    shared_memory: bool = True  # served arrays through a shared segment, else the pipe

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
        seg_fd = -1
        self.view: memoryview | None = None  # of the shared segment, an mmap
        if spec.shared_memory and hasattr(os, "memfd_create"):
            seg_fd = os.memfd_create("inferometer-instance", os.MFD_CLOEXEC)
            os.ftruncate(seg_fd, SEGMENT_BYTES)
            self.view = memoryview(mmap.mmap(seg_fd, SEGMENT_BYTES))
        cpus = None
        if spec.pin and spec.threads:
            allowed = sorted(os.sched_getaffinity(0))
            cpus = [allowed[(index * spec.threads + k) % len(allowed)]
                    for k in range(spec.threads)]
        with open(log, "a") as f:
            self.proc = subprocess.Popen([python, "-m", "inferometer._serve"],
                                         stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT,
                                         env=worker_env(spec.threads),
                                         pass_fds=(w,) if seg_fd < 0 else (w, seg_fd),
                                         start_new_session=True)
        os.close(w)
        if seg_fd >= 0:
            os.close(seg_fd)  # the mapping keeps it
        self.responses = os.fdopen(r, "rb")
        job = {"model": to_dict(spec.model), "runtime": spec.runtime, "variant": spec.variant,
               "threads": spec.threads, "batch": spec.instance_batch, "response_fd": w,
               "cpus": cpus, "preprocess_timed": spec.preprocess_timed,
               "dynamic_batch": spec.batching is not None or spec.dynamic_batch,
               "segment_fd": seg_fd, "segment_bytes": SEGMENT_BYTES}
        self._send((json.dumps(job) + "\n").encode())

    def _send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _answer(self) -> list[str]:
        line = self.responses.readline()
        if not line:
            code = self.proc.poll()
            raise PoolError(f"instance {self.proc.pid} exited"
                            + (f" (code {code})" if code is not None else ""))
        return line.decode().split()

    def ready(self) -> tuple[float, str]:
        line = self.responses.readline().decode().strip()
        if not line.startswith("READY"):
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:]
            raise PoolError(f"instance failed to start: {line or 'no answer'}"
                            + (f" ({tail[0]})" if tail and not line else ""))
        _, load_s, version = line.split(maxsplit=2)
        return float(load_s), version

    def ask(self, qid: int, n: int) -> tuple[int, int]:
        """Run a batch of n of the instance's own inputs; when it completed and when its
        inference began (ns)."""
        self._send(f"{qid} {n}\n".encode())
        _, done, *began = self._answer()
        return int(done), int(began[0]) if began else int(done)

    def ask_data(self, qid: int, n: int, inputs: Arrays
                 ) -> tuple[int, Outputs | str, tuple[int, int] | None]:
        """Run these inputs; the completion time, the outputs (or the error's text) and when
        the inference began and ended (None with an error)."""
        self.send_data(qid, n, inputs)
        return self.answer_data()

    def send_data(self, qid: int, n: int, inputs: Arrays) -> None:
        """The first half of `ask_data`: the request is on its way (an event loop sends it
        and reads the answer when the response fd is readable)."""
        size = None if self.view is None else pack_into(self.view, inputs)
        if size is None:
            payload = pack(inputs)
            self._send(f"{qid} {n} {len(payload)}\n".encode() + payload)
        else:  # "@": the payload is in the segment
            self._send(f"{qid} {n} @{size}\n".encode())

    def answer_data(self) -> tuple[int, Outputs | str, tuple[int, int] | None]:
        """The second half: the answer to the request `send_data` sent."""
        _, t_done, answer, *span = self._answer()
        times = (int(span[0]), int(span[1])) if len(span) == 2 else None
        if answer.startswith("@") and self.view is not None:
            # copied out (one copy, read-only views of it): the next request overwrites the
            # segment
            return int(t_done), Packed(bytes(self.view[:int(answer[1:])])), times
        k = int(answer)
        body = self.responses.read(abs(k))
        if len(body) < abs(k):
            raise PoolError(f"instance {self.proc.pid} exited mid-answer")
        return int(t_done), (Packed(body) if k >= 0 else body.decode(errors="replace")), times

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_mb(self) -> float:
        """The instance's resident high-water mark (VmHWM), while it is alive."""
        return process_peak_mb(self.proc.pid)

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.responses.close()
        self._unmap()

    def _unmap(self) -> None:
        view, self.view = self.view, None
        if view is None:
            return
        segment = view.obj
        try:
            view.release()
            segment.close()
        except BufferError:  # an array still views it: the collector unmaps it later
            pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._unmap()


class InstancePool:
    """`threads=False`: no dispatcher threads; whoever drives the instances (an event loop,
    serve.dispatch) takes them from `instances` and uses `count_call`, `served` and
    `restart` as the threads do."""

    def __init__(self, spec: PoolSpec, log_dir: Path, python: str = sys.executable, *,
                 threads: bool = True) -> None:
        self.spec = spec
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._counts: Counter[int] = Counter()
        self._executions: Counter[int] = Counter()  # calls per batch size since start
        self._timing: list = [0, 0.0, 0]  # calls, queue ns (mean of a call's), inference ns
        self._lock = threading.Lock()
        self.on_complete: Completion = lambda qid, t: None
        self.on_start: Callable[[int], None] = lambda qid: None
        self.on_error: Callable[[int, str], None] = lambda qid, reason: None
        self.on_served: Callable[[int, Served], None] = lambda qid, served: None
        self.restarts = 0  # instances replaced after they died
        self._data: dict[int, Arrays] = {}
        self._python, self._log_dir = python, log_dir
        self._closing = False
        self._live = spec.instances
        self._instances = [self._start(i) for i in range(spec.instances)]
        self._threads: list[threading.Thread] = []
        try:
            starts = [inst.ready() for inst in self._instances]
        except BaseException:
            self.close()
            raise
        self.load_s = max(s[0] for s in starts)
        self.version = starts[0][1]
        for i in range(spec.instances if threads else 0):
            t = threading.Thread(target=self._dispatch, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def _start(self, index: int) -> _Instance:
        return _Instance(self.spec, index, self._python, self._log_dir / f"instance{index}.log")

    @property
    def live(self) -> int:
        """Instances able to take queries now."""
        return self._live

    @property
    def instances(self) -> list[_Instance]:
        return self._instances

    @property
    def threaded(self) -> bool:
        """Dispatcher threads drive the instances (else whoever made it with threads=False)."""
        return bool(self._threads)

    def count_call(self, size: int) -> None:
        with self._lock:
            self._counts[size] += 1
            self._executions[size] += 1

    def _dispatch(self, index: int) -> None:
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
            self.count_call(size)
            for qid, _, _ in batch:
                self.on_start(qid)
            try:
                self._call(self._instances[index], batch, size)
            except (PoolError, OSError, ValueError) as exc:
                if not self._replace(index, batch, f"instance {index} failed: {exc}"):
                    return

    def _call(self, inst: _Instance, batch: list[Item], size: int) -> None:
        data = [self._data.pop(qid, None) for qid, _, _ in batch]
        if data[0] is None:
            t_sent = time.monotonic_ns()
            done, began = inst.ask(batch[0][0], size)
            self._timed(batch, t_sent, done - began)
            for qid, _, _ in batch:
                self.on_complete(qid, done)
            return
        inputs = data[0] if len(batch) == 1 else {
            name: np.concatenate([d[name] for d in data if d is not None])
            for name in data[0]}
        t_sent = time.monotonic_ns()
        try:
            done, result, span = inst.ask_data(batch[0][0], size, inputs)
        except BaseException:
            for (qid, _, _), d in zip(batch, data, strict=True):
                if d is not None:
                    self._data[qid] = d  # failed with the batch, reported by _replace
            raise
        if span is not None:
            self._timed(batch, t_sent, span[1] - span[0])
        for (qid, _, _), served in zip(batch, self.served(batch, size, t_sent, done, result,
                                                        span), strict=True):
            self.on_served(qid, served)

    @staticmethod
    def served(batch: list[Item], size: int, t_sent: int, done: int, result: Outputs | str,
               span: tuple[int, int] | None) -> list[Served]:
        """What each query of a call got: its rows of every output (or the call's error),
        and the call's time split as the statistics extension splits it."""
        split = {} if span is None else {"input_ns": span[0] - t_sent,
                                         "infer_ns": span[1] - span[0],
                                         "output_ns": done - span[1]}
        if len(batch) == 1:  # the common case, on a cold cache: no rows to split
            _, _, t_enq = batch[0]
            outs, error = (None, result) if isinstance(result, str) else (result, None)
            return [Served(outs, error, t_sent - t_enq, done - t_sent, size, **split)]
        out, start = [], 0
        for _, n, t_enq in batch:
            outs = None
            if not isinstance(result, str):  # the batch's rows of every output, in query order
                outs = {k: v[start:start + n] if v.ndim and v.shape[0] == size else v
                        for k, v in result.items()}
            start += n
            out.append(Served(outs, result if isinstance(result, str) else None,
                              t_sent - t_enq, done - t_sent, size, **split))
        return out

    def _fail(self, items: list[Item], reason: str) -> None:
        for qid, _, t_enq in items:
            data = self._data.pop(qid, None)
            if data is None:
                self.on_error(qid, reason)
            else:
                self.on_served(qid, Served(None, reason, time.monotonic_ns() - t_enq, 0, 0))

    def _replace(self, index: int, batch: list[Item], reason: str) -> bool:
        """The instance died holding `batch`: fail those queries (never leave them waiting)
        and start a new instance in its place.  False when none could start: this dispatcher
        stops, and the last one to stop fails whatever is still queued."""
        self._fail(batch, reason)
        if self.restart(index):
            return True
        if self._live == 0:  # nobody is left to take what is queued
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._fail([item], "no live instance")
        return False

    def restart(self, index: int) -> bool:
        """Instance `index` died (or failed): kill what is left of it and start a new one in
        its place (blocks for the model's load).  False when none could start: the pool has
        one live instance fewer."""
        self._instances[index].kill()
        if not self._closing:
            try:
                new = self._start(index)
                new.ready()
                self._instances[index] = new
                with self._lock:
                    self.restarts += 1
                return True
            except (PoolError, OSError, ValueError):
                pass
        with self._lock:
            self._live -= 1
        return False

    def submit(self, qid: int, n: int = 1, data: Arrays | None = None) -> None:
        """Queue a query of n items: the instance's own inputs, or `data` (a served request,
        answered through `on_served`)."""
        if data is not None:
            self._data[qid] = data
        if self._live == 0:
            self._fail([(qid, n, time.monotonic_ns())], "no live instance")
            return
        self.queue.put((qid, n, time.monotonic_ns()))

    def execution_counts(self) -> dict[int, int]:
        """Calls per batch size since the pool started (a copy: dispatchers add to it)."""
        with self._lock:
            return dict(sorted(self._executions.items()))

    def _timed(self, batch: list[Item], t_sent: int, infer_ns: int) -> None:
        with self._lock:
            self._timing[0] += 1
            self._timing[1] += sum(t_sent - t_enq for _, _, t_enq in batch) / len(batch)
            self._timing[2] += infer_ns

    def take_timing(self) -> dict[str, float]:
        """Mean ms per call since the last take, as a server's statistics extension gives
        them: waiting in the queue, and the inference as the instance timed it (prepare and
        run, the timed region of `run`).  So an in-process step shows how much of its latency
        was the model's, as a served one does."""
        with self._lock:
            (n, queue_ns, infer_ns), self._timing = self._timing, [0, 0.0, 0]
        if not n:
            return {}
        return {"requests": float(n), "queue_ms": round(queue_ns / n / 1e6, 3),
                "compute_ms": round(infer_ns / n / 1e6, 3)}

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
        self._closing = True
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
