"""`inferometer compare RUN_A RUN_B`: per matching cell, B's median over A's with an interval
from the two-level bootstrap of the raw samples (processes first, then samples in time blocks),
a verdict, a geometric-mean summary, and thresholds (`--fail-on`) that make it a CI gate.

A change is called only when the 95% interval of the ratio excludes 1, the ratio is further
from 1 than the noise floor (the larger of a fixed floor, default 2%, and how far apart two
identical processes of the cell lie, pooled over both sides) *and* Welch's t-test on the
processes' own figures rejects "no change" at 5%: with three processes a side the bootstrap
alone is too sure of itself.  The interval resamples processes because the variance between
processes (memory layout, thread placement, clock, neighbours) is larger than the variance
inside one: an interval built from one process's samples called identical reruns "faster"
(pyperf, benchstat and Google Benchmark's compare test across repetitions for the same
reason).  Several runs a side
(`compare A1,A2 B1,B2`) pool their processes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import UsageError
from ..results.pooling import pool
from ..results.schema import CellResult
from ..results.store import RunDir
from ..stats import between_floor, bootstrap_ratios, process_ratio, significant, welch_p

NOISE = 0.02  # the fixed part of the noise floor: a ratio within 2% of 1 is no change
# Load time's floor.  A process loads once, so no statistic of one run shows how load times
# move between runs, and they move more than latency: over 24 A/A sessions' identical pairs
# (960 cells) they differed by up to 14% (12% with the machine's speed divided out), and 15%
# of those cells were called faster or slower on the 2% floor (docs/decisions.md).
LOAD_NOISE = 0.15
METRICS = ("p50", "p90", "p99", "mean", "items_per_s", "peak_rss", "load_s")
# Metrics computed from the raw samples: the percentile (None: the mean) the bootstrap uses.
_SAMPLED: dict[str, float | None] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "mean": None}


# Figures each process keeps: their interval is a bootstrap over the processes.
_PER_PROCESS = {"peak_rss": "peak_rss_mb", "load_s": "load_s"}

Key = tuple[str, str, str, str, str, int, str, str, str]


def cell_key(c: CellResult) -> Key:
    """What makes two cells the same configuration: the machine type too, so one run's cells
    on two types never pool into one (compare --by machine sets the type aside itself)."""
    return (c.spec.model, c.spec.runtime, c.spec.variant, c.precision, c.spec.threads_label,
            c.spec.batch, c.spec.device, c.spec.dims_label, c.spec.machine or "")


def key_label(key: Key) -> str:
    model, runtime, variant, precision, threads, batch, device, dims, machine = key
    where = "" if device == "cpu" else f" on {device}"
    shape = f" {dims}" if dims else ""
    on = f" @{machine}" if machine else ""
    return f"{model}{shape} {runtime}/{variant}{on} {precision} t={threads} b={batch}{where}"


@dataclass(frozen=True)
class Change:
    metric: str
    a: float
    b: float
    ratio: float  # b / a
    low: float | None  # 95% interval of the ratio; None where there is only one value a side
    high: float | None
    verdict: str  # "faster"/"slower" (latency), "better"/"worse", or "no significant change"
    floor: float = NOISE  # the noise floor the ratio had to clear
    p: float | None = None  # Welch's test on the processes' figures; None: one process a side
    # b / a as measured, where `ratio` is after dividing out the machine's own change of speed
    # between the two sides (MachineChange); None where nothing was divided out
    raw: float | None = None

    @property
    def bounded(self) -> bool:
        """Whether the ratio has a finite interval to print (one value a side has none)."""
        return self.low is not None and self.high is not None and not math.isinf(self.high)


@dataclass(frozen=True)
class CellComparison:
    key: Key
    changes: tuple[Change, ...]
    processes_a: int = 1
    processes_b: int = 1

    def get(self, metric: str) -> Change | None:
        return next((c for c in self.changes if c.metric == metric), None)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    cells: tuple[CellComparison, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    failed: tuple[str, ...]  # in both, but failed in at least one
    noise: float
    notes: tuple[str, ...] = ()  # what the reader should know (repetition counts differ...)
    machine: MachineChange = field(default_factory=lambda: MachineChange())

    def geomean(self, metric: str = "p50") -> float | None:
        ratios = [c.ratio for cc in self.cells if (c := cc.get(metric)) is not None]
        if not ratios:
            return None
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def _words(metric: str, worse: bool) -> str:
    if metric in ("p50", "p90", "p99", "mean", "load_s"):
        return "slower" if worse else "faster"
    return "worse" if worse else "better"


def _verdict(metric: str, ratio: float, low: float | None, high: float | None,
             floor: float, p: float | None = None) -> str:
    if not significant(ratio, low, high, floor, p):
        return "no significant change"
    worse = ratio < 1.0 if metric == "items_per_s" else ratio > 1.0
    return _words(metric, worse)


def _value(c: CellResult, metric: str) -> float | None:
    s = c.summary
    if s is None:
        return None
    return {"p50": s.p50_ms, "p90": s.p90_ms, "p99": s.p99_ms, "mean": s.mean_ms,
            "items_per_s": c.items_per_s, "peak_rss": c.peak_rss_mb, "load_s": c.load_s}[metric]


def process_figures(c: CellResult, metric: str) -> list[float]:
    """The metric as each process of the cell measured it (items/s: its inverse median, a
    ratio test on logs gives the same answer); empty where processes keep no such figure."""
    if metric in _PER_PROCESS:
        values = [getattr(p, _PER_PROCESS[metric]) for p in c.processes]
        return [] if any(v is None for v in values) else [float(v) for v in values]
    field = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "mean": "mean_ms",
             "items_per_s": "p50_ms"}[metric]
    return [getattr(p.summary, field) for p in c.processes]


def noise_floor(ca: CellResult, cb: CellResult, noise: float = NOISE,
                machine: float = 0.0) -> float:
    """The fixed floor, raised to how far apart identical processes of these cells lie
    (stats.between_floor: a difference smaller than that is not a change) and to `machine`,
    how much the machine's own speed differed between the two sides."""
    shown = between_floor(process_figures(ca, "p50"), process_figures(cb, "p50"))
    return max(noise, machine, shown or 0.0)


