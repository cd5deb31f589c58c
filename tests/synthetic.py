"""Stored runs built from given samples, written exactly as the runner writes them (results.json
plus samples/<id>.json), for the report, compare and history tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inferometer.measure.libraries import Library
from inferometer.results.pooling import pool
from inferometer.results.schema import (
    SCHEMA_VERSION,
    CellResult,
    CellSpec,
    Integrity,
    ModelInfo,
    ProcessResult,
    RunResult,
    RunSettings,
    TensorInfo,
)
from inferometer.results.store import RunDir
from inferometer.stats import summarize

IMAGE_IN = (TensorInfo("input", "float32", ("batch", 3, 8, 8), "image", "image"),)
CLASSES = (TensorInfo("output", "float32", ("batch", 10), "classes"),)
MACHINE = {"hostname": "test", "cpu_model": "Test CPU", "logical_cpus": 2, "usable_cpus": 2,
           "cpu_flags": ["avx2"], "memory_gb": 8, "os": "Linux", "python": "3.11"}
SETTINGS = RunSettings(preprocess_timed=True, pin=False, timeout_s=60, reference_runtime="ref",
                       warmup=1, min_time_s=1, min_count=5, max_time_s=2, target_rel_ci=0.01,
                       noisy_threshold=0.15)


@dataclass(frozen=True)
class Cell:
    runtime: str
    variant: str
    threads: int | None
    batch: int
    samples_ns: Sequence[int] | Sequence[Sequence[int]]  # one process, or one list a process
    precision: str = "fp32"
    top1: float | None = 1.0
    peak_mb: float = 100.0
    model: str = "net"
    status: str = "ok"
    probe_ms: float | None = None  # the machine's speed probe before each process
    gemm_ms: float | None = None  # the matrix speed probe before each process
    device: str = "cpu"


def write_run(path: Path, cells: Sequence[Cell], created: str = "2026-01-01T00:00:00+00:00",
              version: str = "1.0") -> RunDir:
    rd = RunDir(path)
    rd.create({})
    results = []
    for c in cells:
        spec = CellSpec(c.model, c.runtime, c.variant, c.threads, c.batch, c.device)
        if c.status != "ok":
            cell = CellResult(spec, "failed", error="boom", runtime_version=version)
            rd.save_cell(cell, None)
            results.append(cell)
            continue
        procs = _processes(c.samples_ns)
        integrity = Integrity("ref", c.precision, 1e-6, 1e-6, 0.9999, c.top1, True, "test rule")
        base = CellResult(spec, "ok", runtime_version=version, precision=c.precision,
                          settings={"threads": spec.threads_label},
                          libraries=(Library(f"lib{c.runtime}.so", "/x", 12.5),),
                          integrity=integrity)
        records = [ProcessResult(rep=k, summary=summarize(p), first_ms=1.0, load_s=0.5,
                                 stop_reason="converged", rss_after_load_mb=c.peak_mb * 0.8,
                                 peak_rss_mb=c.peak_mb, wall_s=1.0, probe_ms=c.probe_ms,
                                 gemm_ms=c.gemm_ms)
                   for k, p in enumerate(procs)]
        cell = pool(base, records, procs)
        rd.save_cell(cell, [{"rep": k, "first": 1, "warmup": [1], "samples": list(p)}
                            for k, p in enumerate(procs)])
        results.append(cell)
    models = tuple(sorted({c.model for c in cells}))
    rd.write_results(RunResult(
        schema_version=SCHEMA_VERSION, kind="run", tool_version="test", created=created,
        command=("inferometer", "run", ",".join(models)), machine=MACHINE, status="complete",
        settings=SETTINGS,
        models=tuple(ModelInfo(m, "zoo", "0" * 64, IMAGE_IN, CLASSES, "batch")
                     for m in models),
        cells=tuple(results)))
    return rd


def _processes(samples: Sequence[int] | Sequence[Sequence[int]]) -> list[list[int]]:
    if samples and isinstance(samples[0], (list, tuple)):
        return [list(p) for p in samples]  # type: ignore[arg-type]
    return [list(samples)]  # type: ignore[arg-type]


def noisy(median_ns: float, n: int = 300, seed: int = 0, spread: float = 0.03) -> list[int]:
    """Latency-like samples: a median with a few percent of jitter and a right tail."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = median_ns * (1 + spread * rng.standard_normal(n)) + rng.exponential(median_ns * 0.02, n)
    return [int(v) for v in x]


def processes(median_ns: float, shifts: Sequence[float], n: int = 150, seed: int = 0,
              spread: float = 0.01) -> list[list[int]]:
    """One sample list per process, process k centred on median_ns * shifts[k]: a known
    between-process variance (each process lands on its own layout, placement, neighbours)
    above a small within-process jitter."""
    return [noisy(median_ns * f, n=n, seed=seed * 100 + k, spread=spread)
            for k, f in enumerate(shifts)]


# A model name from a file name: markup and a table separator, no slash.
EVIL = "x|y<img src=x onerror=alert(1)>"


def full_run(path: Path, model: str = "net") -> Path:
    """Two runtimes x threads 1, 2, auto x batch 1, 4, and an int8 variant."""
    cells = []
    for i, (rt, variant, prec, base) in enumerate((("alpha", "default", "fp32", 10e6),
                                                   ("beta", "fast", "fp32", 8e6),
                                                   ("alpha", "int8", "int8", 4e6))):
        for t in (1, 2, None):
            for b in (1, 4):
                scale = b * (1.0 if t == 1 else 0.55)
                cells.append(Cell(rt, variant, t, b, noisy(base * scale, seed=i), prec,
                                  top1=0.9 if prec == "int8" else 1.0, model=model))
    write_run(path, cells)
    return path


def load_samples(name: str) -> list[int]:
    return json.loads((Path(__file__).parent / "data" / name).read_text())["samples"]
