"""compare: the statistics on real stored samples, the verdicts, the gate, and bad input.

tests/data holds raw samples (ns) of real ResNet-50 cells on ONNX Runtime at batch 1, from
`inferometer run resnet50 --runtimes onnxruntime` on a 2-core machine: two separate runs at 2
threads (a repeat), and 1 thread (a deliberate slowdown, about 2x)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import cli
from synthetic import Cell, load_samples, noisy, processes, write_run

from inferometer.errors import UsageError
from inferometer.report.compare import Comparison, compare_runs, parse_fail_on, regressions
from inferometer.results.store import RunDir
from inferometer.stats import bootstrap_ratio

T2 = "resnet50-ort-t2.json"
T2_REPEAT = "resnet50-ort-t2-repeat.json"
T1 = "resnet50-ort-t1.json"


def _pair(tmp_path: Path, a: str, b: str, peak_b: float = 100.0) -> tuple[str, str]:
    """Two runs whose one matching cell holds the given stored samples."""
    write_run(tmp_path / "a", [Cell("onnxruntime", "default", 2, 1, load_samples(a))])
    write_run(tmp_path / "b", [Cell("onnxruntime", "default", 2, 1, load_samples(b),
                                    peak_mb=peak_b)])
    return str(tmp_path / "a"), str(tmp_path / "b")


def test_a_deliberate_slowdown_is_significant(tmp_path: Path) -> None:
    cmp = compare_runs(*_pair(tmp_path, T2, T1))
    p50 = cmp.cells[0].get("p50")
    assert p50 is not None and p50.verdict == "slower"
    assert 1.5 < p50.ratio < 2.5 and p50.low is not None and p50.low > 1.3
    assert cmp.cells[0].get("items_per_s").verdict == "worse"  # type: ignore[union-attr]
    assert regressions(cmp, parse_fail_on("p50:5%"))


def test_two_repeats_of_the_same_config_are_not_significant(tmp_path: Path) -> None:
    cmp = compare_runs(*_pair(tmp_path, T2, T2_REPEAT))
    p50 = cmp.cells[0].get("p50")
    assert p50 is not None and p50.verdict == "no significant change", p50
    assert regressions(cmp, parse_fail_on("p50")) == []
    assert cmp.geomean() == pytest.approx(p50.ratio)


def test_bootstrap_interval_covers_the_true_ratio() -> None:
    a = noisy(10e6, n=400, seed=1)
    b = [int(x * 1.10) for x in noisy(10e6, n=400, seed=2)]
    ratio, lo, hi = bootstrap_ratio([a], [b])
    assert lo < 1.10 < hi and lo > 1.0
    same = bootstrap_ratio([a], [noisy(10e6, n=400, seed=3)])
    assert same[1] < 1.0 < same[2]
    assert bootstrap_ratio([a], [b]) == (ratio, lo, hi)  # seeded: reproducible


def test_the_noise_floor_hides_tiny_but_significant_shifts(tmp_path: Path) -> None:
    base = noisy(10e6, n=2000, seed=1, spread=0.002)
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, base)])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, [int(x * 1.01) for x in base])])
    assert compare_runs(str(tmp_path / "a"), str(tmp_path / "b")).cells[0].get(
        "p50").verdict == "no significant change"  # type: ignore[union-attr]
    strict = compare_runs(str(tmp_path / "a"), str(tmp_path / "b"), noise=0.0)
    assert strict.cells[0].get("p50").verdict == "slower"  # type: ignore[union-attr]


def test_fail_on_thresholds(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, T2, T1, peak_b=130.0)
    assert cli("compare", a, b).returncode == 1
    r = cli("compare", a, b, "--fail-on", "p50:500%")  # a 2x slowdown is within 500%
    assert r.returncode == 0, r.stdout
    r = cli("compare", a, b, "--fail-on", "p50:500%,peak_rss:10%")
    assert r.returncode == 1
    assert "REGRESSION peak_rss +30.0% (limit 10%)" in r.stdout
    assert "REGRESSION p50" not in r.stdout


def test_compare_output_lists_every_cell(tmp_path: Path) -> None:
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, noisy(5e6, seed=1)),
                               Cell("r", "v", 2, 1, noisy(3e6, seed=2)),
                               Cell("r", "v", 4, 1, noisy(3e6), status="failed")])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, noisy(5e6, seed=3)),
                               Cell("r", "v", 4, 1, noisy(3e6, seed=4)),
                               Cell("r", "v", 8, 1, noisy(3e6, seed=5))])
    r = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "only in A: net r/v fp32 t=2 b=1" in r.stdout
    assert "only in B: net r/v fp32 t=8 b=1" in r.stdout
    assert "not compared: net r/v fp32 t=4 b=1 (failed in A)" in r.stdout
    assert "geometric mean of B/A p50 over 1 cells" in r.stdout
    data = json.loads(cli("compare", str(tmp_path / "a"), str(tmp_path / "b"),
                          "--json").stdout)
    assert data["regressions"] == [] and len(data["cells"]) == 1
    assert {c["metric"] for c in data["cells"][0]["changes"]} >= {"p50", "p99", "peak_rss"}


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, noisy(5e6), model="resnet50")])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, noisy(5e6), model="mobilenet")])
    r = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert r.returncode == 2
    assert "no common cells" in r.stderr and "resnet50" in r.stderr
    assert "mobilenet" in r.stderr and "Traceback" not in r.stderr
    r = cli("compare", str(tmp_path / "a"), str(tmp_path))
    assert r.returncode == 2 and "not a run directory" in r.stderr
    r = cli("compare", str(tmp_path / "a"), str(tmp_path / "a"), "--fail-on", "speed:5%")
    assert r.returncode == 2 and "unknown metric 'speed'" in r.stderr
    with pytest.raises(UsageError, match="METRIC:PERCENT"):
        parse_fail_on("p50:fast")


def test_the_interval_widens_for_correlated_samples() -> None:
    """Drift (a slow phase, then a fast one) is serial correlation: resampling blocks keeps
    it, so the interval must be wider than for the same values in random order."""
    import numpy as np

    rng = np.random.default_rng(5)
    base = noisy(10e6, n=400, seed=7, spread=0.01)
    drifting = [int(x * (1.04 if i < 200 else 1.0)) for i, x in enumerate(base)]
    shuffled = list(rng.permutation(drifting))
    _, lo, hi = bootstrap_ratio([base], [drifting])
    _, slo, shi = bootstrap_ratio([base], [shuffled])
    assert hi - lo > 1.5 * (shi - slo)


def test_identical_reruns_are_not_called_and_a_real_slowdown_is(tmp_path: Path) -> None:
    """Synthetic runs with a known between-process variance (each process lands 4% off on
    average, as on a shared machine): identical reruns are almost never called, a slowdown
    of three times that spread almost always is, and --fail-on p50:5% stays quiet on the
    reruns.  Built on one process a cell, the same reruns are called most of the time: the
    test fails if compare drops the process level."""
    import numpy as np

    rng = np.random.default_rng(4)

    def run(path: Path, scale: float, k: int = 3) -> str:
        shifts = list(1 + 0.04 * rng.standard_normal(k))
        procs = processes(20e6 * scale, shifts, n=120, seed=int(rng.integers(1 << 30)))
        write_run(path, [Cell("r", "v", 1, 1, procs if k > 1 else procs[0])])
        return str(path)

    trials = 12
    calls = fails = detected = single_calls = 0
    gate = parse_fail_on("p50:5%")
    for i in range(trials):
        a, b = run(tmp_path / f"a{i}", 1.0), run(tmp_path / f"b{i}", 1.0)
        cmp = compare_runs(a, b)
        calls += cmp.cells[0].get("p50").verdict != "no significant change"  # type: ignore[union-attr]
        fails += bool(regressions(cmp, gate))
        slow = compare_runs(a, run(tmp_path / f"s{i}", 1.25))
        detected += slow.cells[0].get("p50").verdict == "slower"  # type: ignore[union-attr]
        one = compare_runs(run(tmp_path / f"o{i}", 1.0, 1), run(tmp_path / f"p{i}", 1.0, 1))
        single_calls += one.cells[0].get("p50").verdict != "no significant change"  # type: ignore[union-attr]
    assert calls <= 1 and fails <= 1
    assert detected >= trials - 1
    assert single_calls >= trials // 2


def test_several_runs_a_side_pool_as_processes(tmp_path: Path) -> None:
    for name, shift in (("a1", 1.0), ("a2", 1.02), ("b1", 1.3), ("b2", 1.28)):
        write_run(tmp_path / name, [Cell("r", "v", 1, 1, processes(10e6 * shift, [1.0, 1.01],
                                                                    seed=len(name)))])
    cmp = compare_runs(f"{tmp_path / 'a1'},{tmp_path / 'a2'}",
                       f"{tmp_path / 'b1'},{tmp_path / 'b2'}")
    cc = cmp.cells[0]
    assert (cc.processes_a, cc.processes_b) == (4, 4)
    assert cc.get("p50").verdict == "slower"  # type: ignore[union-attr]
    r = cli("compare", f"{tmp_path / 'a1'},{tmp_path / 'a2'}", str(tmp_path / "b1"))
    assert r.returncode == 1 and "4/2" in r.stdout, r.stdout
    assert "different numbers of processes per cell (A: 4, B: 2)" in r.stdout
    # a call with one run on a side says a host step between runs reads the same way;
    # pooled on both sides, or nothing called, it says nothing of the kind
    assert "pool runs of A and B taken alternately" in r.stdout
    assert not any("alternately" in n for n in cmp.notes)
    same = compare_runs(str(tmp_path / "a1"), str(tmp_path / "a2"))
    assert same.cells[0].get("p50").verdict == "no significant change"  # type: ignore[union-attr]
    assert not any("alternately" in n for n in same.notes)


def test_a_change_no_bigger_than_the_machines_own_drift_is_not_called(tmp_path: Path) -> None:
    """B is 20% slower, and so was the machine itself while B ran (the speed probe timed
    before every process): that is no evidence against the runtime.  The same 20% with the
    machine as fast as before is a slowdown."""
    a = processes(10e6, [1.0, 1.01, 0.99], seed=1)
    b = processes(12e6, [1.0, 1.01, 0.99], seed=2)
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, a, probe_ms=2.0)])
    write_run(tmp_path / "drifted", [Cell("r", "v", 1, 1, b, probe_ms=2.4)])
    write_run(tmp_path / "steady", [Cell("r", "v", 1, 1, b, probe_ms=2.02)])
    drifted = compare_runs(str(tmp_path / "a"), str(tmp_path / "drifted"))
    p50 = drifted.cells[0].get("p50")
    assert p50 is not None and p50.verdict == "no significant change"
    assert p50.floor == pytest.approx(0.2) and drifted.machine.shift == pytest.approx(0.2)
    assert p50.raw is None and not drifted.machine.adjusted
    assert any("machine itself ran at least 20% slower during B" in n for n in drifted.notes)
    assert regressions(drifted, parse_fail_on("p50:5%")) == []
    steady = compare_runs(str(tmp_path / "a"), str(tmp_path / "steady"))
    assert steady.cells[0].get("p50").verdict == "slower"  # type: ignore[union-attr]
    assert not any("machine itself" in n for n in steady.notes)


def test_the_machines_own_change_of_speed_is_divided_out(tmp_path: Path) -> None:
    """The A/A checks' failure on the shared host: a whole run 15% slower than the one
    before, every cell alike, with nothing changed.  With the matrix probe timed before every
    process (it moved with ResNet-50 one to one here), B/A is taken over the machine's own
    B/A: the drifted rerun is no change and --fail-on stays quiet; a real 10% slowdown is
    still called when the machine drifted the same way, and a 15% one when it drifted 10%
    the other way and hid most of it in the raw figures.  A workload that follows the
    machine less than one to one would read "faster" once divided one to one: it is called
    only if the change holds at both ends of the sensitivities allowed.  A GPU cell is not
    divided by a CPU's speed."""
    spread = [1.0, 1.004, 0.997]
    base = Cell("r", "v", 1, 1, processes(10e6, spread, seed=1), gemm_ms=1.6)
    write_run(tmp_path / "a", [base])

    def run(name: str, ms: float, gemm: float, device: str = "cpu") -> Comparison:
        b = Cell("r", "v", 1, 1, processes(ms * 1e6, spread, seed=2), gemm_ms=gemm,
                 device=device)
        write_run(tmp_path / name, [b])
        if device != "cpu":
            write_run(tmp_path / f"a-{name}", [replace(base, device=device)])
            return compare_runs(str(tmp_path / f"a-{name}"), str(tmp_path / name))
        return compare_runs(str(tmp_path / "a"), str(tmp_path / name))

    drifted = run("drifted", 11.5, 1.84)  # the machine 15% slower, the runtime unchanged
    p50 = drifted.cells[0].get("p50")
    assert p50 is not None and p50.raw == pytest.approx(1.15, rel=0.01)
    assert p50.ratio == pytest.approx(1.0, abs=0.01) and p50.verdict == "no significant change"
    assert drifted.machine.adjusted and drifted.machine.speed == pytest.approx(1.15)
    assert regressions(drifted, parse_fail_on("p50:5%")) == []
    assert any("machine itself ran 15.0% slower during B" in n for n in drifted.notes)
    text = cli("compare", str(tmp_path / "a"), str(tmp_path / "drifted"))
    assert text.returncode == 0 and "raw B/A" in text.stdout, text.stdout

    both = run("both", 11.5 * 1.10, 1.84)  # 10% slower on a machine 15% slower
    assert both.cells[0].get("p50").verdict == "slower"  # type: ignore[union-attr]
    assert regressions(both, parse_fail_on("p50:5%"))
    hidden = run("hidden", 10.0 * 0.90 * 1.15, 1.6 * 0.90)  # 15% slower, machine 10% faster
    h = hidden.cells[0].get("p50")
    assert h is not None and h.raw == pytest.approx(1.035, abs=0.01) and h.verdict == "slower"
    # follows a 12% slower machine at a slope of 0.57 (MobileNet-v2 at 2 threads here)
    half = run("half", 10.0 * 1.12 ** 0.57, 1.6 * 1.12)
    f = half.cells[0].get("p50")
    assert f is not None and f.ratio < 0.96 and f.verdict == "no significant change"
    gpu = run("gpu", 11.5, 1.84, device="cuda")  # a 15% slower GPU cell is a slowdown
    g = gpu.cells[0].get("p50")
    assert g is not None and g.raw is None and g.verdict == "slower"