def machine_probes(cells: Sequence[CellResult]) -> list[float]:
    """The Python-loop speed probe (ms of fixed work, measure.speed) of every process of these
    cells; empty for runs made before the probe existed."""
    return [p.probe_ms for c in cells for p in c.processes if p.probe_ms]


def gemm_probes(cells: Sequence[CellResult]) -> list[float]:
    """The matrix speed probe (ms, measure.speed) of every process of these cells; empty for
    runs made before it."""
    return [p.gemm_ms for c in cells for p in c.processes if p.gemm_ms]


def machine_shift(probes_a: Sequence[float], probes_b: Sequence[float]) -> float:
    """How much slower or faster the machine itself was on one side, as far as the probes
    show beyond their own noise: the distance from 1 of the nearer end of the interval of
    mean(B)/mean(A) (0 when that interval includes 1).  A single probe is noisy (the host
    changes speed within a second), so only a shift the probes agree on raises the floor."""
    if len(probes_a) < 2 or len(probes_b) < 2:
        return 0.0
    lo, hi = process_ratio(probes_a, probes_b)
    return max(0.0, lo - 1.0, 1.0 - hi)


# How closely a workload's latency follows the machine's speed (d log latency / d log probe):
# over drifting minutes here ResNet-50 on ONNX Runtime followed the matrix probe with slopes of
# 0.91-0.97, BERT-base 0.87, MobileNet-v2 0.89 (1 thread) and 0.57 (2), ResNet-18 0.74; in
# one A/A run whose probes said 10% faster, one 2-thread cell followed at about 0.3 while the
# others did at 0.7-1 (docs/decisions.md).  No model followed more than one to one.  The
# machine's change is divided out at both ends of this range and a change is called only
# where both ends call it: an end at 0.7 let that cell fail an identical rerun with --fail-on
# p50:5%, one at 1.2 cost a 10% slowdown's detection for nothing (ten A/A sessions).
SENSITIVITY = (0.3, 1.0)
# Figures a CPU's speed drives (items/s is the latencies' inverse; loading a model is CPU work
# too: dividing it halved the load-time calls on identical runs); memory is not divided.
_SPEED_BOUND = ("p50", "p90", "p99", "mean", "items_per_s", "load_s")


