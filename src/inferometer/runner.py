"""The orchestrator: each cell measured in `repeat` fresh worker processes, scheduled
interleaved across the cells (or as asked), a timeout per process, results saved as each
process finishes, resume down to the process.  The processes run through an executor (this
machine, or a Ray cluster's nodes, as many at once as it has free slots); the parent blocks
on them (no busy-waiting) and never imports a runtime itself."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__, envs
from .executor import Done, Executor, Local, Work
from .integrity import compare_outputs
from .jobs import Job
from .measure.speed import Speed
from .models.ref import ModelRef
from .plan import Plan
from .results.export import to_csv
from .results.pooling import pool
from .results.rounds import with_rounds
from .results.schema import (
    ORDERS,
    SCHEMA_VERSION,
    CellResult,
    CellSpec,
    Integrity,
    ProcessResult,
    RunResult,
    WorkerReport,
    processes_wanted,
)
from .results.store import ProcessSamples, RunDir, atomic_write
from .runtimes.base import converts_per_shape, variant
from .stats import summarize


@dataclass(frozen=True)
class Event:
    kind: str  # "reference", "convert", "start", "done", "skip"
    index: int
    total: int
    spec: CellSpec
    cell: CellResult | None = None
    rep: int = 0  # which of the cell's processes
    repeat: int = 1  # processes per cell
    process: ProcessResult | None = None  # "done": the process that just finished
    node: str = ""  # "start", "done": the node it runs on (with a cluster)


def schedule(cells: Sequence[CellSpec], repeat: int, order: str, seed: str = "",
             first: int = 0, wanted: dict[str, int] | None = None) -> list[tuple[CellSpec, int]]:
    """The order of the (cell, process) jobs: processes `first` .. `repeat` - 1 of every
    cell (or .. wanted[cell id] - 1).  Interleaved: every cell's first process, then every
    cell's second, ...: slow drift of the machine (heat, neighbours, frequency) then hits
    every cell alike instead of making the late cells look slower.  Random: a shuffle,
    seeded by `seed` so a resumed run keeps its order."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}")
    count = {c.id: (wanted or {}).get(c.id, repeat) for c in cells}
    if order == "sequential":
        return [(c, k) for c in cells for k in range(first, count[c.id])]
    jobs = [(c, k) for k in range(first, max(count.values(), default=0)) for c in cells
            if k < count[c.id]]
    if order == "random":
        random.Random(f"{seed}/{first}").shuffle(jobs)
        # a cell's processes keep their numbering in time: process k runs before k+1
        seen: dict[str, int] = {}
        renumbered = []
        for c, _ in jobs:
            renumbered.append((c, seen.get(c.id, first)))
            seen[c.id] = seen.get(c.id, first) + 1
        jobs = renumbered
    return jobs


