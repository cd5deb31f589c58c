"""compare for two tune runs: the two recommendations side by side, and the max QPS of every
candidate both measured.  A scan's answer is one bisected number that moves 10-15% between
identical runs here, and a tune run scans a candidate once: the figures are shown, and no
difference is called on them (report.repeated); each run's recommendation rests on its own
head-to-head re-tests."""

from __future__ import annotations

from ..results.tunerun import TuneRun
from .repeated import UNTESTED, rule_text
from .table import render


def tune_comparison_text(a: TuneRun, b: TuneRun, label_a: str, label_b: str) -> str:
    out = [f"A: {label_a}", f"B: {label_b}"]
    ra, rb = a.recommendation, b.recommendation
    for side, r in (("A", ra), ("B", rb)):
        out.append(f"{side} recommends: " + (f"{r.candidate.label()} at {r.max_qps:g} QPS"
                                             if r and r.max_qps else
                                             f"{r.candidate.label()}" if r else "nothing"))
    if ra and rb:
        out.append("same pick" if ra.candidate == rb.candidate else
                   "different picks" + (" (A's pick was tied with its runner-up)" if ra.tie
                                        else ""))
    if (a.slo_s, a.percentile, a.objective) != (b.slo_s, b.percentile, b.objective):
        out.append("note: the runs had different goals; their figures do not compare")
    qa = {v.candidate.id: v for v in a.verdicts if v.max_qps and v.max_qps > 0}
    qb = {v.candidate.id: v for v in b.verdicts if v.max_qps and v.max_qps > 0}
    rows = []
    for cid in sorted(set(qa) & set(qb)):
        x, y = qa[cid].max_qps, qb[cid].max_qps
        rows.append([qa[cid].candidate.label(), f"{x:g}", f"{y:g}",
                     f"{y / x:.2f}", UNTESTED])  # type: ignore[operator]
    if rows:
        out += [render(("candidate", "A max QPS", "B max QPS", "B/A", "difference"), rows,
                       wrap={0: 60}),
                rule_text(1, 1, "scan", repeat=False) + "; within each run, its head-to-head "
                "re-tests are the tested verdict (see its recommendation)"]
    else:
        out.append("no candidate was scanned in both runs")
    return "\n".join(out)