@dataclass(frozen=True)
class MachineChange:
    """How the machine itself differed between two sides taken at different times, from the
    probes timed before every process (measure.speed).

    With the matrix probe on both sides, a CPU cell's latency ratio is divided by the
    machine's own (`speed`): a host that ran 10% slower during B makes every B latency about
    10% longer, and that is no change of what was measured.  Runs made before that probe fall
    back to the Python loop's `shift`, which only raises the noise floor (it followed the
    host's drift too loosely to divide by)."""

    speed: float = 1.0  # B/A of the matrix probe's medians; 1.0: not known (or the same)
    shift: float = 0.0  # without it: |B/A - 1| of the Python loop, beyond its own noise
    gemm_a: float | None = None  # the sides' median matrix probe, ms (for the note)
    gemm_b: float | None = None
    loop_a: float | None = None  # the sides' median Python-loop probe, ms (for the note)
    loop_b: float | None = None

    @property
    def adjusted(self) -> bool:
        return self.gemm_a is not None


def machine_change(cells_a: Sequence[CellResult], cells_b: Sequence[CellResult]
                   ) -> MachineChange:
    """The machine's change between two sides: the matrix probe where both sides have two or
    more, else the Python loop's floor."""
    ga, gb = gemm_probes(cells_a), gemm_probes(cells_b)
    if len(ga) >= 2 and len(gb) >= 2:
        # medians: one probe in a dozen lands 40-70% slow (a preemption inside it).  Dividing
        # by the point estimate, not by the end of its interval nearest 1: on the A/A checks'
        # stored runs that end left 2-3 of 10 identical 2-thread pairs called
        ma, mb = statistics.median(ga), statistics.median(gb)
        return MachineChange(speed=mb / ma, gemm_a=ma, gemm_b=mb)
    la, lb = machine_probes(cells_a), machine_probes(cells_b)
    if not la or not lb:
        return MachineChange()
    return MachineChange(shift=machine_shift(la, lb), loop_a=statistics.median(la),
                         loop_b=statistics.median(lb))


def _stored_interval(ca: CellResult, cb: CellResult) -> tuple[float, float] | None:
    """The p50 ratio's interval from what results.json holds (no raw samples): a bootstrap
    of the process medians when both sides have several processes, else the stored median
    intervals' extremes."""
    pa, pb = ([p.summary.p50_ms for p in c.processes] for c in (ca, cb))
    if len(pa) > 1 and len(pb) > 1:
        return process_ratio(pa, pb)
    if ca.summary is None or cb.summary is None:
        return None
    return (cb.summary.median_ci_low_ms / ca.summary.median_ci_high_ms,
            cb.summary.median_ci_high_ms / ca.summary.median_ci_low_ms)


