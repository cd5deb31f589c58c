"""The recommendation in words and as files: what to deploy, the evidence, deploy.json and a
snippet for the chosen runtime (the runtime module writes its own settings; the process and
thread layout, pinning and batching are said here, once for every runtime)."""

from __future__ import annotations

from collections.abc import Mapping

from .. import runtimes
from ..results.tunerun import Candidate, Recommendation, TuneRun, Verdict
from .search import Outcome


def cost_per_million(cost_per_hour: float | None, qps: float | None) -> float | None:
    """What a million inferences cost on this machine at its max QPS under the SLO."""
    if cost_per_hour is None or not qps or qps <= 0:
        return None
    return cost_per_hour / (qps * 3600.0) * 1e6


def layout_text(c: Candidate) -> str:
    if c.threads is None:
        return (f"{c.instances} process{'es' if c.instances > 1 else ''}, the runtime's own "
                "thread count, not pinned")
    cpus = [f"{k * c.threads}-{(k + 1) * c.threads - 1}" if c.threads > 1 else str(k)
            for k in range(c.instances)]
    return (f"{c.instances} process{'es' if c.instances > 1 else ''} x {c.threads} thread"
            f"{'s' if c.threads > 1 else ''}, each pinned to its own cores "
            f"(taskset -c {' / '.join(cpus)})")


def batching_text(c: Candidate) -> str:
    if c.max_batch == 1:
        return "no batching: one query per call"
    return (f"dynamic batching: a free process takes the queued queries up to {c.max_batch}, "
            f"waiting at most {c.delay_s * 1e3:g} ms for the batch to fill "
            f"(Triton: max_batch_size {c.max_batch}, max_queue_delay_microseconds "
            f"{round(c.delay_s * 1e6)})")


def snippet(c: Candidate) -> str:
    rt = runtimes.get(c.runtime)()
    make = getattr(rt, "deploy_snippet", None)
    body = make(c.variant, c.threads) if make else \
        f"# {c.runtime} variant {c.variant}: see `inferometer runtimes` for its settings"
    env = "" if c.threads is None else (f"OMP_NUM_THREADS={c.threads} ")
    head = [f"# {c.label()}", f"# layout: {layout_text(c)}", f"# {batching_text(c)}"]
    if c.threads is not None:
        head += [f"# start each process as: {env}taskset -c CPUS python your_server.py"]
    return "\n".join([*head, body])


def recommend(outcome: Outcome, cost_per_hour: float | None,
              accuracy: Mapping[str, str]) -> Recommendation | None:
    """The pick with its figures (the scan's bracket is added by the caller, which holds the
    measurements)."""
    c = outcome.chosen
    if c is None:
        return None
    v = {x.candidate.id: x for x in outcome.verdicts}

    def fig(x: Candidate | None) -> Verdict | None:
        return v.get(x.id) if x is not None else None

    me, ru, de = fig(c), fig(outcome.runner_up), fig(outcome.default)
    assert me is not None
    return Recommendation(
        candidate=c, max_qps=me.max_qps, failed_qps=None, p99_ms=me.p99_ms,
        memory_mb=me.memory_mb, tie=outcome.tie, why=outcome.why,
        runner_up=outcome.runner_up, runner_up_qps=ru.max_qps if ru else None,
        runner_up_p99_ms=ru.p99_ms if ru else None, default=outcome.default,
        default_qps=de.max_qps if de else None, default_p99_ms=de.p99_ms if de else None,
        accuracy=accuracy.get(c.precision, ""),
        cost_per_million=cost_per_million(cost_per_hour, me.max_qps),
        snippet=snippet(c))


def deploy(run: TuneRun) -> dict[str, object]:
    """deploy.json: the decision as data, for a server to read."""
    r = run.recommendation
    assert r is not None
    c = r.candidate
    return {
        "model": run.model.name, "runtime": c.runtime, "variant": c.variant,
        "precision": c.precision, "instances": c.instances, "threads_per_instance": c.threads,
        "pin": c.threads is not None,
        "dynamic_batching": None if c.max_batch == 1 else
        {"max_batch": c.max_batch, "delay_ms": c.delay_s * 1e3},
        "objective": run.objective, "slo_ms": None if run.slo_s is None else run.slo_s * 1e3,
        "percentile": run.percentile, "max_qps": r.max_qps, "p99_ms": r.p99_ms,
        "memory_mb": r.memory_mb, "tie": r.tie, "why": r.why,
        "cost_per_million": r.cost_per_million,
    }
