"""Rounds of an interleaved run: every cell's k-th process runs in round k, and a host that
changes speed for the minutes of one round moves every cell's process of that round alike
(`make bench`: round 1 ran 5.7% slow in all 39 cells, the matrix probe 8% with it).
Interleaving makes the cells pay it alike; a cell's `spread` should not count it as the
cell's own instability, or half the cells of a run read `unstable` (19 of 39 there, 7 with
the rounds divided out).

A round's effect is the median, over its cells, of each process's median over its cell's
median.  A cell's spread divides each of its processes by the effect of its round taken from
the *other* cells (its own deviation must not shape its correction), and only where a round
has enough other cells for a median to mean something.  Runs scheduled sequentially or at
random, and cluster runs (nodes in parallel), have no rounds in time: nothing is divided.
The processes' own figures stay as measured; compare between runs does not use this (there
a round's step is part of what each cell's median carries)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace

from ..stats import spread
from .schema import CellResult, RunSettings

MIN_CELLS = 8  # other CPU cells a round needs before its effect is divided out


def _ratios(cells: Sequence[CellResult]) -> dict[str, dict[int, float]]:
    """cell id -> rep -> its process median over the cell's median (CPU cells with two or
    more processes)."""
    out = {}
    for c in cells:
        if c.status != "ok" or c.spec.device != "cpu" or len(c.processes) < 2:
            continue
        mid = statistics.median(p.summary.p50_ms for p in c.processes)
        if mid > 0:
            out[c.spec.id] = {p.rep: p.summary.p50_ms / mid for p in c.processes}
    return out


def _effect(ratios: dict[str, dict[int, float]], rep: int, skip: str = "") -> float | None:
    """Round `rep`'s effect from its cells other than `skip` (none skipped: the footer's
    figure, asked of as many cells as a skipped one leaves, so both say the same rounds)."""
    xs = [r[rep] for cid, r in ratios.items() if cid != skip and rep in r]
    return statistics.median(xs) if len(xs) >= MIN_CELLS + (not skip) else None


def applies(s: RunSettings) -> bool:
    return s.order == "interleaved" and s.cluster is None


def round_effects(cells: Sequence[CellResult], s: RunSettings) -> dict[int, float]:
    """rep -> how much slower (> 1) or faster the whole run was in that round, for the rounds
    with enough cells; {} where rounds are not blocks of time."""
    if not applies(s):
        return {}
    ratios = _ratios(cells)
    reps = sorted({rep for r in ratios.values() for rep in r})
    return {rep: e for rep in reps if (e := _effect(ratios, rep)) is not None}


def with_rounds(cells: Sequence[CellResult], s: RunSettings) -> tuple[CellResult, ...]:
    """The cells with `spread` and `unstable` taken past the round effects (each cell's
    from the other cells); cells and runs where that does not apply as they are."""
    if not applies(s):
        return tuple(cells)
    ratios = _ratios(cells)
    out = []
    for c in cells:
        if c.spec.id not in ratios:
            out.append(c)
            continue
        adjusted = []
        for p in c.processes:
            e = _effect(ratios, p.rep, skip=c.spec.id)
            adjusted.append(p.summary.p50_ms / (e or 1.0))
        between = spread(adjusted)
        out.append(replace(c, spread=between,
                           unstable=between is not None and between > s.max_spread))
    return tuple(out)


def rounds_text(cells: Sequence[CellResult], s: RunSettings) -> str:
    """What the footer says of the rounds: '' where nothing was divided out."""
    fx = round_effects(cells, s)
    if not fx:
        return ""
    said = ", ".join(f"{rep + 1} {e - 1:+.1%}" for rep, e in sorted(fx.items()))
    return (f"each process taken past its round's shift of the whole run (round {said}; a "
            "cell's from the other cells)")
