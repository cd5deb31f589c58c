"""The search, pure: it decides what to measure next from what a `Bench` measured so far.

1. Prune without measuring load: precisions that failed the accuracy check; then one cheap
   probe per runtime x layout (closed-loop service time of each batch size alone, the
   layout's capacity when every instance is kept busy, memory).  A batch that alone takes
   longer than the SLO cannot meet it; a layout over --max-memory is out.
2. Branch and bound on measured bounds.  No server carries more than its closed-loop
   capacity, so candidates are visited best bound first: the first is scanned in full (the
   largest QPS whose p-th percentile meets the SLO); each later one is first tested at the
   leader's answer: failing there it cannot win (one step, not a scan); passing, it is scanned
   upward from there.  A candidate whose bound (plus a noise margin) is below the leader's
   answer is not measured at all.  `exhaustive` scans every candidate instead.
3. Head to head: the leader and the runner-up are re-tested, interleaved, at the leader's
   answer.  The leader wins only if it passes every time, the runner-up fails every time, and
   the gap exceeds the scan's resolution; otherwise they are tied and the one in full precision,
   then the one using less memory, is recommended.  A reduced precision must beat the best fp32
   candidate this way to be chosen.

The latency objective (--qps) is the same shape with the bound flipped: a candidate's p-th
percentile at the load is at least its single-query service time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ..errors import InferometerError
from ..results.tunerun import Candidate, Probe, Scan, Trial, Verdict
from ..stats import process_ratio, significant, spread, welch_p
from .queueing import bound_qps, simulated_p99

NOISE = 0.05  # the smallest p99 change the latency objective calls (as compare's floor)
LONGEST_STEP_S = 120.0  # the scan's lowest load holds its queries in this long


class Bench(Protocol):
    spent_s: float  # time the search has spent so far (what --budget bounds)

    def probe(self, c: Candidate, sizes: Sequence[int]) -> Probe: ...
    def scan(self, c: Candidate, start_qps: float, known_valid: float | None,
             max_steps: int) -> Scan: ...
    def test(self, c: Candidate, qps: float, rep: int) -> Trial: ...


@dataclass(frozen=True)
class Goal:
    objective: str = "throughput"  # max QPS under the SLO; "latency": min p99 at `qps`
    slo_s: float | None = None
    percentile: float = 99.0
    qps: float | None = None
    max_memory_mb: float | None = None
    budget_s: float | None = None
    exhaustive: bool = False
    precision: float = 0.1  # the scan's bisection resolution: no smaller QPS gap is called
    retests: int = 1  # head-to-head re-tests a side (on top of what the search measured)
    # a close win (gap under 2 x precision) must hold over this many re-tests a side, as the
    # budget allows: one agreeing pair near the resolution is thin evidence
    close_retests: int = 3
    margin: float = 0.15  # a capacity bound may read this much low on a noisy host
    min_queries: int = 459  # p99 at 99% confidence (loadgen.arrivals.min_queries)
    step_floor_s: float = 3.0  # the shortest server step
    arrivals: str = "exponential"
    sim_queries: int = 4000  # queries per simulated test of the ideal-server bound


@dataclass(frozen=True)
class Outcome:
    verdicts: tuple[Verdict, ...]
    chosen: Candidate | None
    runner_up: Candidate | None
    default: Candidate | None
    tie: bool
    why: str  # the head-to-head's words
    retests: tuple[tuple[str, float, bool, float], ...] = ()  # (candidate id, qps, valid, p99)
    closest: str = ""  # when nothing met the SLO: which candidate came closest, by how much


class BudgetTooSmall(InferometerError):
    """The budget cannot hold one confirmation."""


def _b(c: Candidate) -> str:
    return str(c.max_batch)


def _step_s(goal: Goal, qps: float) -> float:
    return max(goal.step_floor_s, goal.min_queries / max(qps, 1e-9))


def search(space: Sequence[Candidate], bench: Bench, goal: Goal,
           rejected: Mapping[str, str] | None = None) -> Outcome:
    """`rejected`: "runtime/precision" -> why it failed the accuracy check."""
    rejected = rejected or {}
    verdicts: dict[str, Verdict] = {}

    def put(c: Candidate, status: str, note: str = "", **kw: float | None) -> None:
        verdicts[c.id] = Verdict(c, status, note, **kw)  # type: ignore[arg-type]

    live = []
    for c in space:
        why = rejected.get(f"{c.runtime}/{c.precision}")
        if why is not None:
            put(c, "pruned", f"accuracy: {why}")
        else:
            live.append(c)
    groups: dict[str, list[Candidate]] = {}
    for c in live:
        groups.setdefault(c.group, []).append(c)
    probes = {}
    for g, members in groups.items():
        sizes = sorted({c.max_batch for c in members})
        probes[g] = bench.probe(members[0], sizes)
    feasible: list[tuple[float, Candidate]] = []
    estimates: dict[str, float] = {}  # simulated p99 (ms) of candidates pruned by simulation
    for c in live:
        p = probes[c.group]
        if not p.ok:
            put(c, "failed", p.error)
            continue
        service, memory = p.service_ms.get(_b(c)), p.memory_mb.get(_b(c))
        cap = max(v for k, v in p.capacity_qps.items() if int(k) <= c.max_batch)
        if goal.slo_s is not None and service is not None and service > goal.slo_s * 1e3:
            put(c, "pruned", f"one batch of {c.max_batch} takes {service:.1f} ms alone, over "
                f"the {goal.slo_s * 1e3:g} ms SLO", bound=cap)
        elif goal.max_memory_mb is not None and memory and memory > goal.max_memory_mb:
            put(c, "pruned", f"memory {memory:.0f} MB over the {goal.max_memory_mb:g} MB limit",
                memory_mb=memory, bound=cap)
        elif goal.objective == "latency" and goal.qps and cap < goal.qps:
            put(c, "pruned", f"capacity {cap:.1f}/s below the {goal.qps:g} QPS load", bound=cap,
                memory_mb=memory)
        elif goal.objective == "throughput":
            assert goal.slo_s is not None
            times = {int(k): v for k, v in p.service_ms.items() if int(k) <= c.max_batch}
            shape = (c.instances, times, c.max_batch, c.delay_s * 1e3, goal.arrivals,
                     goal.sim_queries, p.spread())
            ideal = bound_qps(goal.slo_s * 1e3, goal.percentile, *shape)
            low = goal.min_queries / LONGEST_STEP_S
            if ideal < low:
                sim = simulated_p99(low, goal.percentile, *shape)
                estimates[c.id] = sim
                put(c, "pruned", f"even servers that never slow each other, with its measured "
                    f"call times, reach p{goal.percentile:g} {sim:.0f} ms at the lowest load a "
                    f"p{goal.percentile:g} test runs at ({low:.1f} QPS: {goal.min_queries} "
                    f"queries in {LONGEST_STEP_S:g} s)", bound=ideal, memory_mb=memory)
            else:
                feasible.append((min(ideal, cap), c))
        else:
            feasible.append((p.service_ms["1"], c))
    if not feasible:
        return _nothing(space, verdicts, probes, goal, estimates)
    if goal.objective == "latency":
        return _latency(feasible, bench, goal, verdicts, probes)
    return _throughput(feasible, bench, goal, verdicts, probes, space)


_MIN_SCAN = 4  # the fewest steps worth starting a scan with: bracket, bisect, confirm


def _scan_cost(goal: Goal, qps: float) -> float:
    """The shortest scan worth starting: a load step takes longer the lower the load."""
    return _MIN_SCAN * _step_s(goal, qps)


def _throughput(feasible: list[tuple[float, Candidate]], bench: Bench, goal: Goal,
                verdicts: dict[str, Verdict], probes: Mapping[str, Probe],
                space: Sequence[Candidate]) -> Outcome:
    feasible.sort(key=lambda bc: (-bc[0], bc[1].id))
    # The untuned deployment goes first (its answer is the baseline every gain is stated
    # against, and the first leader), then everything else best bound first.
    first = next((bc for bc in feasible if bc[1].is_default), None)
    if first is not None:
        feasible.remove(first)
        feasible.insert(0, first)
    top = feasible[0][0]
    # what the end needs: the head-to-head, 2 x retests steps at about the leader's answer
    reserve = 2 * goal.retests * _step_s(goal, 0.8 * top)
    if goal.budget_s is not None and bench.spent_s + _scan_cost(goal, 0.8 * top) + reserve \
            > goal.budget_s:
        need = bench.spent_s + _scan_cost(goal, 0.8 * top) + reserve
        raise BudgetTooSmall(f"--budget {goal.budget_s:g}s cannot hold one confirmation: the "
                             f"probes took {bench.spent_s:.0f} s and a scan with its checks "
                             f"needs about {need - bench.spent_s:.0f} s more; give --budget "
                             f"{math.ceil(need / 60)}m at least")
    answers: dict[str, Scan] = {}
    best: Candidate | None = None

    def mem(c: Candidate) -> float | None:
        return probes[c.group].memory_mb.get(_b(c))

    def record(c: Candidate, s: Scan, bound: float) -> None:
        answers[c.id] = s
        if s.error:
            verdicts[c.id] = Verdict(c, "failed", s.error, bound=bound)
        elif s.max_qps <= 0:
            # its lowest measured tail, at the load it was seen: what "closest" names
            key = f"{goal.percentile:g}"
            tails = [(st.tiles_s[key] * 1e3, st.offered_qps) for st in s.log
                     if key in st.tiles_s]
            low = min(tails, default=None)
            note = "no load tried met the SLO" + (
                f" (lowest p{key} {low[0]:.1f} ms, at {low[1]:g} QPS)" if low else "")
            verdicts[c.id] = Verdict(c, "measured", note, None, low[0] if low else None,
                                     s.memory_mb or mem(c), bound)
        else:
            verdicts[c.id] = Verdict(c, "measured", "", s.max_qps, s.p99_ms,
                                     s.memory_mb or mem(c), bound)

    def leader_qps() -> float:
        return answers[best.id].max_qps if best is not None else 0.0

    def steps_left(q: float, keep: float | None = None) -> int:
        """Server steps at about `q` that the budget still holds after `keep` (by default
        the head-to-head's steps)."""
        if goal.budget_s is None:
            return 20
        left = goal.budget_s - bench.spent_s - (reserve if keep is None else keep)
        return int(left // _step_s(goal, q))

    spent = False  # once the budget holds no more, it holds none for the rest
    for bound, c in feasible:
        q = leader_qps()
        start = round(max(0.5, 0.8 * bound), 2)
        scanning = best is None or goal.exhaustive
        # decided by its bound, which costs nothing: said so even after the budget ran out
        if not scanning and bound * (1 + goal.margin) < q:
            # "about": a probe that caught a slow spell makes the bound read low
            verdicts[c.id] = Verdict(c, "bound", f"ideal servers carry about {bound:.1f}/s; "
                                     f"with the {goal.margin:.0%} margin, below the leader's "
                                     f"{q:g} QPS", bound=bound, memory_mb=mem(c))
            continue
        spent = spent or steps_left(start if scanning else q) < (_MIN_SCAN if scanning else 1)
        if spent:
            verdicts[c.id] = Verdict(c, "not measured", "the budget ran out", bound=bound,
                                     memory_mb=mem(c))
            continue
        if scanning:
            s = bench.scan(c, start, None, steps_left(start))
        else:
            t = bench.test(c, q, 0)
            if not t.valid:
                verdicts[c.id] = Verdict(c, "beaten", f"fails the SLO at the leader's {q:g} QPS"
                                         f" (p{goal.percentile:g} {t.p99_ms:.1f} ms)",
                                         bound=bound, memory_mb=t.memory_mb or mem(c))
                continue
            if steps_left(q) < 2:
                verdicts[c.id] = Verdict(c, "measured", f"passed at the leader's {q:g} QPS; "
                                         "the budget ran out before its scan upward", q,
                                         t.p99_ms, t.memory_mb or mem(c), bound)
                continue
            s = bench.scan(c, q, q, steps_left(q))
            if s.max_qps == q and s.p99_ms is None:  # its answer is the test just passed
                s = replace(s, p99_ms=t.p99_ms)
        record(c, s, bound)
        if s.max_qps > leader_qps() and not s.error:
            best = c
    if best is None:
        return _nothing(space, verdicts, probes, goal)
    # the runner-up: the best other measured answer; a reduced precision meets fp32's best
    pool = [c for _, c in feasible if c.id in answers and c != best
            and answers[c.id].max_qps > 0]
    if best.precision != "fp32":
        pool = [c for c in pool if c.precision == "fp32"] or pool
    runner = max(pool, key=lambda c: (answers[c.id].max_qps, c.id), default=None)
    chosen, tie, why, retests = best, False, _alone(best, answers[best.id], verdicts), []
    if runner is not None:
        qa, qb = answers[best.id].max_qps, answers[runner.id].max_qps
        gap = qa / qb - 1
        lead_ok, runner_ok = [], []
        close = goal.precision < gap < 2 * goal.precision
        wanted = max(goal.retests, goal.close_retests) if close else goal.retests
        for rep in range(1, wanted + 1):  # interleaved: drift hits both alike
            if rep > goal.retests and (not all(lead_ok) or any(runner_ok)
                                       or steps_left(qa, 0.0) < 2):
                break  # already a tie, or the budget holds no more: extra re-tests stop
            ta, tb = bench.test(best, qa, rep), bench.test(runner, qa, rep)
            lead_ok.append(ta.valid)
            runner_ok.append(tb.valid)
            retests += [(best.id, qa, ta.valid, ta.p99_ms), (runner.id, qa, tb.valid, tb.p99_ms)]
        if all(lead_ok) and not any(runner_ok) and gap > goal.precision:
            why = (f"{qa / qb:.2f}x the runner-up's {qb:g} QPS; re-tested interleaved at "
                   f"{qa:g} QPS, it passed {len(lead_ok)} of {len(lead_ok)} (after its scan's "
                   f"pass and confirmation there), the runner-up failed {len(runner_ok)} of "
                   f"{len(runner_ok)}")
        else:
            tie = True
            chosen = _prefer(best, runner, verdicts)
            reasons = []
            if gap <= goal.precision:
                reasons.append(f"{gap * 100:.0f}% apart, within the scan's "
                               f"{goal.precision * 100:g}% resolution")
            # said of the two as the output names them: a tie may recommend the search's
            # runner-up (less memory), and "the leader failed" then read as the recommended
            ok = {best.id: lead_ok, runner.id: runner_ok}
            said = [f"the {role} passed {ok[c.id].count(True)} of {len(ok[c.id])}"
                    for role, c in (("recommended", chosen),
                                    ("runner-up", runner if chosen == best else best))]
            if retests:
                reasons.append(f"re-tested interleaved at {qa:g} QPS, {' and '.join(said)}")
            why = "; ".join(reasons)
    # the default deployment of the chosen runtime: the gain is stated against it
    default = next((c for c in space if c.is_default and c.runtime == chosen.runtime), None)
    bounds = {c.id: b for b, c in feasible}
    if default is not None and default.id in bounds and default.id not in answers:
        start = round(max(0.5, 0.8 * bounds[default.id]), 2)
        if steps_left(start, 0.0) >= _MIN_SCAN:
            record(default, bench.scan(default, start, None, steps_left(start, 0.0)),
                   bounds[default.id])
    return _finish(verdicts, chosen, runner if chosen == best else best, default, tie, why,
                   retests)


def _alone(best: Candidate, scan: Scan, verdicts: Mapping[str, Verdict]) -> str:
    """Why there is no runner-up: said as it was found (a candidate that failed a test at
    the leader's load was never scanned, so it may meet the SLO at a lower one)."""
    others = [v for v in verdicts.values() if v.candidate != best]
    beaten = sum(v.status == "beaten" for v in others)
    bound = sum(v.status == "bound" for v in others)
    if not beaten and not bound:
        return "the only candidate that met the SLO"
    parts = ([f"{beaten} failed the SLO when tested there"] if beaten else []) + (
        [f"{bound} cannot reach it (their ideal-server bound is below)"] if bound else [])
    return f"no other candidate carries {scan.max_qps:g} QPS: " + ", ".join(parts)


def _prefer(a: Candidate, b: Candidate, verdicts: Mapping[str, Verdict]) -> Candidate:
    """Between two tied candidates: full precision first, then the lower memory."""
    def key(c: Candidate) -> tuple[int, float]:
        return (c.precision != "fp32", verdicts[c.id].memory_mb or math.inf)
    return min((a, b), key=key)


def _finish(verdicts: dict[str, Verdict], chosen: Candidate, runner: Candidate | None,
            default: Candidate | None, tie: bool, why: str,
            retests: list[tuple[str, float, bool, float]]) -> Outcome:
    verdicts[chosen.id] = replace(verdicts[chosen.id], status="recommended")
    if runner is not None:
        verdicts[runner.id] = replace(verdicts[runner.id], status="runner-up")
    if default is not None and default not in (chosen, runner) and default.id in verdicts:
        verdicts[default.id] = replace(verdicts[default.id], status="default")
    return Outcome(tuple(verdicts.values()), chosen, runner, default, tie, why, tuple(retests))


def _latency(feasible: list[tuple[float, Candidate]], bench: Bench, goal: Goal,
             verdicts: dict[str, Verdict], probes: Mapping[str, Probe]) -> Outcome:
    assert goal.qps is not None
    qps = goal.qps
    feasible.sort(key=lambda bc: (bc[0], bc[1].id))  # lowest service time first
    step = _step_s(goal, qps)
    tests: dict[str, list[Trial]] = {}
    best: Candidate | None = None

    def p99(c: Candidate) -> float:
        return sorted(t.p99_ms for t in tests[c.id])[len(tests[c.id]) // 2]

    def mem(c: Candidate) -> float | None:
        return probes[c.group].memory_mb.get(_b(c))

    reserve = 2 * goal.retests * step
    spent = False
    for bound, c in feasible:
        if best is not None and not goal.exhaustive and bound / (1 + goal.margin) > p99(best):
            verdicts[c.id] = Verdict(c, "bound", f"one query alone takes {bound:.1f} ms, over "
                                     f"the best p{goal.percentile:g} {p99(best):.1f} ms",
                                     bound=bound, memory_mb=mem(c))
            continue
        spent = spent or (goal.budget_s is not None
                          and bench.spent_s + step + reserve > goal.budget_s)
        if spent:
            if best is None:
                raise BudgetTooSmall(f"--budget {goal.budget_s:g}s cannot hold one test at "
                                     f"{qps:g} QPS with its re-tests: give --budget "
                                     f"{math.ceil((bench.spent_s + step + reserve) / 60)}m "
                                     "at least")
            verdicts[c.id] = Verdict(c, "not measured", "the budget ran out", bound=bound,
                                     memory_mb=mem(c))
            continue
        t = bench.test(c, qps, 0)
        tests[c.id] = [t]
        if not t.valid:
            verdicts[c.id] = Verdict(c, "measured", "; ".join(t.reasons), None, t.p99_ms,
                                     t.memory_mb or mem(c), bound)
            continue
        verdicts[c.id] = Verdict(c, "measured", "", qps, t.p99_ms, t.memory_mb or mem(c), bound)
        if best is None or t.p99_ms < p99(best):
            best = c
    if best is None:
        return _nothing([c for _, c in feasible], verdicts, probes, goal)
    valid = [c for _, c in feasible if c.id in tests and tests[c.id][0].valid and c != best]
    runner = min(valid, key=lambda c: (p99(c), c.id), default=None)
    default = next((c for _, c in feasible if c.is_default and c.runtime == best.runtime), None)
    chosen, tie, why, retests = best, False, "the only candidate that met the load", []
    if runner is not None:
        for rep in range(1, goal.retests + 1):
            for c in (best, runner):
                t = bench.test(c, qps, rep)
                tests[c.id].append(t)
                retests.append((c.id, qps, t.valid, t.p99_ms))
        a = [t.p99_ms for t in tests[best.id]]
        b = [t.p99_ms for t in tests[runner.id]]
        ratio = (sum(b) / len(b)) / (sum(a) / len(a))
        low, high = process_ratio(a, b)
        floor = max(NOISE, spread(a) or 0.0, spread(b) or 0.0)
        p = welch_p(a, b)
        test = "" if p is None else f", p={p:.2f}"
        if significant(ratio, low, high, floor, p) and ratio > 1 and all(
                t.valid for t in tests[best.id]):
            why = (f"p{goal.percentile:g} {p99(best):.1f} ms against the runner-up's "
                   f"{p99(runner):.1f} ms: {ratio:.2f}x, 95% CI [{low:.2f}, {high:.2f}], "
                   f"floor {floor * 100:.0f}%{test}, {len(a)} tests a side")
        else:
            tie = True
            why = (f"the runner-up's p{goal.percentile:g} is {ratio:.2f}x, 95% CI "
                   f"[{low:.2f}, {high:.2f}], floor {floor * 100:.0f}%{test}, {len(a)} tests "
                   "a side")
            chosen = _prefer(best, runner, verdicts)
    return _finish(verdicts, chosen, runner if chosen == best else best, default, tie, why,
                   retests)


def _nothing(space: Sequence[Candidate], verdicts: dict[str, Verdict],
             probes: Mapping[str, Probe], goal: Goal,
             estimates: Mapping[str, float] | None = None) -> Outcome:
    """Nothing met the SLO: name the candidate that came closest and by how much, from the
    best evidence there is: a measured percentile, else a simulated one, else one call alone."""
    closest = ""
    by = {c.id: c for c in space}
    for source, seen in (
            ("measured", [(v.p99_ms, v.candidate) for v in verdicts.values()
                          if v.p99_ms is not None and v.p99_ms < math.inf]),
            ("simulated at the lowest testable load", [(ms, by[cid]) for cid, ms in
                                                       (estimates or {}).items()]),
            ("one call alone", [(p.service_ms[_b(c)], c) for c in space
                                if (p := probes.get(c.group)) is not None and p.ok
                                and _b(c) in p.service_ms])):
        if seen:
            ms, c = min(seen, key=lambda x: (x[0], x[1].id))
            what = f"p{goal.percentile:g} {ms:.1f} ms ({source})" if source != \
                "one call alone" else f"{ms:.1f} ms for one call alone"
            closest = f"closest: {c.label()} at {what}"
            if goal.slo_s is not None:
                closest += f", {ms / (goal.slo_s * 1e3):.2f}x the {goal.slo_s * 1e3:g} ms SLO"
            break
    for c in space:
        verdicts.setdefault(c.id, Verdict(c, "not measured"))
    return Outcome(tuple(verdicts.values()), None, None, None, False, "nothing met the goal",
                   closest=closest)