def test_a_side_whose_processes_disagree_is_not_called(tmp_path: Path) -> None:
    """From an A/A check on the 2-core host: in one run two of the three processes of a cell
    landed 8% fast ([43.7, 47.7, 44.0] ms), and an identical rerun measured [48.9, 49.8,
    48.1]. The bootstrap's interval of B/A excluded 1 and the ratio (1.10) cleared A's spread
    (9%), so the rule without Welch's test called it "slower" and --fail-on p50:5% failed an
    identical rerun; with it, p is about 0.09 and nothing is called. A real 10% slowdown
    between runs whose processes agree is still called."""
    a = processes(1e6, [43.7, 47.7, 44.0], n=40, seed=1, spread=0.003)
    b = processes(1e6, [48.9, 49.8, 48.1], n=40, seed=2, spread=0.003)
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, a)])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, b)])
    cmp = compare_runs(str(tmp_path / "a"), str(tmp_path / "b"))
    p50 = cmp.cells[0].get("p50")
    assert p50 is not None and p50.low is not None and p50.low > 1.0  # the interval alone
    assert abs(p50.ratio - 1) > p50.floor  # and the floor alone would call it
    assert p50.p is not None and p50.p > 0.05
    assert p50.verdict == "no significant change"
    assert regressions(cmp, parse_fail_on("p50:5%")) == []
    c = processes(1e6, [52.3, 52.6, 52.1], n=40, seed=3, spread=0.003)
    write_run(tmp_path / "c", [Cell("r", "v", 1, 1, processes(1e6, [47.5, 48.0, 47.8], n=40,
                                                                 seed=4, spread=0.003))])
    write_run(tmp_path / "d", [Cell("r", "v", 1, 1, c)])
    slow = compare_runs(str(tmp_path / "c"), str(tmp_path / "d")).cells[0].get("p50")
    assert slow is not None and slow.verdict == "slower" and slow.p is not None
    r = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-on", "p50:5%")
    assert r.returncode == 0 and "Welch" in r.stdout, r.stdout