def compare_cells(ca: CellResult, cb: CellResult, samples_a: Sequence[Sequence[int]] | None,
                  samples_b: Sequence[Sequence[int]] | None, noise: float = NOISE,
                  machine: MachineChange | None = None) -> CellComparison:
    """B against A, metric by metric.  `samples_x`: each process's raw latencies (None when
    not kept: the stored per-process medians or intervals stand in); `machine`: how the
    machine's own speed differed between the two sides (machine_change; None: side by side
    in one run, nothing to allow for)."""
    machine = machine or MachineChange()
    floor = noise_floor(ca, cb, noise, machine.shift)
    # a GPU's kernels do not follow the host CPU's speed: only CPU cells are divided
    speed = machine.speed if ca.spec.device == cb.spec.device == "cpu" else 1.0
    changes = []
    boot: dict[str, tuple[float, float, float]] = {}
    if samples_a and samples_b:  # one resampling serves every sampled statistic
        boot = dict(zip(_SAMPLED, bootstrap_ratios(samples_a, samples_b,
                                                   list(_SAMPLED.values())), strict=True))
    for metric in METRICS:
        va, vb = _value(ca, metric), _value(cb, metric)
        fa, fb = process_figures(ca, metric), process_figures(cb, metric)
        if metric == "peak_rss" and fa and fb and len(fa) != len(fb):
            # a cell's peak memory is its largest process's, and the largest of five is no
            # figure to hold one process against (a bimodal 323/331 MB read as -3%): with
            # unequal counts, each side's typical process
            va, vb = statistics.median(fa), statistics.median(fb)
        if va is None or vb is None or va <= 0:
            continue
        floor_m = max(floor, LOAD_NOISE) if metric == "load_s" else floor
        low = high = None
        ratio = vb / va
        if metric in boot:
            ratio, low, high = boot[metric]
        elif metric == "items_per_s" and boot:
            # items/s is batch / median latency: its interval is the inverted p50 interval.
            r, lo, hi = boot["p50"]
            ratio, low, high = 1.0 / r, 1.0 / hi, 1.0 / lo
        elif metric == "p50" and (stored := _stored_interval(ca, cb)):
            low, high = stored
        if metric in _PER_PROCESS and len(fa) > 1 and len(fb) > 1:
            # a process that kept no such figure leaves the cell without an interval (a
            # 0 in its place would widen it towards "changed")
            low, high = process_ratio(fa, fb)
        raw = None
        if metric in _SPEED_BOUND and speed != 1.0:
            raw = ratio
            # B's latencies as if B's machine had run at A's speed, for a workload that
            # follows the machine by each end of SENSITIVITY: called only where both agree
            ends = [(*_divided(metric, ratio, low, high, speed ** e),
                     welch_p(fa, [v / speed ** e for v in fb])) for e in SENSITIVITY]
            verdicts = {_verdict(metric, r, lo, hi, floor_m, pe) for r, lo, hi, pe in ends}
            ratio, low, high = _divided(metric, ratio, low, high, speed)
            p = max((end[3] for end in ends if end[3] is not None), default=None)
            verdict = verdicts.pop() if len(verdicts) == 1 else "no significant change"
        else:
            p = welch_p(fa, fb)
            verdict = _verdict(metric, ratio, low, high, floor_m, p)
        changes.append(Change(metric, va, vb, ratio, low, high, verdict, floor_m, p, raw))
    return CellComparison(cell_key(ca), tuple(changes), max(1, len(ca.processes)),
                          max(1, len(cb.processes)))


def _divided(metric: str, ratio: float, low: float | None, high: float | None, by: float
             ) -> tuple[float, float | None, float | None]:
    """B/A and its interval with B's latencies divided by `by` (items/s: B's throughput
    multiplied by it).  The process figures go into Welch's test divided by `by` as well:
    they are latencies, items/s's too (its inverse median)."""
    k = 1.0 / by if metric == "items_per_s" else by
    if low is None or high is None:
        return ratio / k, None, None
    return ratio / k, low / k, high / k


@dataclass(frozen=True)
class _Side:
    """One side of a comparison: one run, or several pooled as processes."""

    label: str
    cells: dict[Key, CellResult]
    samples: dict[Key, list[list[int]]]
    models: str
    every: tuple[CellResult, ...]  # every stored cell, as its run kept it (the speed probes)
    runs: int = 1  # stored runs pooled into this side


Stored = tuple[CellResult, list[list[int]] | None]  # a cell and its raw samples


def _side(paths: Sequence[str]) -> _Side:
    entries: list[Stored] = []
    for path in paths:
        rd = RunDir(Path(path))
        entries += [(c, rd.samples(c.spec.id)) for c in rd.load().cells]
    return replace(_side_of(entries, ",".join(paths)), runs=len(paths))


def _side_of(entries: Sequence[Stored], label: str) -> _Side:
    """The cells of one side, from one or more runs (their processes pooled per cell)."""
    by_key: dict[Key, list[Stored]] = {}
    models = {c.spec.model for c, _ in entries}
    every = [c for c, _ in entries]
    for c, raw in entries:
        by_key.setdefault(cell_key(c), []).append((c, raw))
    cells, samples = {}, {}
    for k, found in by_key.items():
        bad = next((c for c, _ in found if c.status != "ok" or c.summary is None), None)
        if bad is not None:  # failed in one of the side's runs: not compared
            cells[k] = bad
            continue
        procs = [p for c, _ in found for p in c.processes]
        raw = [x for _, s in found for x in (s or [])]
        if len(found) == 1:
            cells[k] = found[0][0]
        elif len(procs) == len(raw):  # several runs: their processes pooled into one cell
            cells[k] = pool(found[0][0], procs, raw)
        else:
            raise UsageError(f"cannot pool {key_label(k)} across {label}: one of "
                             "them kept no raw samples for it")
        if raw:
            samples[k] = raw
    return _Side(label, cells, samples, ", ".join(sorted(models)) or "no cells",
                 tuple(every))


