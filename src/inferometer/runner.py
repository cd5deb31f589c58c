"""The orchestrator: one fresh worker process per cell, a timeout per cell, results saved as
each cell finishes, resume.  The parent blocks on the child (no busy-waiting) and never imports
a runtime itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import __version__, envs, runtimes
from .integrity import compare
from .jobs import Job
from .models.ref import ModelRef
from .plan import Plan
from .results.codec import from_dict, to_dict
from .results.export import to_csv
from .results.schema import (
    SCHEMA_VERSION,
    CellResult,
    CellSpec,
    Integrity,
    ModelInfo,
    RunResult,
    WorkerReport,
)
from .results.store import RunDir, atomic_write
from .runtimes.base import needs_conversion, variant
from .stats import summarize, throughput

R = TypeVar("R")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TVM_NUM_THREADS")
_SRC = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Event:
    kind: str  # "reference", "convert", "start", "done", "skip"
    index: int
    total: int
    spec: CellSpec
    cell: CellResult | None = None


def worker_env(threads: int | None) -> dict[str, str]:
    """The child's environment: thread knobs set (or removed, for "auto") before the runtime
    is imported, and this package importable from any interpreter."""
    env = dict(os.environ)
    for var in _THREAD_VARS:
        if threads is None:
            env.pop(var, None)
        else:
            env[var] = str(threads)
    if threads is None:
        env.pop("TF_NUM_INTEROP_THREADS", None)
    else:
        env["TF_NUM_INTEROP_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, env.get("PYTHONPATH")]))
    return env


def spawn_worker(job: Job, log_path: Path, timeout_s: float,
                 python: str = sys.executable) -> WorkerReport:
    """Run one job in a fresh process; any way it can fail becomes a failed report."""
    return spawn("inferometer._worker", job, Path(job.report_path), WorkerReport,
                 job.spec.threads, log_path, timeout_s, python)


def spawn(module: str, job: Any, report_path: Path, report_cls: type[R], threads: int | None,
          log_path: Path, timeout_s: float, python: str = sys.executable) -> R:
    """`python -m module` with `job` as JSON on stdin; its report is read from `report_path`.
    A timeout kills the whole process group; a death without a report becomes a failed report
    (report_cls(status="failed", error=...)) that says how it died."""
    report_path.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([python, "-m", module], stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, text=True,
                                env=worker_env(threads), start_new_session=True)
        try:
            proc.communicate(json.dumps(to_dict(job)), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return report_cls(status="failed", error=f"timed out after {timeout_s:g} s")
        except BaseException:
            _kill(proc)
            raise
    if report_path.exists():
        report = from_dict(report_cls, json.loads(report_path.read_text()))
        report_path.unlink()
        return report
    rc = proc.returncode
    how = (f"killed by signal {signal.Signals(-rc).name}" if rc < 0
           else f"exited with code {rc}")
    if rc == -signal.SIGKILL:  # not our timeout (that returned above): most likely the kernel
        how += " (the kernel's OOM killer sends SIGKILL: did the batch fit in memory?)"
    tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    return report_cls(status="failed",
                      error=f"worker {how} without a report" + (f": {tail[0]}" if tail else ""))


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: runtimes spawn helpers
    proc.wait()


def _model_info(m: ModelRef) -> ModelInfo:
    return ModelInfo(m.name, "zoo" if m.torch_builder else m.onnx_path, m.sha256, m.input_name,
                     m.input_shape, m.output_kind)


class Runner:
    def __init__(self, plan: Plan, rundir: RunDir, machine: dict[str, object], created: str,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.plan = plan
        self.rundir = rundir
        self.machine = machine
        self.created = created
        self.on_event = on_event or (lambda e: None)
        self.models = {m.name: m for m in plan.models}
        self.references: dict[str, str] = {}
        self.conversions: dict[str, str] = {}
        self.failed_conversions: dict[str, str] = {}
        self.cells: dict[str, CellResult] = {}

    # -- assembly -----------------------------------------------------------------------------
    def result(self, status: str) -> RunResult:
        s = self.plan.settings
        return RunResult(schema_version=SCHEMA_VERSION, kind="run", tool_version=__version__,
                         created=self.created, status=status, command=self.plan.command,
                         machine=self.machine, settings=s,
                         models=tuple(_model_info(m) for m in self.plan.models),
                         cells=tuple(self.cells[c.id] for c in self.plan.cells
                                     if c.id in self.cells),
                         references=dict(self.references),
                         conversions=dict(self.conversions))

    def _save(self, status: str) -> RunResult:
        run = self.result(status)
        self.rundir.write_results(run)
        atomic_write(self.rundir.path / "results.csv", to_csv(run))
        return run

    # -- execution ----------------------------------------------------------------------------
    def execute(self, resume: bool = False) -> RunResult:
        if resume:
            prev = self.rundir.load() if (self.rundir.path / "results.json").exists() else None
            if prev:
                self.references = dict(prev.references)
                self.conversions = dict(prev.conversions)
            self.cells = {k: v for k, v in self.rundir.finished_cells().items()
                          if v.status == "ok"}
        pending = [c for c in self.plan.cells if c.id not in self.cells]
        self._save("running")
        try:
            self._references(pending)
            self._conversions(pending)
            for i, spec in enumerate(self.plan.cells, 1):
                if spec.id in self.cells:
                    self.on_event(Event("skip", i, len(self.plan.cells), spec, self.cells[spec.id]))
                    continue
                self.on_event(Event("start", i, len(self.plan.cells), spec))
                cell = self._run_cell(spec)
                self.cells[spec.id] = cell
                self._save("running")
                self.on_event(Event("done", i, len(self.plan.cells), spec, cell))
        except BaseException:
            self._save("interrupted")
            raise
        return self._save("complete")

    def _ref_key(self, spec: CellSpec) -> str:
        return f"{spec.model}.b{spec.batch}"

    def _references(self, pending: list[CellSpec]) -> None:
        """One reference job per (model, batch): the reference runtime's default variant."""
        name = self.plan.settings.reference_runtime
        rt = runtimes.get(name)()
        seen: dict[str, CellSpec] = {}
        for c in pending:
            seen.setdefault(self._ref_key(c), c)
        for i, (key, c) in enumerate(seen.items(), 1):
            out = self.rundir.path / "outputs" / f"reference.{key}.npy"
            if out.exists():
                continue
            avail = envs.availability(name)
            if not avail.available:
                self.references[key] = f"none: reference runtime {name} not installed"
                continue
            if rt.supports(self.models[c.model]) is not None:
                self.references[key] = f"none: {name} cannot run {c.model}"
                continue
            spec = CellSpec(c.model, name, rt.default_variants[0], None, c.batch)
            self.on_event(Event("reference", i, len(seen), spec))
            report = self._spawn(spec, f"reference.{key}", str(out), mode="reference")
            self.references[key] = (f"{name} {report.runtime_version} {spec.variant}"
                                    if report.status == "ok" else f"none: {report.error}")

    def _conversions(self, pending: list[CellSpec]) -> None:
        """Runtimes with their own model format convert once per (model, variant), each in
        a worker of the runtime's environment; a failed conversion fails its cells."""
        todo: dict[str, CellSpec] = {}
        for c in pending:
            if needs_conversion(runtimes.get(c.runtime), c.variant):
                todo.setdefault(f"{c.model}.{c.runtime}.{c.variant}", c)
        for i, (key, c) in enumerate(todo.items(), 1):
            spec = CellSpec(c.model, c.runtime, c.variant, None, 1)
            self.on_event(Event("convert", i, len(todo), spec))
            report = self._spawn(spec, f"convert.{key}", None, mode="convert")
            if report.status == "ok":
                self.conversions[key] = report.settings.get("conversion", "done")
            else:
                self.conversions[key] = f"failed: {report.error}"
                self.failed_conversions[key] = f"conversion failed: {report.error}"

    def _spawn(self, spec: CellSpec, stem: str, outputs: str | None,
               mode: str = "measure") -> WorkerReport:
        s = self.plan.settings
        job = Job(spec=spec, model=self.models[spec.model], length=self.plan.length,
                  preprocess_timed=s.preprocess_timed, pin=s.pin,
                  report_path=str(self.rundir.path / "logs" / f"{stem}.report.json"),
                  outputs_path=outputs, mode=mode)
        try:
            python = envs.python_for(spec.runtime)
        except envs.EnvError as exc:  # removed since the plan was made
            return WorkerReport(status="failed", error=str(exc))
        return spawn_worker(job, self.rundir.path / "logs" / f"{stem}.log", s.timeout_s, python)

    def _run_cell(self, spec: CellSpec) -> CellResult:
        t0 = time.monotonic()
        out = self.rundir.file("outputs", spec.id, ".npy")
        failed = self.failed_conversions.get(f"{spec.model}.{spec.runtime}.{spec.variant}")
        report = (WorkerReport(status="failed", error=failed) if failed
                  else self._spawn(spec, spec.id, str(out)))
        wall = time.monotonic() - t0
        cell = self._cell(spec, report, wall, out)
        samples = None
        if report.status == "ok":
            samples = {"unit": "ns", "first": report.first_ns, "warmup": list(report.warmup_ns),
                       "samples": list(report.samples_ns)}
        self.rundir.save_cell(cell, samples)
        return cell

    def _integrity(self, spec: CellSpec, precision: str, out: Path) -> Integrity | None:
        key = self._ref_key(spec)
        ref_path = self.rundir.path / "outputs" / f"reference.{key}.npy"
        if not (out.exists() and ref_path.exists()):
            return None
        ref_name = self.references.get(key, "reference")
        try:
            return compare(np.load(out), np.load(ref_path), precision, ref_name,
                           self.models[spec.model].output_kind)
        except ValueError as exc:
            nan = float("nan")
            return Integrity(ref_name, precision, nan, nan, nan, None, False, str(exc))

    def _cell(self, spec: CellSpec, r: WorkerReport, wall: float, out: Path) -> CellResult:
        if r.status != "ok":
            precision = variant(runtimes.get(spec.runtime), spec.variant).precision
            return CellResult(spec=spec, status="failed", error=r.error, precision=precision,
                              wall_s=wall)
        s, length = self.plan.settings, self.plan.length
        summary = summarize(r.samples_ns)
        unstable = r.stop_reason != "converged" and summary.rel_ci > length.target_rel_ci
        region = ("uint8 NHWC -> runtime input + inference" if s.preprocess_timed
                  else "inference only (input prepared before timing)")
        return CellResult(
            spec=spec, status="ok", runtime_version=r.runtime_version, precision=r.precision,
            settings=r.settings, timed_region=region, load_s=r.load_s,
            first_ms=(r.first_ns or 0) / 1e6, summary=summary,
            items_per_s=throughput(summary, spec.batch), stop_reason=r.stop_reason,
            unstable=unstable, other_load=r.other_load,
            noisy=(r.other_load or 0.0) > s.noisy_threshold,
            rss_after_load_mb=r.rss_after_load_mb, peak_rss_after_load_mb=r.peak_rss_after_load_mb,
            peak_rss_mb=r.peak_rss_mb, libraries=r.libraries,
            integrity=self._integrity(spec, r.precision, out) if r.has_outputs else None,
            wall_s=wall, cpu_affinity=r.cpu_affinity,
            device_summary=summarize(r.device_samples_ns) if r.device_samples_ns else None,
            device_memory_mb=r.device_memory_mb)
