"""compare for two load runs (loadtest or scan; our pool or a remote server): the same steps
and scan answers side by side.  One measurement a side has no interval, so a difference is
marked only beyond the measurement's own resolution (a scan bisects to 10%; a concurrency
step is stable within 10%), and the words say that this is not a noise-tested verdict."""

from __future__ import annotations

from ..results.loadrun import LoadRun, StepResult
from .table import render

RESOLUTION = 0.10


def _step_key(config: str, st: StepResult, by_config: bool) -> tuple:
    where = (config,) if by_config else ()
    if st.concurrency is not None:
        return (*where, f"concurrency {st.concurrency}")
    if st.scenario == "server":
        target = "-" if st.target_s is None else f"{st.target_s:g}s"
        return (*where, f"server {st.arrivals} {st.offered_qps:g} qps, bound {target}")
    return (*where, st.scenario)


def _word(ratio: float, higher_is_better: bool) -> str:
    if abs(ratio - 1) <= RESOLUTION:
        return "within resolution"
    better = ratio > 1 if higher_is_better else ratio < 1
    return "better in B" if better else "worse in B"


def _side(run: LoadRun, label: str) -> str:
    what = run.target or f"{run.runtime}:{run.variant} (our pool)"
    return f"{label}: {run.kind} of {run.model.name} at {what}"


def load_comparison_text(a: LoadRun, b: LoadRun, label_a: str, label_b: str) -> str:
    out = [_side(a, f"A {label_a}"), _side(b, f"B {label_b}")]
    by_config = not (len({s.config for s in a.scan}) <= 1 and len({s.config for s in b.scan})
                     <= 1)
    if a.percentile != b.percentile:
        out.append(f"note: the runs bound different percentiles (p{a.percentile:g} vs "
                   f"p{b.percentile:g}); their scan answers do not compare")
    rows = []
    qa = {(*((c,) if by_config else ()), arr, t): q for c, by_a in a.results.items()
          for arr, by_t in by_a.items() for t, q in by_t.items()}
    qb = {(*((c,) if by_config else ()), arr, t): q for c, by_a in b.results.items()
          for arr, by_t in by_a.items() for t, q in by_t.items()}
    for k in [k for k in qa if k in qb]:
        x, y = qa[k], qb[k]
        if x > 0 and y > 0:
            rows.append([" ".join(k[:-1]) + f" max QPS, p{a.percentile:g} <= {k[-1]}s",
                         f"{x:g}", f"{y:g}", f"{y / x:.2f}", _word(y / x, True)])
        else:
            rows.append([" ".join(k[:-1]) + f" max QPS, p{a.percentile:g} <= {k[-1]}s",
                         f"{x:g}", f"{y:g}", "-", "none met it" if x <= 0 and y <= 0 else
                         ("met only in B" if y > 0 else "met only in A")])
    sa = {_step_key(s.config, s.step, by_config): s.step for s in a.scan} if not a.results \
        else {}
    sb = {_step_key(s.config, s.step, by_config): s.step for s in b.scan} if not b.results \
        else {}
    for k in [k for k in sa if k in sb]:
        x, y = sa[k], sb[k]
        name = " ".join(k)
        if x.achieved_qps > 0 and y.achieved_qps > 0:
            r = y.achieved_qps / x.achieved_qps
            rows.append([f"{name}: throughput", f"{x.achieved_qps:.2f}", f"{y.achieved_qps:.2f}",
                         f"{r:.2f}", _word(r, True)])
        for tile in ("50", "99"):
            lx, ly = x.tiles_s.get(tile, 0.0), y.tiles_s.get(tile, 0.0)
            if lx > 0 and ly > 0:
                rows.append([f"{name}: p{tile} ms", f"{lx * 1e3:.2f}", f"{ly * 1e3:.2f}",
                             f"{ly / lx:.2f}", _word(ly / lx, False)])
        if not (x.valid and y.valid):
            rows.append([f"{name}: verdict", "VALID" if x.valid else "INVALID",
                         "VALID" if y.valid else "INVALID", "-", "an INVALID step does not "
                         "compare"])
    if not rows:
        out.append("no common steps or scan answers: compare load runs of the same scenario "
                   "(scan targets, concurrency levels, or offered loads)")
        return "\n".join(out)
    out += [render(("measure", "A", "B", "B/A", "difference"), rows, wrap={0: 60}),
            f"one measurement a side has no interval: differences are marked beyond the "
            f"measurements' {RESOLUTION:.0%} resolution (scan bisection, concurrency "
            "stability), not tested against noise; repeat the runs to see how much they move"]
    return "\n".join(out)