def split_runs(text: str) -> list[str]:
    """'A1,A2,A3' -> the run directories it names (a comma inside a path: use one run); a
    directory of repeated runs (`--repeat N`) stands for its runs."""
    from ..results.store import repeated_runs

    paths = [p for p in (t.strip() for t in text.split(",")) if p]
    if not paths:
        raise UsageError("compare: name a run directory on each side")
    return [str(r) for p in paths for r in (repeated_runs(Path(p)) or [p])]


def _repetition_notes(sa: _Side, sb: _Side, common: Sequence[Key]) -> list[str]:
    def counts(side: _Side) -> set[int]:
        return {max(1, len(side.cells[k].processes)) for k in common
                if side.cells[k].status == "ok"}

    ca, cb = counts(sa), counts(sb)
    notes = []
    if ca and cb and ca != cb:
        notes.append(f"the sides have different numbers of processes per cell (A: "
                     f"{'/'.join(map(str, sorted(ca)))}, B: {'/'.join(map(str, sorted(cb)))}): "
                     "fine, each interval is built from what its side has")
    if 1 in ca | cb:
        notes.append("cells measured in one process cannot include between-run noise in "
                     "their intervals: rerun with --repeat auto (the default) for verdicts that "
                     "survive an identical rerun")
    return notes


def compare_runs(path_a: str | Sequence[str], path_b: str | Sequence[str],
                 noise: float = NOISE) -> Comparison:
    sa = _side(split_runs(path_a) if isinstance(path_a, str) else path_a)
    sb = _side(split_runs(path_b) if isinstance(path_b, str) else path_b)
    return _compare_sides(sa, sb, noise)


def compare_machines(path: str, noise: float = NOISE,
                     baseline: str | None = None) -> list[Comparison]:
    """One run's cells on each machine type against the same cells on the baseline type
    (the first in name order unless named): B/A per cell with the same process-level test.
    The machines' speed probes differ by design here (that is what is compared), so they
    set no floor."""
    rd = RunDir(Path(path))
    run = rd.load()
    types = sorted({c.spec.machine for c in run.cells if c.spec.machine})
    if len(types) < 2:
        found = sorted({str(m.get("machine_type")) for m in run.machines.values()})
        raise UsageError(f"compare --by machine: {path} ran on one machine type "
                         f"({', '.join(found) or 'this machine'}); a run on a cluster of "
                         "several types runs every cell on each")
    if baseline is not None and baseline not in types:
        raise UsageError(f"--baseline: no machine type '{baseline}' in {path}; it has "
                         f"{', '.join(types)}")
    base = baseline or types[0]
    # each type's cells with the type set aside, so the same configuration matches across
    # types; the samples are found by the stored cell's own id
    sides = {t: _side_of([(replace(c, spec=replace(c.spec, machine=None)), rd.samples(c.spec.id))
                          for c in run.cells if c.spec.machine == t], t) for t in types}
    return [_compare_sides(sides[base], sides[t], noise, apart=False)
            for t in types if t != base]


def _compare_sides(sa: _Side, sb: _Side, noise: float, apart: bool = True) -> Comparison:
    """B against A.  `apart`: the sides ran at different times (separate runs), so the
    machine's own change of speed between them matters (the probes' floor, the one-run
    note); False for machine types side by side in one run."""
    common = [k for k in sa.cells if k in sb.cells]
    if not common:
        raise UsageError(f"no common cells: {sa.label} has {sa.models}, {sb.label} has "
                         f"{sb.models}; compare runs of the same model, runtime, variant, "
                         "threads and batch")
    machine = machine_change(sa.every, sb.every) if apart else MachineChange()
    cells, failed = [], []
    for k in common:
        a, b = sa.cells[k], sb.cells[k]
        if a.status != "ok" or b.status != "ok" or a.summary is None or b.summary is None:
            which = " and ".join(n for n, c in (("A", a), ("B", b)) if c.status != "ok")
            failed.append(f"{key_label(k)} (failed in {which})")
            continue
        cells.append(compare_cells(a, b, sa.samples.get(k), sb.samples.get(k), noise, machine))
    notes = _repetition_notes(sa, sb, common)
    called = any(ch.verdict != "no significant change" for cc in cells for ch in cc.changes
                 if ch.metric in _SPEED_BOUND)  # memory does not follow the host's speed
    if apart and called and min(sa.runs, sb.runs) == 1 and not machine.adjusted:
        # the A/A checks' finding (docs/decisions.md): a host step between two runs reads
        # as a change that no statistic of one run can see; pooled runs carry it
        probed = bool(gemm_probes(sa.every) or gemm_probes(sb.every))
        why = ("a side has under two matrix speed probes (one process a cell), too few to "
               "divide by" if probed else "the runs carry no matrix speed probe (made before "
               "it)")
        notes.append(f"a change was called with one run on a side, and {why}: a shared host "
                     "that changes speed between runs (10-18% within a minute was seen) reads "
                     "the same way; before acting on it, pool runs of A and B taken "
                     "alternately (compare A1,A2,A3 B1,B2,B3) or measure both again with "
                     "this version" + (" and --repeat 2 or more" if probed else ""))
    notes += machine_notes(machine, noise)
    return Comparison(sa.label, sb.label, tuple(cells),
                      tuple(key_label(k) for k in sa.cells if k not in sb.cells),
                      tuple(key_label(k) for k in sb.cells if k not in sa.cells), tuple(failed),
                      noise, tuple(notes), machine)


