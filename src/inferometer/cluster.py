"""A run's worker processes on the nodes of a Ray cluster.

Ray places and ships; it never times anything.  Each node takes one process of the sweep at a
time (or `slots_per_node`, each on its own disjoint CPU set), so no two measurements share a
machine's cores; the driver keeps that bookkeeping itself and pins each task to its node
(NodeAffinity, hard), asking Ray for the node's CPUs so no other Ray work lands beside it.  On
the node the task runs exactly what a local run runs (`executor.run_work`: the speed probe,
then a fresh worker process) and sends back the report, the outputs and the log; model files
the node lacks travel through Ray's object store.  Tasks are never retried: a retry on another
node would mix two machines' numbers into one process.  `ray` is imported here only, and only
when a cluster is asked for."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import UsageError
from .executor import Done, Node, Work, run_work
from .jobs import Job
from .measure.speed import Speed
from .models.ref import ModelRef
from .results.codec import from_dict, to_dict
from .results.schema import WorkerReport

LABEL = "machine-type"  # the node label that names a node's machine type (ray start --labels)
_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# passed on to the task processes of a remote cluster (local nodes inherit the whole env)
_FORWARD = ("INFEROMETER_RUNTIMES",)


@dataclass(frozen=True)
class ClusterSpec:
    """--cluster: "local:N" (N nodes on this machine, loopback), "auto" (RAY_ADDRESS or the
    cluster this driver runs in) or an address ("ray://head:10001", "head:6379")."""

    kind: str  # "local", "auto" or "address"
    nodes: int = 0
    address: str = ""

    def text(self) -> str:
        return {"local": f"local:{self.nodes}", "auto": "auto"}.get(self.kind, self.address)


def parse_cluster(text: str) -> ClusterSpec:
    t = text.strip()
    if t == "auto":
        return ClusterSpec("auto")
    if t.startswith("local"):
        m = re.fullmatch(r"local:(\d+)", t)
        if not m or not 1 <= int(m.group(1)) <= 16:
            raise UsageError(f"--cluster: '{t}': local:N takes N from 1 to 16 nodes")
        return ClusterSpec("local", int(m.group(1)))
    m = re.fullmatch(r"(?:ray://)?([\w.-]+):(\d+)", t)
    if not m:
        raise UsageError(f"--cluster: '{t}' is not local:N, auto, ray://HOST:PORT or HOST:PORT")
    return ClusterSpec("address", address=t)


def machine_type(labels: dict[str, str], machine: dict[str, object]) -> str:
    """A node's type: its `machine-type` label, else its CPU model and count as a slug (nodes
    of one cloud instance type agree on both)."""
    if labels.get(LABEL):
        return labels[LABEL]
    cpu = re.sub(r"\(r\)|\(tm\)|cpu|@.*$", "", str(machine.get("cpu_model", "")).lower())
    slug = re.sub(r"[^a-z0-9]+", "-", cpu).strip("-") or "cpu"
    return f"{slug}-{machine.get('usable_cpus') or machine.get('logical_cpus')}cpu"


def refusals(found: dict[str, str], version: str = __version__) -> dict[str, str]:
    """Nodes whose inferometer differs from the driver's -> the line that refuses them: two
    versions may time or pool differently, and a sweep must not mix them."""
    return {node: (f"node {node} runs inferometer {v}, the driver {version}: refused; "
                   f"install inferometer {version} there")
            for node, v in found.items() if v != version}


# -- on the node ------------------------------------------------------------------------------

def _describe() -> dict[str, Any]:
    """What a node says of itself (a Ray task run on it)."""
    from .measure.machine import machine_info

    return {"version": __version__, "machine": machine_info(),
            "cpus": sorted(os.sched_getaffinity(0)), "python": sys.executable}


_STAGE = Path(os.environ.get("INFEROMETER_CACHE", Path.home() / ".cache" / "inferometer"))


def _stage(path: str, size: int, digest: str, ref: list[Any]) -> str:
    """The driver's file at `path`, here: the path itself where this node sees the same file
    (a shared disk), else a copy from the object store kept under the node's cache."""
    p = Path(path)
    if p.is_file() and p.stat().st_size == size:
        return path
    import ray

    dest = _STAGE / "cluster-files" / digest / p.name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(ray.get(ref[0]))
        tmp.replace(dest)
    return str(dest)


