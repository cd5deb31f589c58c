"""Dynamic batching, as Triton's dynamic batcher does it: an instance that becomes free takes
the oldest queued query and, with it, every query queued behind it up to `max_batch`; when
fewer are waiting it may hold the batch open until the oldest query has waited `delay_s`.
The batch runs as one call; every query in it completes at the same instant."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError
from ..units import seconds

Item = tuple[int, int, int]  # (query id, items, enqueue time ns)


@dataclass(frozen=True)
class Batching:
    max_batch: int
    delay_s: float = 0.0  # how long the oldest query may wait for the batch to fill

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise UsageError("--dynamic-batching: max must be >= 1")
        if self.delay_s < 0:
            raise UsageError("--dynamic-batching: delay must be >= 0")

    def label(self) -> str:
        return f"max={self.max_batch},delay={self.delay_s * 1e3:g}ms"


def parse_batching(text: str) -> Batching:
    """'max=8,delay=2ms' (delay optional: 0, take what is queued and do not wait)."""
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in ("max", "delay") or key in fields:
            raise UsageError(f"--dynamic-batching: '{text}' is not max=N[,delay=TIME], "
                             "e.g. max=8,delay=2ms")
        fields[key] = value
    if "max" not in fields:
        raise UsageError(f"--dynamic-batching: '{text}' names no max=N, e.g. max=8,delay=2ms")
    try:
        size = int(fields["max"])
    except ValueError:
        raise UsageError(f"--dynamic-batching: max '{fields['max']}' is not a whole number") \
            from None
    delay = seconds(fields["delay"], "--dynamic-batching delay") if "delay" in fields else 0.0
    return Batching(size, delay)


def collect(q: queue.SimpleQueue, first: Item, policy: Batching,
            clock: Callable[[], int] = time.monotonic_ns) -> tuple[list[Item], Item | None, bool]:
    """The batch that starts with `first`: queued queries are added until `max_batch` items,
    then, if the batch is short, the batcher waits for more until `first` has waited `delay_s`.
    Returns the batch, a query taken from the queue that did not fit (the caller's next
    first), and whether the stop sentinel (None) was taken."""
    batch, size = [first], first[1]
    deadline = first[2] + int(policy.delay_s * 1e9)
    while size < policy.max_batch:
        wait = (deadline - clock()) / 1e9
        try:
            item = q.get_nowait() if wait <= 0 else q.get(timeout=wait)
        except queue.Empty:
            break
        if item is None:
            return batch, None, True
        if size + item[1] > policy.max_batch:
            return batch, item, False
        batch.append(item)
        size += item[1]
    return batch, None, False
