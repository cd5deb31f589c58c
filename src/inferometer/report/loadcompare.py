"""compare for load runs (loadtest or scan; our pool or a remote server): the same steps and
scan answers side by side, one or several runs a side.  A run measures each figure once, so
runs are what show the noise: several runs a side are tested by the process-level rule of
every verdict (report.repeated), one run a side is shown and not called."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..results.loadrun import LoadRun, StepResult
from .repeated import NO_CHANGE, UNTESTED, call, interval_text, rule_text
from .table import render

Key = tuple[str, ...]


def _step_key(config: str, st: StepResult, by_config: bool) -> Key:
    where = (config,) if by_config else ()
    if st.concurrency is not None:
        return (*where, f"concurrency {st.concurrency}")
    if st.scenario == "server":
        target = "-" if st.target_s is None else f"{st.target_s:g}s"
        return (*where, f"server {st.arrivals} {st.offered_qps:g} qps, bound {target}")
    return (*where, st.scenario)


def _side(runs: Sequence[LoadRun], label: str) -> list[str]:
    def what(run: LoadRun) -> str:
        return (f"{run.kind} of {run.model.name} at "
                + (run.target or f"{run.runtime}:{run.variant} (our pool)"))

    kinds = sorted({what(r) for r in runs})
    count = f" ({len(runs)} runs)" if len(runs) > 1 else ""
    out = [f"{label}{count}: {kinds[0]}"]
    if len(kinds) > 1:
        out.append(f"note: {label.split()[0]}'s runs are not repetitions of one load test "
                   f"({'; '.join(kinds[1:])})")
    return out


def _answers(run: LoadRun, by_config: bool) -> dict[Key, float]:
    return {(*((c,) if by_config else ()), arr, t): q for c, by_a in run.results.items()
            for arr, by_t in by_a.items() for t, q in by_t.items()}


def _steps(run: LoadRun, by_config: bool) -> dict[Key, StepResult]:
    return {} if run.results else {_step_key(s.config, s.step, by_config): s.step
                                   for s in run.scan}


def _keys(sides: Sequence[Sequence[dict]]) -> tuple[list, list]:
    """The keys every run of both sides has (in the first run's order), and those only some
    runs have."""
    runs = [d for side in sides for d in side]
    common = [k for k in runs[0] if all(k in d for d in runs[1:])]
    partial = [k for k in dict.fromkeys(k for d in runs for k in d) if k not in common]
    return common, partial


@dataclass(frozen=True)
class Row:
    measure: str
    a: str  # as shown: the runs' mean, or what the runs say
    b: str
    a_runs: tuple[float, ...]  # each run's figure (none for a row of verdicts)
    b_runs: tuple[float, ...]
    ratio: float | None
    low: float | None  # the ratio's 95% interval over the runs (None: one run a side)
    high: float | None
    difference: str


@dataclass(frozen=True)
class LoadComparison:
    sides: tuple[str, ...]  # what each side is, and notes on the runs
    rows: tuple[Row, ...]
    rule: str  # how the differences were called

    def text(self) -> str:
        if not self.rows:
            return "\n".join(self.sides)
        table = render(("measure", "A", "B", "B/A", "95% CI", "difference"),
                       [[r.measure, r.a, r.b, "-" if r.ratio is None else f"{r.ratio:.2f}",
                         interval_text(r.low, r.high), r.difference]
                        for r in self.rows], wrap={0: 60})
        return "\n".join([*self.sides, table, self.rule])


def _row(name: str, xs: Sequence[float], ys: Sequence[float], higher_is_better: bool,
         fmt: str = "{:.2f}") -> Row:
    c = call(xs, ys, higher_is_better)
    return Row(name, fmt.format(sum(xs) / len(xs)), fmt.format(sum(ys) / len(ys)),
               tuple(xs), tuple(ys), c.ratio, c.low, c.high, c.word)


def _met(qs: Sequence[float]) -> str:
    met = sum(q > 0 for q in qs)
    return f"{qs[0]:g}" if met == len(qs) == 1 else f"met in {met} of {len(qs)}"


def _met_word(xs: Sequence[float], ys: Sequence[float]) -> str:
    """Some runs found no load that met the bound: only "every run of one side, none of the
    other" is a finding, and only with several runs a side."""
    met_a, met_b = sum(x > 0 for x in xs), sum(y > 0 for y in ys)
    if met_a == met_b == 0:
        return "met in no run"
    if min(len(xs), len(ys)) < 2:
        return UNTESTED
    if (met_a, met_b) == (len(xs), 0):
        return "met only in A"
    if (met_a, met_b) == (0, len(ys)):
        return "met only in B"
    return NO_CHANGE


def load_comparison(a: Sequence[LoadRun], b: Sequence[LoadRun], label_a: str,
                    label_b: str) -> LoadComparison:
    out = _side(a, f"A {label_a}") + _side(b, f"B {label_b}")
    by_config = len({s.config for r in (*a, *b) for s in r.scan}) > 1
    if len({r.percentile for r in (*a, *b)}) > 1:
        out.append("note: the runs bound different percentiles; their scan answers do not "
                   "compare")
    rows = []
    qa, qb = [_answers(r, by_config) for r in a], [_answers(r, by_config) for r in b]
    common_q, partial_q = _keys([qa, qb])
    for k in common_q:
        xs, ys = [q[k] for q in qa], [q[k] for q in qb]
        name = " ".join(k[:-1]) + f" max QPS, p{a[0].percentile:g} <= {k[-1]}s"
        if min(xs) > 0 and min(ys) > 0:
            rows.append(_row(name, xs, ys, True, "{:g}"))
        else:
            rows.append(Row(name, _met(xs), _met(ys), tuple(xs), tuple(ys), None, None, None,
                            _met_word(xs, ys)))
    sa, sb = [_steps(r, by_config) for r in a], [_steps(r, by_config) for r in b]
    common_s, partial_s = _keys([sa, sb])
    for k in common_s:
        xs, ys = [s[k] for s in sa], [s[k] for s in sb]
        name = " ".join(k)
        if not all(s.valid for s in (*xs, *ys)):
            rows.append(Row(f"{name}: verdict", _validity(xs), _validity(ys), (), (), None,
                            None, None, "an INVALID step does not compare"))
            continue
        if min(s.achieved_qps for s in (*xs, *ys)) > 0:
            rows.append(_row(f"{name}: throughput", [s.achieved_qps for s in xs],
                             [s.achieved_qps for s in ys], True))
        for tile in ("50", "99"):
            lx, ly = [s.tiles_s.get(tile, 0.0) * 1e3 for s in xs], [
                s.tiles_s.get(tile, 0.0) * 1e3 for s in ys]
            if min(*lx, *ly) > 0:
                rows.append(_row(f"{name}: p{tile} ms", lx, ly, False))
    partial = [" ".join(k[:-1]) + f" max QPS <= {k[-1]}s" for k in partial_q]
    partial += [" ".join(k) for k in partial_s]
    if partial and rows:
        out.append("not in every run, so not compared: " + "; ".join(partial))
    if not rows:
        out.append("no common steps or scan answers: compare load runs of the same scenario "
                   "(scan targets, concurrency levels, or offered loads)")
    return LoadComparison(tuple(out), tuple(rows), rule_text(len(a), len(b)))


def _validity(steps: Sequence[StepResult]) -> str:
    return " ".join("VALID" if s.valid else "INVALID" for s in steps)


def load_comparison_text(a: Sequence[LoadRun], b: Sequence[LoadRun], label_a: str,
                         label_b: str) -> str:
    return load_comparison(a, b, label_a, label_b).text()
