"""Sweeps on a real Ray cluster, started inside the tests on 127.0.0.1 only (the machine's own
address is never a target): cells on both nodes, a lost node costing only its cells, resume
on the survivors, other inferometer versions refused, nothing listening beyond loopback."""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import QUICK, cli

from inferometer import __version__
from inferometer.cluster import ClusterSpec, RayExecutor, machine_type, parse_cluster, refusals
from inferometer.errors import UsageError

# set before Ray is imported: otherwise it resolves 127.0.0.1 to the machine's own address
os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})
ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install -e '.[all]'")

SRC = Path(__file__).resolve().parent.parent / "src"


def test_cluster_addresses_parse_and_bad_ones_are_usage_errors() -> None:
    assert parse_cluster("local:2") == ClusterSpec("local", 2)
    assert parse_cluster("auto").kind == "auto"
    assert parse_cluster("ray://head:10001").address == "ray://head:10001"
    assert parse_cluster("10.0.0.5:6379").kind == "address"
    for bad in ("local:0", "local:x", "local:99", "ray://", "http://x:1", "head"):
        with pytest.raises(UsageError):
            parse_cluster(bad)


def test_machine_types_come_from_the_label_else_the_cpu() -> None:
    machine = {"cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "usable_cpus": 8}
    assert machine_type({"machine-type": "c7i.2xlarge"}, machine) == "c7i.2xlarge"
    assert machine_type({}, machine) == "intel-xeon-platinum-8375c-8cpu"
    assert refusals({"a": __version__, "b": "0.0.1"}) == {
        "b": f"node b runs inferometer 0.0.1, the driver {__version__}: refused; "
             f"install inferometer {__version__} there"}


def test_importing_the_cluster_module_does_not_import_ray() -> None:
    code = "import sys, inferometer.cluster, inferometer.runner; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_an_unreachable_cluster_is_one_line_and_exit_2() -> None:
    t0 = time.monotonic()
    r = cli("run", "tinynet", "--runtimes", "null", "--cluster", "ray://127.0.0.1:9")
    assert r.returncode == 2, r.stderr
    assert "cannot reach a Ray cluster at ray://127.0.0.1:9" in r.stderr
    assert "Traceback" not in r.stderr and time.monotonic() - t0 < 30
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


def test_local_cluster_sweep_uses_both_nodes_and_matches_a_local_runs_structure(
        tmp_path: Path) -> None:
    args = ["tinynet", "--runtimes", "onnxruntime,null", "--threads", "1", *QUICK]
    scratch = Path(tempfile.gettempdir())  # where a node task works (this machine's here)
    before = set(scratch.glob("inferometer-node-*"))
    r = cli("run", *args, "--cluster", "local:2", "--output", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    # the CLI stops its cluster the moment the last result is in: no task's directory left
    assert set(scratch.glob("inferometer-node-*")) <= before
    assert "2 local Ray node(s) on 127.0.0.1" in r.stderr
    r2 = cli("run", *args, "--output", str(tmp_path / "l"))
    assert r2.returncode == 0, r2.stderr
    c, loc = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("c", "l"))
    assert c["settings"]["cluster"] == "local:2" and loc["settings"]["cluster"] is None
    # the same cells, the same fields, each process with its node
    assert [x["spec"] for x in c["cells"]] == [x["spec"] for x in loc["cells"]]
    for cc, lc in zip(c["cells"], loc["cells"], strict=True):
        assert cc["status"] == lc["status"] == "ok"
        assert set(cc) == set(lc) and len(cc["processes"]) == len(lc["processes"]) == 2
        assert cc["integrity"] is not None or cc["spec"]["runtime"] == "null"
    nodes = {p["node"] for x in c["cells"] for p in x["processes"]}
    assert len(c["machines"]) == 2 and nodes == set(c["machines"])
    # each cell's two processes on the two nodes: node and configuration not confounded
    assert all(len({p["node"] for p in x["processes"]}) == 2 for x in c["cells"])
    assert set(loc["machines"]) == {"local"}
    # each local node pinned to its own CPU(s): its processes never share one
    cpus = {n: {tuple(p["cpu_affinity"]) for x in c["cells"] for p in x["processes"]
                if p["node"] == n} for n in nodes}
    a, b = cpus.values()
    assert len(a) == len(b) == 1 and a != b
    assert not [p for p in psutil.process_iter(["name"]) if p.info["name"] == "raylet"
                and p.ppid() == os.getpid()]  # the CLI stopped its cluster


def _listening(root: psutil.Process) -> set[str]:
    """Addresses the process tree under `root` listens on (TCP)."""
    pids = {root.pid, *(p.pid for p in root.children(recursive=True))}
    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def _loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4's loopback
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.fixture
def cluster():  # type: ignore[no-untyped-def]
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "node_ip_address": "127.0.0.1", "num_cpus": 1, "include_dashboard": False})
    c.add_node(node_ip_address="127.0.0.1", num_cpus=1, num_gpus=1)  # a GPU only Ray counts
    yield c
    ray.shutdown()
    c.shutdown()


