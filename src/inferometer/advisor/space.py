"""The candidates `tune` chooses among: runtime/variant x precision x layout (N processes x T
threads, each process pinned to its own cores) x dynamic batching (max batch, queue delay)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from ..results.tunerun import Candidate

__all__ = ["Candidate", "Layout", "batch_sizes", "build", "default_layouts", "parse_layouts"]

Layout = tuple[int, int | None]  # (processes, threads per process; None: the runtime's default)


def parse_layouts(text: str, cores: int) -> list[Layout]:
    """'1x2,2x1,1xauto' -> [(1, 2), (2, 1), (1, None)]."""
    out: list[Layout] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        n, sep, t = part.partition("x")
        try:
            layout = (int(n), None if t == "auto" else int(t))
        except ValueError:
            layout = (0, 0)
        if not sep or layout[0] < 1 or (layout[1] is not None and layout[1] < 1):
            raise UsageError(f"--layouts: '{part}' is not PROCESSESxTHREADS, e.g. 1x2,2x1")
        if layout[1] is not None and layout[0] * layout[1] > cores:
            raise UsageError(f"--layouts: {part} needs {layout[0] * layout[1]} cores; this "
                             f"machine lets the tool use {cores}")
        out.append(layout)
    if not out:
        raise UsageError("--layouts: name at least one layout, e.g. 1x2,2x1")
    return list(dict.fromkeys(out))


def default_layouts(cores: int) -> list[Layout]:
    """The runtime's own default (1 x auto), and every way to split the cores evenly."""
    return [(1, None), *((n, cores // n) for n in range(1, cores + 1) if cores % n == 0)]


def batch_sizes(max_batch: int) -> list[int]:
    """1 (no batching) and the powers of two up to --max-batch."""
    if max_batch < 1:
        raise UsageError("--max-batch must be >= 1")
    out, b = [1], 2
    while b <= max_batch:
        out.append(b)
        b *= 2
    if out[-1] != max_batch:
        out.append(max_batch)
    return out


def build(choices: Sequence[tuple[str, str, str]], layouts: Sequence[Layout],
          batches: Sequence[int], delays: Sequence[float]) -> tuple[Candidate, ...]:
    """Every (runtime, variant, precision) x layout x batching; a delay only with batching."""
    out = []
    for name, variant, precision in choices:
        for n, t in layouts:
            for b in batches:
                for d in (delays if b > 1 else (0.0,)):
                    out.append(Candidate(name, variant, precision, n, t, b, d))
    return tuple(dict.fromkeys(out))