class Runner:
    def __init__(self, plan: Plan, rundir: RunDir, machine: dict[str, object], created: str,
                 on_event: Callable[[Event], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.plan = plan
        self.executor = executor or Local(machine)
        self.rundir = rundir
        self.machine = machine
        self.created = created
        self.on_event = on_event or (lambda e: None)
        self.references: dict[str, str] = {}
        self.conversions: dict[str, str] = {}
        self.failed_conversions: dict[str, str] = {}
        self.cells: dict[str, CellResult] = {}
        # each cell's finished processes and their raw records, in the order they ran
        self.procs: dict[str, list[ProcessResult]] = {}
        self.raw: dict[str, list[ProcessSamples]] = {}

    # -- assembly -----------------------------------------------------------------------------
    def result(self, status: str) -> RunResult:
        s = self.plan.settings
        return RunResult(schema_version=SCHEMA_VERSION, kind="run", tool_version=__version__,
                         created=self.created, status=status, command=self.plan.command,
                         machine=self.machine, settings=s,
                         models=tuple(m.info() for m in self.plan.models),
                         cells=with_rounds([self.cells[c.id] for c in self.plan.cells
                                            if c.id in self.cells], s),
                         references=dict(self.references),
                         conversions=dict(self.conversions),
                         machines={n.id: {"machine_type": n.machine_type, "slots": n.slots,
                                          **n.machine} for n in self.executor.nodes})

    def _save(self, status: str) -> RunResult:
        run = self.result(status)
        self.rundir.write_results(run)
        atomic_write(self.rundir.path / "results.csv", to_csv(run))
        return run

    # -- execution ----------------------------------------------------------------------------
    def _restore(self) -> None:
        """A resumed run keeps every process that finished, even in a cell that did not: a run
        killed between the processes of one cell runs only the missing ones.  A process whose
        raw samples are not on disk is run again (its figures could not be recomputed)."""
        prev = self.rundir.load() if (self.rundir.path / "results.json").exists() else None
        if prev:
            self.references = dict(prev.references)
            self.conversions = dict(prev.conversions)
        for cid, cell in self.rundir.finished_cells().items():
            raw = {r["rep"]: r for r in self.rundir.process_samples(cid) if r.get("samples")}
            kept = [p for p in cell.processes if p.rep in raw]
            if not kept:
                continue
            self.procs[cid] = kept
            self.raw[cid] = [raw[p.rep] for p in kept]
            self.cells[cid] = self._pooled(replace(cell, status="ok", error=None), cid)

    def _wanted(self, cid: str) -> int:
        """The processes this cell gets (more than `repeat` only under --repeat auto, once
        its first ones show they are cheap)."""
        walls = [p.wall_s or 0.0 for p in sorted(self.procs.get(cid, ()), key=lambda p: p.rep)]
        return processes_wanted(self.plan.settings, walls)

    def _complete(self, cid: str) -> bool:
        c = self.cells.get(cid)
        return (c is not None and c.status == "ok"
                and len(self.procs.get(cid, ())) >= self._wanted(cid))

    def execute(self, resume: bool = False) -> RunResult:
        if resume:
            self._restore()
        s = self.plan.settings
        pending = [c for c in self.plan.cells if not self._complete(c.id)]
        self._save("running")
        jobs = schedule(self.plan.cells, s.repeat, s.order, seed=self.created)
        try:
            self._references(pending)
            self._conversions(pending)
            self._measure(jobs)
            if s.repeat_max > s.repeat:
                # --repeat auto: the cells whose processes proved cheap get more of them,
                # scheduled as the first ones were (a failed cell gets none: any failed
                # process fails its cell)
                ok = [c for c in self.plan.cells
                      if (cell := self.cells.get(c.id)) is not None and cell.status == "ok"]
                more = schedule(ok, s.repeat, s.order, seed=self.created, first=s.repeat,
                                wanted={c.id: self._wanted(c.id) for c in ok})
                self._measure(more, before=len(jobs))
        except BaseException:
            self._save("interrupted")
            raise
        finally:
            self.executor.close()
        return self._save("complete")

    def _measure(self, jobs: list[tuple[CellSpec, int]], before: int = 0) -> None:
        """Start the jobs in their scheduled order as slots free up (one at a time on this
        machine); a job waits for a slot of its cell's machine type without holding back a
        later job another type could take now.  `before` counts jobs already done (for the
        progress line)."""
        queue = [(spec, rep, {"index": before + i, "total": before + len(jobs), "spec": spec,
                              "rep": rep, "repeat": self._wanted(spec.id)})
                 for i, (spec, rep) in enumerate(jobs, 1)]
        failed_now: set[str] = set()

        def finish(spec: CellSpec, rep: int, report: WorkerReport, done: Done | None,
                   ev: dict, node: str = "") -> None:
            cell, proc = self._finish(spec, rep, report, done)
            if cell.status != "ok":
                failed_now.add(spec.id)
            self._save("running")
            ev = {**ev, "repeat": self._wanted(spec.id)}  # known once its first ones ran
            self.on_event(Event("done", cell=cell, process=proc, node=node, **ev))

        running = 0
        while queue or running:
            for item in list(queue):
                spec, rep, ev = item
                done = {p.rep for p in self.procs.get(spec.id, ())}
                if rep in done or spec.id in failed_now:
                    # finished earlier, or the cell failed in this run: a failure in one
                    # process (a crash, a missing op) would repeat in the next
                    queue.remove(item)
                    self.on_event(Event("skip", cell=self.cells.get(spec.id), **ev))
                    continue
                failed = self.failed_conversions.get(self.plan.conversion_of(spec) or "")
                if failed:
                    queue.remove(item)
                    self.on_event(Event("start", **ev))
                    finish(spec, rep, WorkerReport("failed", failed), None, ev)
                    continue
                if not self.executor.free(spec.machine, cell=spec.id):
                    continue
                queue.remove(item)
                node = self.executor.submit(self._process_work(spec, rep), item)
                running += 1
                self.on_event(Event("start", node=node, **ev))
            if not running:
                # nothing could start and nothing runs: no live node can take these jobs
                for spec, rep, ev in queue:
                    reason = self.executor.why_not(spec.machine)
                    finish(spec, rep, WorkerReport("failed", reason), None, ev)
                return
            for (spec, rep, ev), result in self.executor.wait():
                running -= 1
                finish(spec, rep, result.report, result, ev, result.node)

    def _run(self, work: Work) -> Done:
        """One work through the executor, nothing else in flight (references, conversions)."""
        self.executor.submit(work, None)
        return self.executor.wait()[0][1]

    def _references(self, pending: list[CellSpec]) -> None:
        """One reference job per (model, input shapes): the reference runtime's default
        variant."""
        name = self.plan.settings.reference_runtime
        rt = self.plan.runtime(name)()
        seen: dict[str, CellSpec] = {}
        for c in pending:
            seen.setdefault(self.plan.reference_key(c), c)
        for i, (key, c) in enumerate(seen.items(), 1):
            out = self.rundir.path / "outputs" / f"reference.{key}.npz"
            if out.exists():
                continue
            avail = envs.availability(name)
            if not avail.available:
                self.references[key] = f"none: reference runtime {name} not installed"
                continue
            if rt.supports(self.plan.model(c.model)) is not None:
                self.references[key] = f"none: {name} cannot run {c.model}"
                continue
            spec = CellSpec(c.model, name, rt.default_variants[0], None, c.batch, dims=c.dims)
            self.on_event(Event("reference", i, len(seen), spec))
            report = self._run(self._work(spec, f"reference.{key}", str(out),
                                          mode="reference", probe=False)).report
            self.references[key] = (f"{name} {report.runtime_version} {spec.variant}"
                                    if report.status == "ok" else f"none: {report.error}")

    def _conversions(self, pending: list[CellSpec]) -> None:
        """Runtimes with their own model format convert once per (model, variant), each in
        a worker of the runtime's environment; a failed conversion fails its cells."""
        todo: dict[str, CellSpec] = {}
        for c in pending:
            if (key := self.plan.conversion_of(c)) is not None:
                todo.setdefault(key, c)
        for i, (key, c) in enumerate(todo.items(), 1):
            per_shape = converts_per_shape(self.plan.runtime(c.runtime),
                                           self.plan.model(c.model))
            spec = CellSpec(c.model, c.runtime, c.variant, None, c.batch if per_shape else 1,
                            dims=c.dims)
            self.on_event(Event("convert", i, len(todo), spec))
            # each node converts into its own cache (a hit where nodes share a disk), one node
            # after the other so no two write the same cache at once
            for node in self.executor.nodes:
                report = self._run(self._work(spec, f"convert.{key}", None, mode="convert",
                                              node=node.id, probe=False)).report
                if report.status != "ok":
                    where = f" on node {node.id}" if len(self.executor.nodes) > 1 else ""
                    self.conversions[key] = f"failed{where}: {report.error}"
                    self.failed_conversions[key] = f"conversion failed{where}: {report.error}"
                    break
                self.conversions[key] = report.settings.get("conversion", "done")

    def _work(self, spec: CellSpec, stem: str, outputs: str | None, mode: str = "measure",
              node: str | None = None, probe: bool = True) -> Work:
        s = self.plan.settings
        job = Job(spec=spec, model=self.plan.model(spec.model), length=self.plan.length,
                  preprocess_timed=s.preprocess_timed, pin=s.pin,
                  report_path=str(self.rundir.path / "logs" / f"{stem}.report.json"),
                  outputs_path=outputs, mode=mode)
        return Work(job, str(self.rundir.path / "logs" / f"{stem}.log"), s.timeout_s,
                    machine_type=spec.machine, node=node, probe=probe)

    def _process_work(self, spec: CellSpec, rep: int) -> Work:
        out = self.rundir.file("outputs", spec.id, ".npz")
        # the integrity outputs come from the cell's first process that succeeds
        outputs = None if out.exists() else str(out)
        s = self.plan.settings
        stem = spec.id if max(s.repeat, s.repeat_max) == 1 else f"{spec.id}.p{rep}"
        return self._work(spec, stem, outputs)

    def _finish(self, spec: CellSpec, rep: int, report: WorkerReport,
                done: Done | None) -> tuple[CellResult, ProcessResult | None]:
        """A finished process of a cell: the cell is pooled again from every process it has
        and saved (samples first), so a kill loses at most the processes in flight."""
        out = self.rundir.file("outputs", spec.id, ".npz")
        wall = done.wall_s if done else 0.0
        cid = spec.id
        proc = None
        if report.status != "ok":
            precision = variant(self.plan.runtime(spec.runtime), spec.variant).precision
            prev = self.cells.get(cid)
            base = prev or CellResult(spec=spec, status="failed", precision=precision)
            cell = replace(base, status="failed", error=report.error,
                           wall_s=(base.wall_s or 0.0) + wall)
        else:
            assert done is not None
            proc = _process(rep, report, wall, done.probe, done.node)
            self.procs.setdefault(cid, []).append(proc)
            self.raw.setdefault(cid, []).append(
                {"rep": rep, "first": report.first_ns, "warmup": list(report.warmup_ns),
                 "samples": list(report.samples_ns), "device": list(report.device_samples_ns)})
            base = self.cells.get(cid)
            if base is None or base.status != "ok":
                base = self._cell(spec, report, out)
            cell = self._pooled(base, cid)
        self.cells[cid] = cell
        self.rundir.save_cell(cell, self.raw.get(cid))
        return cell, proc

    def _pooled(self, base: CellResult, cid: str) -> CellResult:
        s = self.plan.settings
        raw = self.raw[cid]
        return pool(base, self.procs[cid], [r["samples"] for r in raw],
                    [r.get("device") or [] for r in raw], target_rel_ci=s.target_rel_ci,
                    max_spread=s.max_spread, noisy_threshold=s.noisy_threshold)

    def _integrity(self, spec: CellSpec, precision: str, out: Path) -> Integrity | None:
        key = self.plan.reference_key(spec)
        ref_path = self.rundir.path / "outputs" / f"reference.{key}.npz"
        if not (out.exists() and ref_path.exists()):
            return None
        ref_name = self.references.get(key, "reference")
        io = self.plan.model(spec.model).io
        try:
            return compare_outputs(_arrays(out), _arrays(ref_path), precision, ref_name,
                                   [o.name for o in io.outputs], [o.kind for o in io.outputs])
        except ValueError as exc:
            nan = float("nan")
            return Integrity(ref_name, precision, nan, nan, nan, None, False, str(exc))

    def _cell(self, spec: CellSpec, r: WorkerReport, out: Path) -> CellResult:
        """What a cell's processes share (versions, settings, libraries, integrity), from the
        first one that succeeded; the figures are pooled in by `pool`."""
        region = timed_region(self.plan.model(spec.model), self.plan.settings.preprocess_timed)
        return CellResult(
            spec=spec, status="ok", runtime_version=r.runtime_version, precision=r.precision,
            settings=r.settings, timed_region=region, libraries=r.libraries,
            integrity=self._integrity(spec, r.precision, out) if out.exists() else None,
            device_memory_mb=r.device_memory_mb)


def timed_region(model: ModelRef, preprocess_timed: bool) -> str:
    if not model.io.has_image:
        return ("inference only: inputs generated and converted to the runtime's form (and "
                "device) before timing")
    if preprocess_timed:
        return "uint8 NHWC -> runtime input + inference"
    return "inference only (input prepared before timing)"


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{k}"] for k in range(len(f.files))]


def _process(rep: int, r: WorkerReport, wall: float, probe: Speed | None,
             node: str) -> ProcessResult:
    return ProcessResult(
        rep=rep, summary=summarize(r.samples_ns), first_ms=(r.first_ns or 0) / 1e6,
        load_s=r.load_s, stop_reason=r.stop_reason, other_load=r.other_load,
        rss_after_load_mb=r.rss_after_load_mb, peak_rss_after_load_mb=r.peak_rss_after_load_mb,
        peak_rss_mb=r.peak_rss_mb, wall_s=wall, cpu_affinity=r.cpu_affinity,
        device_summary=summarize(r.device_samples_ns) if r.device_samples_ns else None,
        probe_ms=probe.loop_ms if probe else None, gemm_ms=probe.gemm_ms if probe else None,
        node=node)