_STARTED = "started"  # the task's first item: Ray gave it the node's CPUs
_SCRATCH = "inferometer-node-"  # + the task process's pid: a task's scratch directory


def _sweep_stale() -> None:
    """Scratch directories of task processes that died (a node's raylet killed, a forced
    cancel): nothing else removes them, and each holds a report with every sample."""
    import shutil

    for d in Path(tempfile.gettempdir()).glob(f"{_SCRATCH}*-*"):
        pid = d.name.removeprefix(_SCRATCH).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _node_task(work_data: dict[str, Any], files: dict[str, tuple[int, str, list[Any]]],
               cpus: list[int] | None) -> Iterator[Any]:
    """One work on this node: files staged, paths made local, the process pinned to the
    slot's CPUs; back come the report, the outputs file and the log.  A generator: its first
    item says the task started, so the driver can tell a process that waits in Ray's queue
    (the node's CPUs held by other work) from one that runs long."""
    yield _STARTED
    work = from_dict(Work, work_data)
    job = work.job

    def local(path: str | None) -> str | None:
        return None if path is None or path not in files else _stage(path, *files[path])

    m = job.model
    model = dataclasses.replace(
        m, onnx_path=local(m.onnx_path) or m.onnx_path, torch_weights=local(m.torch_weights),
        torch_program=local(m.torch_program), calibration=local(m.calibration),
        data=tuple((k, local(v) or v) for k, v in m.data))
    _sweep_stale()
    with tempfile.TemporaryDirectory(prefix=f"{_SCRATCH}{os.getpid()}-") as tmp:
        out = str(Path(tmp) / "outputs.npz") if job.outputs_path else None
        job = dataclasses.replace(job, model=model, report_path=str(Path(tmp) / "report.json"),
                                  outputs_path=out,
                                  dataset_path=local(job.dataset_path) or job.dataset_path)
        log = Path(tmp) / "worker.log"
        before = os.sched_getaffinity(0)
        if cpus:
            os.sched_setaffinity(0, cpus)  # the worker inherits the slot's CPUs
        try:
            report, wall, probe = run_work(dataclasses.replace(work, job=job, log_path=str(log)))
        finally:
            os.sched_setaffinity(0, before)
        result = {"report": to_dict(report), "wall": wall,
                  "probe": to_dict(probe) if probe else None,
                  "outputs": Path(out).read_bytes() if out and Path(out).exists() else None,
                  "log": log.read_text(errors="replace") if log.exists() else ""}
    # yielded once the directory is gone: a worker stopped right after its last item (the
    # driver shutting the cluster down) would otherwise leave the directory behind
    yield result


# -- on the driver ----------------------------------------------------------------------------

@dataclass
class _Slot:
    node: Node
    cpus: list[int] | None
    num_cpus: float
    num_gpus: float = 0.0  # the node's GPUs over its slots, asked for by CUDA work only
    busy: bool = False


@dataclass
class _Task:
    tag: Any
    work: Work
    slot: _Slot
    sent: float  # monotonic time of the submit
    started: bool = False
    said: float = 0.0  # when the last "waiting" line was written


def _failed(t: _Task, error: str) -> tuple[Any, Any]:
    """A process that never reported: failed with why, on the node it was sent to."""
    return (t.tag, Done(t.work, WorkerReport(status="failed", error=error), 0.0,
                        t.slot.node.id))