def _plan(argv: list[str]):  # type: ignore[no-untyped-def]
    from inferometer.cli import _parser
    from inferometer.commands.run import _new_plan

    args = _parser().parse_args(["run", *argv])
    args.command_line = ("inferometer", "run", *argv)
    return _new_plan(args)[0]


def test_a_lost_node_fails_only_its_cells_and_resume_completes_them(
        cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from inferometer.measure.machine import machine_info
    from inferometer.results.codec import to_dict
    from inferometer.results.store import RunDir
    from inferometer.runner import Runner

    ex = RayExecutor(ClusterSpec("address", address=cluster.address))
    assert len(ex.nodes) == 2
    listening = _listening(psutil.Process())
    assert listening, "found none of Ray's listening sockets: the check would see nothing"
    beyond = [a for a in listening if not _loopback(a)]
    assert not beyond, f"Ray listens beyond loopback: {beyond}"
    (worker,) = cluster.worker_nodes
    doomed = worker.node_id[:8]
    plan = _plan(["tinynet", "--runtimes", "null", "--threads", "1,2", "--batch", "1,2",
                  "--repeat", "1", "--min-time", "1.5", "--max-time", "1.5"])
    rundir = RunDir(tmp_path / "run")
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rundir.create({"created": created, "machine": machine_info(), "plan": to_dict(plan)})
    on_doomed: list[str] = []

    def on_event(e) -> None:  # type: ignore[no-untyped-def]
        if e.kind == "start" and e.node == doomed:
            on_doomed.append(e.spec.id)
            if len(on_doomed) == 1:  # mid-process: it has started and not finished
                threading.Timer(0.8, cluster.remove_node, args=(worker,)).start()

    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("inferometer-node-*"))
    run = Runner(plan, rundir, machine_info(), created, on_event, ex).execute()
    assert on_doomed, "no process went to the second node"
    failed = {c.spec.id: c.error for c in run.cells if c.status != "ok"}
    assert set(failed) == set(on_doomed) and len(failed) < len(plan.cells)
    assert all("node lost" in (e or "") for e in failed.values()), failed
    assert all(c.processes and c.processes[0].node != doomed for c in run.cells
               if c.status == "ok")
    again = Runner(plan, rundir, machine_info(), created, None, ex).execute(resume=True)
    assert [c.status for c in again.cells] == ["ok"] * len(plan.cells)
    # the lost node's task never cleaned up after itself (it was killed); a later task on
    # this machine swept its directory away
    assert set(scratch.glob("inferometer-node-*")) <= before
    assert {c.processes[0].node for c in again.cells if c.spec.id in failed} == {
        n.id for n in ex.nodes if n.id != doomed}


