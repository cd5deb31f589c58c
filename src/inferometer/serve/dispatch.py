"""Served requests handed to the instances by the server's event loop itself.

The pool's dispatcher threads cost a served request two wake-ups of their own: the event
loop hands the request to a dispatcher thread, and the dispatcher hands the answer back to the
loop.  On this 2-vCPU machine each wake-up after an inference (whose 100 MB of weights leave
every cache cold) costs 85-120 us, so serve added about 1.3 ms a request on ResNet-50 where
the issue asks at most 1 ms (docs/decisions.md).  Here the loop writes a request straight to
an idle instance and watches every instance's response fd (`add_reader`): the answer wakes the
loop, which is where the request's coroutine waits anyway.

Without dynamic batching only: the batcher's "hold a short batch open until the oldest query
waited the delay" lives in the dispatcher threads (`loadgen.batching.collect`), and a server
with batching keeps them.  An instance that dies fails the request it held (never left
waiting) and is restarted off the loop, in a thread: loading a model takes seconds, which the
loop must not stand still for; the other instances go on taking requests meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass

from ..loadgen.pool import Arrays, InstancePool, PoolError, Served


@dataclass
class _Request:
    n: int
    inputs: Arrays
    future: asyncio.Future[Served]
    t_enq: int
    t_sent: int = 0


class LoopDispatcher:
    """Must be made, used and closed on the event loop's own thread."""

    def __init__(self, pool: InstancePool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool, self.loop = pool, loop
        self.waiting: deque[_Request] = deque()
        self.idle: deque[int] = deque(range(len(pool.instances)))
        self.busy: dict[int, _Request] = {}
        self._ids = 0
        self._closed = False
        for i in range(len(pool.instances)):
            self._watch(i)

    def _watch(self, index: int) -> None:
        self.loop.add_reader(self.pool.instances[index].responses.fileno(), self._answered,
                             index)

    async def infer(self, n: int, inputs: Arrays) -> Served:
        """Run one request of n items (checked by the caller)."""
        if self.pool.live == 0:
            return Served(None, "no live instance", 0, 0, 0)
        req = _Request(n, inputs, self.loop.create_future(), time.monotonic_ns())
        self.waiting.append(req)
        self._next()
        return await req.future

    def _next(self) -> None:
        while self.idle and self.waiting:
            req = self.waiting.popleft()
            if req.future.done():  # its client went away while it waited
                continue
            index = self.idle.popleft()
            self._ids += 1
            req.t_sent = time.monotonic_ns()
            self.busy[index] = req
            self.pool.count_call(req.n)
            try:
                self.pool.instances[index].send_data(self._ids, req.n, req.inputs)
            except (OSError, ValueError) as exc:  # its stdin is gone: it died
                self._lost(index, f"instance {index} failed: {exc}")

    def _answered(self, index: int) -> None:
        if index not in self.busy:  # readable while idle: the instance died (EOF)
            self.idle.remove(index)
            self._lost(index, "")
            return
        try:
            done, result, span = self.pool.instances[index].answer_data()
        except (PoolError, OSError, ValueError) as exc:
            self._lost(index, f"instance {index} failed: {exc}")
            return
        req = self.busy.pop(index)
        (served,) = self.pool.served([(0, req.n, req.t_enq)], req.n, req.t_sent, done,
                                     result, span)
        if not req.future.done():
            req.future.set_result(served)
        self.idle.append(index)
        self._next()

    def _lost(self, index: int, reason: str) -> None:
        """Instance `index` is gone: its request fails now; a new instance starts in a
        thread and joins the idle ones when it is ready."""
        self.loop.remove_reader(self.pool.instances[index].responses.fileno())
        req = self.busy.pop(index, None)
        if req is not None and not req.future.done():
            req.future.set_result(Served(None, reason, req.t_sent - req.t_enq,
                                         time.monotonic_ns() - req.t_sent, 0))
        restarting = self.loop.run_in_executor(None, self.pool.restart, index)
        restarting.add_done_callback(lambda f: self._restarted(index, f))

    def _restarted(self, index: int, f: asyncio.Future[bool]) -> None:
        if self._closed:
            return
        if not f.cancelled() and f.exception() is None and f.result():
            self._watch(index)
            self.idle.append(index)
            self._next()
        elif self.pool.live == 0:  # nobody is left to take what is queued
            while self.waiting:
                req = self.waiting.popleft()
                if not req.future.done():
                    req.future.set_result(Served(None, "no live instance",
                                                 time.monotonic_ns() - req.t_enq, 0, 0))

    def close(self) -> None:
        """Stop watching the instances (the pool closes them)."""
        self._closed = True
        for inst in self.pool.instances:
            with contextlib.suppress(OSError, ValueError):  # closed already
                self.loop.remove_reader(inst.responses.fileno())