def test_a_process_without_a_memory_figure_gives_no_interval(tmp_path: Path) -> None:
    """A process that kept no peak RSS (a resumed run's older record) must not enter the
    interval as 0 MB: a 0 on one side drags its mean down and makes any change look like
    the opposite. Without every process's figure, the cell's figure is judged on the floor
    alone, as a one-process side is."""
    from dataclasses import replace

    from inferometer.report.compare import compare_cells
    from inferometer.results.store import RunDir

    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, processes(1e6, [1, 1, 1]), peak_mb=100)])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, processes(1e6, [1, 1, 1]), peak_mb=60)])
    ca = RunDir(tmp_path / "a").load().cells[0]
    cb = RunDir(tmp_path / "b").load().cells[0]
    full = compare_cells(ca, cb, None, None).get("peak_rss")
    assert full is not None and full.low is not None and full.verdict == "better"
    gap = replace(ca, processes=(*ca.processes[:2], replace(ca.processes[2], peak_rss_mb=None)))
    peak = compare_cells(gap, cb, None, None).get("peak_rss")
    assert peak is not None and peak.low is None and peak.high is None and peak.p is None
    assert peak.verdict == "better"  # 0.6x is beyond the floor


def test_more_processes_do_not_raise_the_floor(tmp_path: Path) -> None:
    """Five processes a side whose medians lie 0.93-1.04 of the cell's (a range of 11%, a
    standard deviation of 4%), and a 10% slowdown. The old floor, the larger side's range,
    grew with the number of processes (the range of five draws is 2.3 standard deviations,
    of three 1.7) and hid it; the floor is how far apart two identical processes lie
    (1.13 standard deviations, pooled over both sides), which five processes show as well
    as three. The same processes against themselves are no change."""
    shifts = [1.0, 0.93, 1.04, 0.98, 1.01]
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, processes(50e6, shifts, n=40, seed=1,
                                                              spread=0.003))])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, processes(55e6, shifts, n=40, seed=2,
                                                              spread=0.003))])
    write_run(tmp_path / "a2", [Cell("r", "v", 1, 1, processes(50e6, shifts[::-1], n=40,
                                                               seed=3, spread=0.003))])
    cmp = compare_runs(str(tmp_path / "a"), str(tmp_path / "b"))
    p50 = cmp.cells[0].get("p50")
    assert p50 is not None and 1.08 < p50.ratio < 1.12
    (stored,) = RunDir(tmp_path / "a").load().cells
    assert stored.spread is not None and stored.spread > 0.10  # the range: the old floor
    assert 0.03 < p50.floor < 0.06
    assert p50.verdict == "slower" and p50.p is not None and p50.p < 0.05
    assert regressions(cmp, parse_fail_on("p50:5%"))
    same = compare_runs(str(tmp_path / "a"), str(tmp_path / "a2")).cells[0].get("p50")
    assert same is not None and same.verdict == "no significant change"


