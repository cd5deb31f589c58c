"""A run is a directory.  Every file is written atomically (temp file + rename), cell by cell,
so a killed run loses nothing already measured and is never mistaken for a finished one:

    plan.json            what was asked (enough to resume)
    results.json         RunResult: status running/interrupted/complete, one entry per cell
    results.csv          one flat row per cell
    cells/<id>.json      each CellResult, rewritten as each of its processes finishes
    samples/<id>.json    raw latencies (ns) of each of the cell's processes: first call,
                         warm-up, steady state
    outputs/<id>.npz     every output on the fixed inputs (integrity), arr_0.. in model order
    logs/<id>.log        the worker's stdout/stderr
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from .codec import from_dict, to_dict
from .rounds import with_rounds
from .schema import SCHEMA_VERSION, CellResult, RunResult

ProcessSamples = dict[str, Any]  # {"rep": k, "first": ns, "warmup": [ns], "samples": [ns]}


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v2 gave every results file the shared header; v1 speed runs were the only kind
    # without a `kind`.
    return {**data, "kind": data.get("kind", "run"), "schema_version": 2}


_PROCESS_FIELDS = ("summary", "first_ms", "load_s", "stop_reason", "other_load",
                   "rss_after_load_mb", "peak_rss_after_load_mb", "peak_rss_mb", "wall_s",
                   "cpu_affinity", "device_summary")


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    # v3 measures each cell in several processes.  A v2 cell was one process: it becomes a
    # cell with that one process, and no between-process spread (which it could not see).
    if data.get("kind") != "run":
        return {**data, "schema_version": 3}
    cells = []
    for c in data.get("cells", []):
        if c.get("summary") is not None and not c.get("processes"):
            proc = {"rep": 0, **{k: c[k] for k in _PROCESS_FIELDS if k in c}}
            c = {**c, "processes": [proc], "spread": None}
        cells.append(c)
    settings = {"repeat": 1, "order": "sequential", **data.get("settings", {})}
    return {**data, "cells": cells, "settings": settings, "schema_version": 3}


def _v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    # v4 describes every input and output of a model (any model, not one NCHW image); a v3
    # model was one float image input and one output.
    models = []
    for m in data.get("models", []):
        if "inputs" not in m:
            m = dict(m)
            shape = ["batch", *m.pop("input_shape", [])]
            models.append({**m, "inputs": [{"name": m.pop("input_name", "input"),
                                            "dtype": "float32", "shape": shape,
                                            "kind": "image", "values": "image"}],
                           "outputs": [{"name": "output", "dtype": "float32",
                                        "shape": ["batch", "classes"],
                                        "kind": m.pop("output_kind", "tensor")}],
                           "batch_dim": "batch"})
        else:
            models.append(m)
    out = {**data, "schema_version": 4}
    if "models" in data:
        out["models"] = models
    if isinstance(data.get("model"), dict) and "inputs" not in data["model"]:
        out["model"] = _v3_to_v4({"models": [data["model"]]})["models"][0]
    return out


def _v4_to_v5(data: dict[str, Any]) -> dict[str, Any]:
    # v5 runs on several machines (a Ray cluster): a run lists its nodes and each process the
    # node it ran on.  A v4 run ran on the one machine its header describes.
    out = {**data, "schema_version": 5}
    if data.get("kind") != "run":
        return out
    local = {"machine_type": "local", "slots": 1, **(data.get("machine") or {})}
    out["machines"] = {"local": local}
    out["cells"] = [{**c, "processes": [{**p, "node": "local"} for p in c.get("processes", [])]}
                    for c in data.get("cells", [])]
    return out


# version -> function upgrading a results dict from that version to the next one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2,
                                                                     2: _v2_to_v3,
                                                                     3: _v3_to_v4,
                                                                     4: _v4_to_v5}


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(to_dict(obj), indent=1) + "\n")


def migrate(data: dict[str, Any], source: str = "results.json") -> dict[str, Any]:
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise RunDirError(f"{source}: no schema_version: not an inferometer results file")
    if version > SCHEMA_VERSION:
        raise RunDirError(f"{source}: schema version {version} is newer than this inferometer "
                          f"understands ({SCHEMA_VERSION}); upgrade inferometer")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path.parent} is not a run directory (no {path.name})") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is corrupt or truncated: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, kind: str, cell_id: str, suffix: str) -> Path:
        return self.path / kind / f"{cell_id}{suffix}"

    def create(self, plan: dict[str, Any]) -> None:
        if self.path.exists() and any(self.path.iterdir()):
            raise RunDirError(f"{self.path} already exists and is not empty; "
                              "choose another --output or use --resume")
        for sub in ("cells", "samples", "outputs", "logs"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / "plan.json", json.dumps(plan, indent=1) + "\n")

    def plan(self) -> dict[str, Any]:
        return _read_json(self.path / "plan.json")

    def save_cell(self, cell: CellResult, processes: list[ProcessSamples] | None) -> None:
        """The cell and the raw samples of each of its processes (samples first: a cell file
        never points at samples that are not on disk)."""
        if processes is not None:
            atomic_write(self.file("samples", cell.spec.id, ".json"),
                         json.dumps({"unit": "ns", "processes": processes}))
        write_json(self.file("cells", cell.spec.id, ".json"), cell)

    def process_samples(self, cell_id: str) -> list[ProcessSamples]:
        """Each process's raw record ({"rep", "first", "warmup", "samples"}, ns); a file of
        schema 2 or older held one process at its top level."""
        path = self.file("samples", cell_id, ".json")
        if not path.exists():
            return []
        data = _read_json(path)
        if not isinstance(data, dict):
            return []
        if "processes" in data:
            return list(data["processes"])
        if "samples" in data:
            return [{"rep": 0, **{k: v for k, v in data.items() if k != "unit"}}]
        return []

    def samples(self, cell_id: str) -> list[list[int]] | None:
        """A cell's steady-state latencies (ns), one list per process, or None when they
        were not kept."""
        procs = [list(p["samples"]) for p in self.process_samples(cell_id) if p.get("samples")]
        return procs or None

    def finished_cells(self) -> dict[str, CellResult]:
        cells = {}
        for p in sorted((self.path / "cells").glob("*.json")):
            cell = from_dict(CellResult, _read_json(p))
            cells[cell.spec.id] = cell
        return cells

    def write_results(self, run: RunResult) -> None:
        write_json(self.path / "results.json", run)

    def load(self) -> RunResult:
        """This directory's speed run (kind "run"); other kinds are refused by name."""
        result = load_result(self.path)
        if not isinstance(result, RunResult):
            raise RunDirError(f"{self.path} holds a {result.kind} run, not a speed run "
                              "(inferometer run)")
        return result


