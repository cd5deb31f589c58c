"""Rounds of an interleaved run: a step of the whole host in one round is not a cell's own
instability (the make bench run where 19 of 39 cells read `unstable`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from synthetic import Cell, processes, write_run

from inferometer.results.rounds import MIN_CELLS, round_effects, with_rounds
from inferometer.results.store import load_result

# every cell's first process 12% slow (the host in round 1), the others within 1%
STEP = [1.12, 1.0, 1.005]


def _run(path: Path, n: int, own: dict[int, list[float]] | None = None,
         order: str = "interleaved") -> Path:
    own = own or {}
    cells = [Cell(f"rt{i}", "v", 1, 1, processes(10e6 * (1 + i / 10), own.get(i, STEP),
                                                   n=60, seed=i, spread=0.002))
             for i in range(n)]
    write_run(path, cells)
    data = json.loads((path / "results.json").read_text())
    data["settings"]["order"] = order
    (path / "results.json").write_text(json.dumps(data))
    return path


def test_a_step_of_the_whole_host_in_one_round_is_not_instability(tmp_path: Path) -> None:
    run = load_result(_run(tmp_path / "i", MIN_CELLS + 2))
    fx = round_effects(run.cells, run.settings)
    assert fx[0] == pytest.approx(1.12 / 1.005, rel=0.02) and fx[1] == pytest.approx(1.0, abs=0.01)
    assert not any(c.unstable for c in run.cells)
    assert all(c.spread is not None and c.spread < 0.03 for c in run.cells)
    # the same processes scheduled one cell after another: round 1 is no block of time
    seq = load_result(_run(tmp_path / "s", MIN_CELLS + 2, order="sequential"))
    assert all(c.unstable and c.spread is not None and c.spread > 0.10 for c in seq.cells)
    assert round_effects(seq.cells, seq.settings) == {}
    # the same raw processes, interleaved: divided; on a cluster (nodes side by side): not
    assert not any(c.unstable for c in with_rounds(seq.cells, run.settings))
    assert all(c.unstable for c in with_rounds(seq.cells, replace(run.settings,
                                                                  cluster="local:2")))


def test_a_cell_whose_own_processes_disagree_is_still_unstable(tmp_path: Path) -> None:
    """Its correction comes from the other cells, so its own 20% is not divided away."""
    run = load_result(_run(tmp_path / "i", MIN_CELLS + 2, own={3: [1.12 * 1.2, 1.0, 1.005]}))
    assert [c.spec.runtime for c in run.cells if c.unstable] == ["rt3"]


def test_too_few_cells_a_round_leave_the_spread_as_measured(tmp_path: Path) -> None:
    """Seven other cells: a median of so few would carry a cell's neighbours' luck."""
    run = load_result(_run(tmp_path / "i", MIN_CELLS))
    assert round_effects(run.cells, run.settings) == {}
    assert all(c.unstable for c in run.cells)