def test_load_time_and_memory_hold_on_an_identical_rerun(tmp_path: Path) -> None:
    """From the A/A sessions: identical runs' load times differed by up to 14% between runs,
    every process of a run alike (no statistic of one run shows it), and 15% of their cells
    were called faster or slower on the 2% floor; a cell's peak memory is its largest
    process's, and five processes whose peaks fall in two modes (323 and 331 MB) against
    one process that landed low read as 3% better.  Neither is a change.  A 40% slower load
    and a 20% larger peak still are."""
    from statistics import median

    from inferometer.report.compare import LOAD_NOISE, compare_cells

    write_run(tmp_path / "five", [Cell("r", "v", 1, 1, processes(1e6, [1.0] * 5))])
    write_run(tmp_path / "one", [Cell("r", "v", 1, 1, processes(1e6, [1.0]))])
    five = RunDir(tmp_path / "five").load().cells[0]
    one = RunDir(tmp_path / "one").load().cells[0]

    def cell(base, loads, peaks):  # type: ignore[no-untyped-def]
        procs = tuple(replace(p, load_s=s, peak_rss_mb=m)
                      for p, s, m in zip(base.processes, loads, peaks, strict=True))
        return replace(base, processes=procs, load_s=median(loads), peak_rss_mb=max(peaks))

    loads = [0.250, 0.251, 0.249, 0.252, 0.250]
    a = cell(five, loads, [322.6, 331.5, 331.0, 324.4, 322.9])
    rerun = cell(five, [x * 1.08 for x in loads], [322.7, 322.7, 322.6, 331.1, 322.8])
    lone = cell(one, [0.25], [322.6])
    for b in (rerun, lone):
        got = compare_cells(a, b, None, None)
        assert {ch.metric: ch.verdict for ch in got.changes if ch.metric in
                ("load_s", "peak_rss")} == {"load_s": "no significant change",
                                            "peak_rss": "no significant change"}
    load = compare_cells(a, rerun, None, None).get("load_s")
    assert load is not None and load.floor == LOAD_NOISE and load.low is not None
    assert load.low > 1.0 and load.p is not None and load.p < 0.05  # "slower" on 2%
    worse = cell(five, [x * 1.4 for x in loads], [x * 1.2 for x in (322.6, 331.5, 331.0,
                                                                     324.4, 322.9)])
    got = compare_cells(a, worse, None, None)
    assert got.get("load_s").verdict == "slower"  # type: ignore[union-attr]
    assert got.get("peak_rss").verdict == "worse"  # type: ignore[union-attr]