def repeated_runs(path: Path) -> list[Path]:
    """The runs of one test repeated into a directory (`loadtest --repeat N`: PATH/1 ..
    PATH/N), in order; [] for a run directory or anything else."""
    if not path.is_dir() or (path / "results.json").exists():
        return []
    return sorted((d for d in path.iterdir()
                   if d.name.isdigit() and (d / "results.json").exists()),
                  key=lambda d: int(d.name))


def _kinds() -> dict[str, type]:
    from .accuracyrun import AccuracyRun
    from .loadrun import LoadRun
    from .trainrun import TrainRun
    from .tunerun import TuneRun

    return {"run": RunResult, "loadtest": LoadRun, "scan": LoadRun, "accuracy": AccuracyRun,
            "train": TrainRun, "tune": TuneRun}


def load_result(path: Path) -> Any:
    """Any stored run, migrated to the current schema: RunResult, LoadRun, AccuracyRun or
    TrainRun."""
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory")
    runs = repeated_runs(path)
    if runs:
        raise RunDirError(f"{path} holds {len(runs)} runs of one test ({runs[0]} .. "
                          f"{runs[-1]}): name one, or compare the directory with another")
    where = path / "results.json"
    data = _read_json(where)
    if not isinstance(data, dict):
        raise RunDirError(f"{where} is not a results object")
    data = migrate(data, str(where))
    cls = _kinds().get(data.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise RunDirError(f"{where}: unknown kind {data.get('kind')!r}")
    try:
        result = from_dict(cls, data)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise RunDirError(f"{where} does not match the {data['kind']} schema: {exc}") from None
    if isinstance(result, RunResult):
        # derived from the processes' figures, so runs stored before the rounds were divided
        # out read the same as new ones
        result = replace(result, cells=with_rounds(result.cells, result.settings))
    return result