def test_a_cluster_with_no_free_cpus_says_so_and_fails_after_the_timeout(
        cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Work outside the sweep holds every node's CPUs: the process waits in Ray's queue with
    a progress line, fails after --cluster-timeout, and `--resume` runs it once they are free."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from inferometer.measure.machine import machine_info
    from inferometer.results.codec import to_dict
    from inferometer.results.store import RunDir
    from inferometer.runner import Runner

    lines: list[str] = []
    ex = RayExecutor(ClusterSpec("address", address=cluster.address), timeout_s=4.0,
                     log=lines.append)
    def _hold(seconds: float) -> None:  # other work on a node (local: Ray ships it by value)
        time.sleep(seconds)

    hold = ray.remote(_hold)
    blockers = [hold.options(num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(
        n.machine["ray_node_id"], soft=False)).remote(300) for n in ex.nodes]
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 0, "the blockers never took the CPUs"
    plan = _plan(["tinynet", "--runtimes", "null", "--threads", "1", "--repeat", "1",
                  "--min-time", "0.1", "--max-time", "0.2"])
    rundir = RunDir(tmp_path / "run")
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rundir.create({"created": created, "machine": machine_info(), "plan": to_dict(plan)})
    t0 = time.monotonic()
    run = Runner(plan, rundir, machine_info(), created, None, ex).execute()
    assert time.monotonic() - t0 < 60
    (cell,) = run.cells
    assert cell.status == "failed" and "not started" in (cell.error or ""), cell.error
    assert "--cluster-timeout 4 s" in (cell.error or "")
    assert any("waiting" in ln and "other work holds them" in ln for ln in lines), lines
    for b in blockers:
        ray.cancel(b, force=True)
    again = Runner(plan, rundir, machine_info(), created, None, ex).execute(resume=True)
    assert [c.status for c in again.cells] == ["ok"]


def test_a_node_with_another_inferometer_version_is_refused(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a third node whose Python finds an inferometer of another version first
    old = tmp_path / "old"
    shutil.copytree(SRC / "inferometer", old / "inferometer")
    init = old / "inferometer" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', '"0.0.1"'))
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(old)
    try:
        cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1)
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    lines: list[str] = []
    ex = RayExecutor(ClusterSpec("address", address=cluster.address), log=lines.append)
    assert len(ex.nodes) == 2 and len(ex.refused) == 1
    # CUDA work asks Ray for the slot's GPUs where the node has them (none elsewhere)
    assert sorted(slot.num_gpus for slot in ex.slots) == [0.0, 1.0]
    (line,) = [m for m in lines if "refused" in m]
    assert f"runs inferometer 0.0.1, the driver {__version__}: refused" in line


def test_two_machine_types_run_every_cell_on_each_and_compare_by_machine(
        tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "node_ip_address": "127.0.0.1", "num_cpus": 1, "include_dashboard": False,
        "labels": {"machine-type": "big"}})
    c.add_node(node_ip_address="127.0.0.1", num_cpus=1, labels={"machine-type": "small"})
    try:
        address = c.address
        bad = cli("run", "tinynet", "--runtimes", "null", "--cluster", address,
                  "--cost-per-hour", "huge=1")
        assert bad.returncode == 2
        assert "no node of machine type 'huge' in this run; it has big, small" in bad.stderr
        r = cli("run", "tinynet", "--runtimes", "onnxruntime", "--threads", "1", *QUICK,
                "--cluster", address, "--cost-per-hour", "big=0.4,small=0.1",
                "--output", str(tmp_path / "m"))
        assert r.returncode == 0, r.stderr
    finally:
        c.shutdown()
    run = json.loads((tmp_path / "m" / "results.json").read_text())
    by_type = {x["spec"]["machine"]: x for x in run["cells"]}
    assert set(by_type) == {"big", "small"}
    for kind, cell in by_type.items():  # each type's processes ran on that type's node
        assert {run["machines"][p["node"]]["machine_type"] for p in cell["processes"]} == {kind}
    assert "onnxruntime/default @big" in r.stdout and "onnxruntime/default @small" in r.stdout
    # the cost column: price an hour over the cell's throughput, per million
    small = by_type["small"]
    line = next(ln for ln in r.stdout.splitlines() if "@small" in ln)
    assert f"{0.1 / 3600 / small['items_per_s'] * 1e6:.4g}" in line.split()[-1]
    assert "cheapest fp32 at batch 1: onnxruntime/default on " in r.stdout
    rows = {row["machine"]: row for row in csv.DictReader(
        (tmp_path / "m" / "results.csv").open())}
    for kind, price in (("small", 0.1), ("big", 0.4)):  # each type at its own price
        assert float(rows[kind]["cost_per_million"]) == pytest.approx(
            price / 3600 / by_type[kind]["items_per_s"] * 1e6)
    rep = cli("report", str(tmp_path / "m"))
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "m" / "report.md").read_text()
    nodes = md.split("## Cluster nodes", 1)[1].split("\n## ", 1)[0]  # the section alone
    for nid, m in run["machines"].items():  # each node with its type and its price
        row = next(ln for ln in nodes.splitlines() if ln.startswith(f"| {nid} "))
        assert m["machine_type"] in row and {"big": "0.4", "small": "0.1"}[
            m["machine_type"]] in row, row
    assert "cheapest fp32 at batch 1: onnxruntime/default on " in md
    cmp = cli("compare", str(tmp_path / "m"), "--by", "machine", "--fail-on", "p50:500%")
    assert cmp.returncode == 0, cmp.stderr
    assert "big" in cmp.stdout and "small" in cmp.stdout and "p50" in cmp.stdout
    # two runs compared: each machine type's cell matched with its own, never pooled together
    twice = cli("compare", str(tmp_path / "m"), str(tmp_path / "m"), "--json")
    assert twice.returncode == 0, twice.stderr
    assert sorted(c["key"][-1] for c in json.loads(twice.stdout)["cells"]) == ["big", "small"]
    one = cli("compare", str(tmp_path / "m"), "--by", "machine", "--baseline", "tiny")
    assert one.returncode == 2 and "no machine type 'tiny'" in one.stderr