def test_the_one_run_note_says_why_the_speed_was_not_divided(tmp_path: Path) -> None:
    """A one-process run carries one matrix probe, too few to divide by: the note on a
    called change says so (not that the runs have no probe), and a change of memory alone,
    which the host's speed does not drive, carries no such note."""
    write_run(tmp_path / "a", [Cell("r", "v", 1, 1, processes(10e6, [1.0, 1.004, 0.997]),
                                    gemm_ms=1.6)])
    write_run(tmp_path / "b", [Cell("r", "v", 1, 1, processes(11.5e6, [1.0]), gemm_ms=1.6)])
    cmp = compare_runs(str(tmp_path / "a"), str(tmp_path / "b"))
    assert cmp.cells[0].get("p50").verdict == "slower"  # type: ignore[union-attr]
    (note,) = [n for n in cmp.notes if "one run on a side" in n]
    assert "under two matrix speed probes" in note and "--repeat 2" in note
    write_run(tmp_path / "m", [Cell("r", "v", 1, 1, processes(10e6, [1.0]), gemm_ms=1.6,
                                    peak_mb=150)])
    mem = compare_runs(str(tmp_path / "a"), str(tmp_path / "m"))
    assert mem.cells[0].get("peak_rss").verdict == "worse"  # type: ignore[union-attr]
    assert not [n for n in mem.notes if "one run on a side" in n]