def machine_notes(machine: MachineChange, noise: float) -> list[str]:
    """What the reader should know of the machine's own change between the two sides."""
    if machine.adjusted:
        assert machine.gemm_a is not None and machine.gemm_b is not None
        if machine.speed == 1.0:
            return []
        how = "slower" if machine.speed > 1.0 else "faster"
        return [f"the machine itself ran {abs(machine.speed - 1.0):.1%} {how} during B than "
                f"during A (a fixed one-thread matrix product before every process: median "
                f"{machine.gemm_a:.3f} vs {machine.gemm_b:.3f} ms): CPU latencies are "
                f"compared with B's divided by {machine.speed:.3f} (B/A; 'raw B/A' as "
                "measured), and a change is called only if it holds for a workload that "
                f"follows the machine's speed anywhere from {SENSITIVITY[0]:g} to "
                f"{SENSITIVITY[1]:g} times (p: the larger of the two)"]
    if machine.shift > noise and machine.loop_a and machine.loop_b:
        how = "slower" if machine.loop_b > machine.loop_a else "faster"
        return [f"the machine itself ran at least {machine.shift:.0%} {how} during B than "
                f"during A (speed probe before every process: median {machine.loop_a:.2f} vs "
                f"{machine.loop_b:.2f} ms of fixed Python work; these runs predate the matrix "
                "probe): changes within that are not called"]
    return []


# -- the gate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    metric: str
    limit: float  # allowed worsening, as a fraction (0.05 = 5%)


def parse_fail_on(text: str) -> tuple[Threshold, ...]:
    """'p50:5%,peak_rss:10%' -> thresholds.  A bare metric ('p50') allows no significant
    worsening at all."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        metric, _, limit = part.partition(":")
        if metric not in METRICS:
            raise UsageError(f"--fail-on: unknown metric '{metric}'; valid: {', '.join(METRICS)}")
        try:
            value = float(limit.rstrip("%")) / 100.0 if limit else 0.0
        except ValueError:
            raise UsageError(f"--fail-on: '{part}' is not METRIC:PERCENT like p50:5%") from None
        if value < 0:
            raise UsageError(f"--fail-on: '{part}': the percentage must be >= 0")
        out.append(Threshold(metric, value))
    if not out:
        raise UsageError("--fail-on: give at least one METRIC:PERCENT, like p50:5%")
    return tuple(out)


def regressions(cmp: Comparison, thresholds: Sequence[Threshold]) -> list[str]:
    """Rows that got significantly worse (beyond the interval and the noise floor, as every
    verdict) by more than their threshold."""
    out = []
    for cc in cmp.cells:
        for t in thresholds:
            ch = cc.get(t.metric)
            if ch is None or ch.verdict not in ("slower", "worse"):
                continue
            worse_by = (1.0 / ch.ratio - 1.0) if t.metric == "items_per_s" else ch.ratio - 1.0
            if worse_by > t.limit:
                out.append(f"{t.metric} {worse_by:+.1%} (limit {t.limit:.0%}): "
                           f"{key_label(cc.key)}: {ch.a:.4g} -> {ch.b:.4g}")
    return out
