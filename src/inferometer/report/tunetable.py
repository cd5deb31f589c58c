"""The tune run's views: the recommendation with its evidence, every candidate's verdict, the
Pareto fronts (QPS vs tail latency, QPS vs memory)."""

from __future__ import annotations

from ..results.tunerun import TuneRun, Verdict
from .table import render

TUNE_HEADERS = ("candidate", "precision", "layout", "batching", "status", "max QPS",
                "p99 ms", "peak MB", "bound", "note")
PARETO_HEADERS = ("front", "candidate", "max QPS", "p99 ms", "peak MB")


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None or x < 0 else format(x, fmt)


def _qps(run: TuneRun, v: Verdict) -> float | None:
    return v.max_qps if run.objective == "throughput" else None


def tune_rows(run: TuneRun) -> list[list[str]]:
    order = {"recommended": 0, "runner-up": 1, "default": 2, "measured": 3, "beaten": 4,
             "bound": 5, "not measured": 6, "pruned": 7, "failed": 8}
    rows = []
    for v in sorted(run.verdicts, key=lambda v: (order.get(v.status, 9), -(v.max_qps or 0),
                                                 v.p99_ms or 0, v.candidate.id)):
        c = v.candidate
        rows.append([f"{c.runtime}/{c.variant}", c.precision, c.layout, c.batching, v.status,
                     _f(_qps(run, v)), _f(v.p99_ms), _f(v.memory_mb, ".0f"),
                     _f(v.bound), v.note])
    return rows


def pareto(run: TuneRun, other: str) -> list[Verdict]:
    """Measured candidates no other beats on both QPS (higher) and `other` (p99 or memory,
    lower): the trade-offs worth knowing about."""
    pts = [v for v in run.verdicts if v.max_qps and v.max_qps > 0
           and getattr(v, other) is not None]

    def worse(a: Verdict, b: Verdict) -> bool:  # b dominates a
        ao, bo = getattr(a, other), getattr(b, other)
        return (b.max_qps >= a.max_qps and bo <= ao  # type: ignore[operator]
                and (b.max_qps > a.max_qps or bo < ao))  # type: ignore[operator]
    front = [a for a in pts if not any(worse(a, b) for b in pts if b is not a)]
    return sorted(front, key=lambda v: -(v.max_qps or 0))


def pareto_rows(run: TuneRun) -> list[list[str]]:
    rows = []
    for other, name in (("p99_ms", "QPS vs p99"), ("memory_mb", "QPS vs memory")):
        for v in pareto(run, other):
            rows.append([name, v.candidate.label(), _f(v.max_qps), _f(v.p99_ms),
                         _f(v.memory_mb, ".0f")])
    return rows


def goal_text(run: TuneRun) -> str:
    if run.objective == "throughput":
        head = f"max QPS with p{run.percentile:g} <= {(run.slo_s or 0) * 1e3:g} ms"
    else:
        head = f"lowest p{run.percentile:g} at {run.qps:g} QPS"
        if run.slo_s is not None:
            head += f" (within {run.slo_s * 1e3:g} ms)"
    limits = []
    if run.max_memory_mb is not None:
        limits.append(f"memory <= {run.max_memory_mb:g} MB")
    if run.max_accuracy_drop is not None:
        limits.append(f"top-1 drop <= {run.max_accuracy_drop:g} points")
    if run.budget_s is not None:
        limits.append(f"budget {run.budget_s / 60:g} min")
    return head + (", " + ", ".join(limits) if limits else "") + (
        ", exhaustive" if run.exhaustive else "")


def recommendation_lines(run: TuneRun) -> list[str]:
    r = run.recommendation
    if r is None:
        lines = ["no candidate met the goal"]
        if run.closest:
            lines.append(run.closest)
        return lines
    c = r.candidate
    lines = [f"recommended: {c.label()}"]
    if run.objective == "throughput":
        bracket = f" (the scan's bracket: fails at {r.failed_qps:g})" if r.failed_qps else ""
        lines.append(f"  max {r.max_qps:g} QPS with p{run.percentile:g} {_f(r.p99_ms)} ms "
                     f"<= {(run.slo_s or 0) * 1e3:g} ms{bracket}; peak memory "
                     f"{_f(r.memory_mb, '.0f')} MB")
    else:
        lines.append(f"  p{run.percentile:g} {_f(r.p99_ms)} ms at {run.qps:g} QPS; peak memory "
                     f"{_f(r.memory_mb, '.0f')} MB")
    if r.accuracy:
        lines.append(f"  accuracy: {r.accuracy}")
    if r.default is not None and r.default != c:
        if run.objective == "throughput" and r.default_qps and r.max_qps:
            lines.append(f"  vs the default deployment ({r.default.label()}): "
                         f"{r.default_qps:g} QPS, so {r.max_qps / r.default_qps:.2f}x")
        elif r.default_p99_ms and r.p99_ms:
            lines.append(f"  vs the default deployment ({r.default.label()}): p99 "
                         f"{r.default_p99_ms:.1f} ms, so {r.default_p99_ms / r.p99_ms:.2f}x lower")
        else:
            lines.append(f"  the default deployment ({r.default.label()}) met nothing or was "
                         "not measured")
    elif r.default == c:
        lines.append("  it is the default deployment: tuning found nothing better")
    if r.runner_up is not None:
        fig = (f"{r.runner_up_qps:g} QPS" if run.objective == "throughput" and r.runner_up_qps
               else f"p99 {_f(r.runner_up_p99_ms)} ms")
        lines.append(f"  runner-up: {r.runner_up.label()} at {fig}")
    lines.append(f"  {'tied' if r.tie else 'beyond noise'}: {r.why}")
    if r.tie:
        lines.append("  (tied: both named; the one in full precision, then with less memory, "
                     "is recommended)")
    if r.cost_per_million is not None:
        lines.append(f"  cost: {r.cost_per_million:.4f} per million inferences at "
                     f"{run.cost_per_hour:g}/hour")
    return lines


def tune_text(run: TuneRun, every: bool = True) -> str:
    measured = sum(1 for v in run.verdicts if v.status not in ("pruned", "bound",
                                                              "not measured", "failed"))
    head = (f"tune {run.model.name}: {goal_text(run)}; {len(run.space)} candidates, "
            f"{measured} measured under load, {run.measuring_s / 60:.1f} min measuring")
    out = [head, *recommendation_lines(run)]
    if run.accuracy_note:
        out.append(f"accuracy check: {run.accuracy_note}")
    if every and run.verdicts:
        out += ["", render(TUNE_HEADERS, tune_rows(run), wrap={9: 48})]
    rows = pareto_rows(run)
    if rows:
        out += ["", "Pareto fronts (nothing else is better on both):",
                render(PARETO_HEADERS, rows, wrap={1: 72})]
    if run.recommendation is not None:
        out += ["", "deploy (also in deploy.json):", run.recommendation.snippet]
    return "\n".join(out)
