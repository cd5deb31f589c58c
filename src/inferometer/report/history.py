"""`inferometer history`: one configuration's figures across every stored speed run under a
directory, oldest first, each against the first and the previous run, so a slow drift shows
before it adds up to a regression."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunDirError, UsageError
from ..results.schema import CellResult, RunResult
from ..results.store import load_result
from .compare import compare_cells, machine_change


@dataclass(frozen=True)
class Point:
    run_dir: str
    created: str
    cell: CellResult
    cpu: str


def stored_runs(root: Path) -> Iterator[tuple[Path, RunResult]]:
    """Every readable speed run below `root` (unreadable or other kinds are skipped: history
    is a survey, one broken directory must not hide the rest)."""
    for results in sorted(root.rglob("results.json")):
        try:
            run = load_result(results.parent)
        except RunDirError:
            continue
        if isinstance(run, RunResult):
            yield results.parent, run


def history(root: Path, model: str, runtime: str | None = None, variant: str | None = None,
            threads: str | None = None, batch: int | None = None) -> list[Point]:
    if not root.is_dir():
        raise UsageError(f"--runs: {root} is not a directory")
    points = []
    for path, run in stored_runs(root):
        for c in run.cells:
            s = c.spec
            if (s.model != model or (runtime and s.runtime != runtime)
                    or (variant and s.variant != variant)
                    or (threads and s.threads_label != threads)
                    or (batch and s.batch != batch)):
                continue
            points.append(Point(str(path), run.created, c, str(run.machine.get("cpu_model"))))
    points.sort(key=lambda p: (p.created, p.run_dir))
    return points


def config_label(c: CellResult) -> str:
    where = "" if c.spec.device == "cpu" else f" {c.spec.device}"
    dims = f" {c.spec.dims_label}" if c.spec.dims else ""
    on = f" @{c.spec.machine}" if c.spec.machine else ""  # one series a machine type
    return (f"{c.spec.runtime}/{c.spec.variant}{on} {c.precision} t={c.spec.threads_label} "
            f"b={c.spec.batch}{dims}{where}")


def series(points: list[Point]) -> dict[str, list[tuple[str, float]]]:
    """configuration -> (created, p50 ms) of each run where it ran, oldest first."""
    out: dict[str, list[tuple[str, float]]] = {}
    for p in points:
        if p.cell.status == "ok" and p.cell.summary is not None:
            out.setdefault(config_label(p.cell), []).append((p.created, p.cell.summary.p50_ms))
    return out


def _verdict(prev: CellResult | None, cell: CellResult) -> str:
    """compare's verdict on the previous run of this configuration (process level: the
    stored process medians; the noise floor at least how far apart identical processes lie
    and the difference in the machine's speed between the two)."""
    if prev is None:
        return "-"
    change = compare_cells(prev, cell, None, None,
                           machine=machine_change([prev], [cell])).get("p50")
    return "-" if change is None else change.verdict.replace("no significant change", "tied")


def history_rows(points: list[Point]) -> list[list[str]]:
    """One row per (run, cell): p50 with its change vs the first and previous run of the same
    configuration, and whether the change from the previous one is beyond noise."""
    first: dict[str, float] = {}
    prev: dict[str, float] = {}
    prev_cell: dict[str, CellResult] = {}
    rows = []
    for p in points:
        c = p.cell
        key = config_label(c)
        if c.status != "ok" or c.summary is None:
            rows.append([p.created, key, c.runtime_version, "-", "-", "-", "-", "-", p.cpu,
                         f"FAILED: {c.error}", p.run_dir])
            continue
        v = c.summary.p50_ms
        vs_first = f"{v / first[key] - 1:+.1%}" if key in first else "-"
        vs_prev = f"{v / prev[key] - 1:+.1%}" if key in prev else "-"
        verdict = _verdict(prev_cell.get(key), c)
        first.setdefault(key, v)
        prev[key] = v
        prev_cell[key] = c
        flags = " ".join(f for f, on in (("noisy", c.noisy), ("unstable", c.unstable)) if on)
        rows.append([p.created, key, c.runtime_version, f"{v:.2f}", f"{c.items_per_s:.1f}",
                     vs_first, vs_prev, verdict, p.cpu, flags, p.run_dir])
    return rows


HISTORY_HEADERS = ("created", "configuration", "version", "p50 ms", "items/s", "vs first",
                   "vs previous", "verdict", "cpu", "flags", "run")