class RayExecutor:
    """The executor protocol over a Ray cluster (see the module's docstring)."""

    def __init__(self, spec: ClusterSpec, slots_per_node: int = 1, timeout_s: float = 60.0,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> None:
        loopback = spec.kind == "local" or re.match(r"(ray://)?(127\.0\.0\.1|localhost):",
                                                     spec.address) is not None
        if loopback:
            # before Ray is imported (it reads them then), or it resolves 127.0.0.1 to the
            # machine's own address and looks for the cluster there
            os.environ.update(_LOOPBACK)
        try:
            import ray
            from ray._private import ray_constants
        except ImportError:
            raise UsageError("--cluster needs Ray: pip install 'inferometer[cluster]' "
                             "(or pip install 'ray==2.60.*')") from None
        if loopback:  # Ray was imported before us (an API user's program): tell it now
            ray_constants.ENABLE_RAY_CLUSTER = False
        self.spec = spec
        self.log = log
        self._ray = ray
        self._cluster: Any = None
        self._files: dict[str, tuple[int, str, list[Any]]] = {}
        self._running: dict[Any, _Task] = {}  # Ray's generator of each task -> its task
        self._placed: dict[str, dict[str, int]] = {}  # cell id -> node -> processes sent
        self.refused: dict[str, str] = {}
        self.timeout_s = timeout_s
        self._connect(spec, timeout_s)
        self.slots = self._nodes(slots_per_node, timeout_s)
        self.nodes = tuple({s.node.id: s.node for s in self.slots}.values())

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, spec: ClusterSpec, timeout_s: float) -> None:
        ray = self._ray
        if spec.kind == "local":
            from ray.cluster_utils import Cluster

            logging.getLogger("ray").setLevel(logging.WARNING)  # its start-up chatter
            per = max(1, len(os.sched_getaffinity(0)) // spec.nodes)
            args = {"node_ip_address": "127.0.0.1", "num_cpus": per,
                    "include_dashboard": False}
            t0 = time.monotonic()
            self._cluster = Cluster(initialize_head=True, head_node_args=dict(args))
            for _ in range(spec.nodes - 1):
                self._cluster.add_node(**args)
            ray.init(address=self._cluster.address, logging_level="ERROR",
                     log_to_driver=False)
            self.log(f"cluster: {spec.nodes} local Ray node(s) on 127.0.0.1 "
                     f"({time.monotonic() - t0:.1f} s)")
            return
        address = spec.address if spec.kind == "address" else os.environ.get("RAY_ADDRESS",
                                                                              "auto")
        m = re.fullmatch(r"(?:ray://)?([\w.-]+):(\d+)", address)
        if m:  # an address that answers nothing fails in one line, not after Ray's retries
            try:
                socket.create_connection((m.group(1), int(m.group(2))),
                                         timeout=min(timeout_s, 10.0)).close()
            except OSError as exc:
                raise UsageError(f"--cluster: cannot reach a Ray cluster at {address}: "
                                 f"{exc}") from None
        env = {k: os.environ[k] for k in _FORWARD if k in os.environ}
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False,
                     runtime_env={"env_vars": env})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"--cluster {spec.text()}: no Ray cluster answered "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                             ) from None

    def _nodes(self, slots_per_node: int, timeout_s: float) -> list[_Slot]:
        """Every live node described by a task run on it; nodes of another inferometer
        version refused; each node's CPUs split into its slots."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        describe = ray.remote(_describe)
        refs = {n["NodeID"]: describe.options(
            num_cpus=0, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote() for n in alive.values()}
        found: dict[str, dict[str, Any]] = {}
        for nid, ref in refs.items():
            short = nid[:8]
            try:
                found[short] = {**ray.get(ref, timeout=timeout_s), "_id": nid,
                                "_info": alive[nid]}
            except Exception as exc:
                cause = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                self.refused[short] = (f"node {short} cannot run inferometer's task ({cause}); "
                                       f"install inferometer {__version__} there")
        self.refused.update(refusals({k: v["version"] for k, v in found.items()}))
        for line in self.refused.values():
            self.log(f"cluster: {line}")
        slots = []
        shared = self.spec.kind == "local"
        for k, (short, d) in enumerate(sorted(found.items())):
            if short in self.refused:
                continue
            cpus = list(d["cpus"])
            if shared:  # local nodes share this machine: each its own part of its CPUs
                per = max(1, len(cpus) // self.spec.nodes)
                cpus = [cpus[(k * per + j) % len(cpus)] for j in range(per)]
            n_slots = max(1, min(slots_per_node, len(cpus)))
            per_slot = len(cpus) // n_slots
            labels = d["_info"].get("Labels") or {}
            machine = {**d["machine"], "usable_cpus": len(cpus), "ray_node_id": d["_id"],
                       "address": d["_info"].get("NodeManagerAddress"),
                       "python": d["python"], "inferometer": d["version"]}
            if shared:
                machine["note"] = (f"one of {self.spec.nodes} Ray nodes on this one machine "
                                   "(local cluster, for trying it out): its timings share the "
                                   "machine's memory and caches with the others'")
            node = Node(short, machine_type(labels, machine), n_slots, machine)
            ray_cpus = float(d["_info"].get("Resources", {}).get("CPU", 0.0))
            ray_gpus = float(d["_info"].get("Resources", {}).get("GPU", 0.0))
            for j in range(n_slots):
                slot_cpus = (cpus[j * per_slot:(j + 1) * per_slot]
                             if n_slots > 1 or shared else None)
                slots.append(_Slot(node, slot_cpus, ray_cpus / n_slots, ray_gpus / n_slots))
        if not slots:
            raise UsageError(f"--cluster {self.spec.text()}: no usable node "
                             f"({'; '.join(self.refused.values()) or 'the cluster has none'})")
        return slots

    # -- the executor protocol ----------------------------------------------------------------
    def _free_slot(self, machine_type: str | None, node: str | None,
                   cell: str = "") -> _Slot | None:
        """A free slot for the work on a node that has run the fewest of this cell's
        processes among the live nodes of its type: a cell's processes spread over the nodes
        instead of all landing on one (node and configuration would be confounded).  None
        while every such node is busy: a later job of another cell may take the free one."""
        fit = [s for s in self.slots
               if (node is None or s.node.id == node)
               and (machine_type is None or s.node.machine_type == machine_type)]
        placed = self._placed.get(cell, {})
        least = min((placed.get(s.node.id, 0) for s in fit), default=0)
        return next((s for s in fit if not s.busy and placed.get(s.node.id, 0) == least), None)

    def free(self, machine_type: str | None = None, node: str | None = None,
             cell: str = "") -> bool:
        return self._free_slot(machine_type, node, cell) is not None

    def why_not(self, machine_type: str | None) -> str:
        what = f"of machine type {machine_type} " if machine_type else ""
        gone = [n.id for n in self.lost]
        return (f"no live node {what}in the cluster" +
                (f" (lost: {', '.join(gone)})" if gone else "") +
                "; resume the run when one is back: inferometer run --resume RUN_DIR")

    @property
    def lost(self) -> list[Node]:
        return [n for n in self.nodes if not any(s.node.id == n.id for s in self.slots)]

    def _shipped(self, job: Job) -> dict[str, tuple[int, str, list[Any]]]:
        """The job's files as (size, digest, [object ref]): put in the object store once a
        run; a node fetches one only when it does not see the driver's file itself."""
        m: ModelRef = job.model
        paths = [m.onnx_path, m.torch_weights, m.torch_program, m.calibration,
                 job.dataset_path, *(v for _, v in m.data)]
        out = {}
        for p in filter(None, paths):
            if p not in self._files and Path(p).is_file():
                data = Path(p).read_bytes()
                self._files[p] = (len(data), hashlib.sha256(data).hexdigest()[:16],
                                  [self._ray.put(data)])
            if p in self._files:
                out[p] = self._files[p]
        return out

    def submit(self, work: Work, tag: Any) -> str:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cell = work.job.spec.id
        slot = self._free_slot(work.machine_type, work.node, cell)
        if slot is None:
            raise RuntimeError("submit without a free slot")  # the runner asks free() first
        slot.busy = True
        counts = self._placed.setdefault(cell, {})
        counts[slot.node.id] = counts.get(slot.node.id, 0) + 1
        # CUDA work asks for the slot's share of the node's GPUs, so Ray sets its visible
        # devices; on a node without GPUs it asks none and the worker says there is no CUDA
        gpus = slot.num_gpus if work.job.spec.device == "cuda" else 0.0
        task = self._ray.remote(_node_task).options(
            num_cpus=slot.num_cpus, num_gpus=gpus, max_retries=0, num_returns="streaming",
            scheduling_strategy=NodeAffinitySchedulingStrategy(
                slot.node.machine["ray_node_id"], soft=False))
        gen = task.remote(to_dict(work), self._shipped(work.job), slot.cpus)
        self._running[gen] = _Task(tag, work, slot, time.monotonic())
        return slot.node.id

    def wait(self) -> list[tuple[Any, Any]]:
        """The next finished process.  A process Ray has not started (the node's CPUs held
        by work outside this sweep) is said every while, and fails once it has waited
        --cluster-timeout: the run goes on and `--resume` retries it."""
        ray = self._ray
        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1,
                                timeout=max(0.5, min(5.0, self.timeout_s / 4)))
            for gen in ready:
                t = self._running[gen]
                item, exc = self._next(gen)
                if exc is not None or item != _STARTED or t.started:
                    return [self._finish(gen, item, exc)]
                t.started = True
                if t.said:
                    self.log(f"cluster: node {t.slot.node.id} started {t.work.job.spec.id} "
                             f"after {time.monotonic() - t.sent:.0f} s in Ray's queue")
            if not ready:
                timed_out = self._waiting()
                if timed_out:
                    return timed_out

    def _next(self, gen: Any) -> tuple[Any, Exception | None]:
        """The task's next item, or the error that came instead."""
        try:
            return self._ray.get(next(gen)), None
        except StopIteration:
            return None, RuntimeError("the task ended without a report")
        except self._ray.exceptions.RayError as exc:
            return None, exc

    def _waiting(self) -> list[tuple[Any, Any]]:
        now, out = time.monotonic(), []
        for gen, t in list(self._running.items()):
            if t.started:
                continue
            waited = now - t.sent
            if waited >= self.timeout_s:
                self._ray.cancel(gen, force=True)
                del self._running[gen]
                t.slot.busy = False
                self.log(f"cluster: {t.work.job.spec.id} not started on node {t.slot.node.id} "
                         f"within --cluster-timeout {self.timeout_s:g} s; failed")
                out.append(_failed(t, f"not started: node {t.slot.node.id} had no free "
                    f"CPUs for {waited:.0f} s (--cluster-timeout {self.timeout_s:g} s; other "
                    "work holds them); resume the run when the cluster is free: inferometer "
                    "run --resume RUN_DIR"))
            elif now - (t.said or t.sent) >= min(30.0, max(2.0, self.timeout_s / 3)):
                t.said = now
                self.log(f"cluster: waiting {waited:.0f} s for node {t.slot.node.id} to start "
                         f"{t.work.job.spec.id}: Ray has not given it the node's CPUs (other "
                         f"work holds them); failing it after {self.timeout_s:g} s")
        return out

    def _finish(self, gen: Any, r: Any, exc: Exception | None) -> tuple[Any, Any]:
        errors = self._ray.exceptions
        t = self._running.pop(gen)
        work, slot = t.work, t.slot
        slot.busy = False
        if isinstance(exc, (errors.NodeDiedError, errors.TaskUnschedulableError,
                            errors.WorkerCrashedError)):
            self._drop(slot.node)
            return _failed(t, f"node lost: node {slot.node.id} "
                           f"({slot.node.machine.get('address')}) left the cluster while "
                           f"running this process ({type(exc).__name__}); resume to run it "
                           "on a live node")
        if exc is not None:
            first = str(exc).strip().splitlines()[-1][:300] if str(exc) else type(exc).__name__
            return _failed(t, f"on node {slot.node.id}: {first}")
        if r["outputs"] is not None and work.job.outputs_path:
            Path(work.job.outputs_path).write_bytes(r["outputs"])
        Path(work.log_path).write_text(r["log"])
        return (t.tag, Done(work, from_dict(WorkerReport, r["report"]), r["wall"],
                            slot.node.id, from_dict(Speed, r["probe"]) if r["probe"] else None))

    def _drop(self, node: Node) -> None:
        """A node that died takes no more work (Ray would refuse it anyway)."""
        self.slots = [s for s in self.slots if s.node.id != node.id]
        self.log(f"cluster: node {node.id} lost; its running processes failed")

    def close(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()

    def shutdown(self) -> None:
        """Leave the cluster (and stop it, when this driver started it: local:N)."""
        self.close()
        self._ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None
