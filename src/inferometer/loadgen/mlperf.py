"""The same server/offline tests driven by MLCommons LoadGen (`mlcommons-loadgen`, imported
as mlperf_loadgen): LoadGen owns the schedule and the clock, our instance pool only runs, and
LoadGen's summary is parsed into the same StepResult.  It is the cross-check for our own
generator.  LoadGen's Server scenario issues Poisson arrivals only."""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

from ..errors import RuntimeUnavailable, UsageError
from ..results.loadrun import StepResult
from .arrivals import TILES, min_queries
from .engine import Pool

INSTALL = "pip install mlcommons-loadgen"


def _lg():  # type: ignore[no-untyped-def]
    try:
        import mlperf_loadgen as lg
    except ImportError:
        raise RuntimeUnavailable(f"the mlperf engine needs MLCommons LoadGen: {INSTALL}") from None
    return lg


def parse_summary(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _step(summary: dict[str, str], arrivals: str, qps: float, target_ns: int | None,
          queries: int) -> StepResult:
    def ns(key: str) -> float:
        return float(summary.get(key, "nan")) / 1e9

    tiles = {f"{t:g}": ns(f"{t:.2f} percentile latency (ns)") for t in TILES
             if f"{t:.2f} percentile latency (ns)" in summary}  # LoadGen has no p80
    valid = summary.get("Result is") == "VALID"
    reasons = () if valid else tuple(
        f"LoadGen: {k.lower().replace('satisfied', 'not satisfied')}"
        for k, v in summary.items() if "satisfied" in k and v.upper().startswith("NO")
    ) or ("LoadGen: INVALID",)
    achieved = float(summary.get("Completed samples per second",
                                 summary.get("Samples per second", "0")) or 0)
    return StepResult(scenario="server" if arrivals == "exponential" else "offline",
                      arrivals=arrivals, offered_qps=qps, achieved_qps=achieved,
                      queries=queries, duration_s=queries / achieved if achieved else 0.0,
                      mean_s=ns("Mean latency (ns)"), tiles_s=tiles, issue_lag_p99_us=0.0,
                      target_s=None if target_ns is None else target_ns / 1e9,
                      valid=valid, reasons=reasons)


def run_server(pool: Pool, qps: float, arrivals: str, *, duration_s: float,
               target_ns: int | None = None, pct: float = 99.0, seed: int = 0,
               min_count: int | None = None, log_dir: Path | None = None) -> StepResult:
    if arrivals != "exponential":
        raise UsageError("the mlperf engine's Server scenario issues Poisson arrivals only: "
                         "use --arrivals exponential")
    lg = _lg()
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = qps
    settings.server_target_latency_ns = int(target_ns or 10**12)  # no target: never binding
    settings.server_target_latency_percentile = pct / 100.0
    settings.min_duration_ms = int(duration_s * 1000)
    settings.min_query_count = min_queries(pct) if min_count is None else min_count
    settings.schedule_rng_seed = seed
    return _start(lg, pool, settings, arrivals, qps, target_ns, log_dir)


def run_offline(pool: Pool, queries: int, batch: int, log_dir: Path | None = None) -> StepResult:
    """LoadGen's Offline scenario: every sample in one issue; we group them into batches of
    `batch` for the pool and complete each sample of a batch when the batch is done."""
    lg = _lg()
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.PerformanceOnly
    # LoadGen sizes the one offline query as expected_qps x min_duration x 1.1 samples (at
    # least min_query_count); no minimum duration: `queries` is the whole test.
    settings.offline_expected_qps = 1.0
    settings.min_duration_ms = 0
    settings.min_query_count = queries
    return _start(lg, pool, settings, "all-at-once", 0.0, None, log_dir, batch)


def _start(lg, pool: Pool, settings, arrivals: str, qps: float, target_ns: int | None,  # type: ignore[no-untyped-def]
           log_dir: Path | None, batch: int = 1) -> StepResult:
    count = [0]
    groups: dict[int, list[int]] = {}

    def issue(samples) -> None:  # type: ignore[no-untyped-def]
        ids = [s.id for s in samples]
        for i in range(0, len(ids), batch):
            chunk = ids[i:i + batch]
            groups[chunk[0]] = chunk
            pool.submit(chunk[0], len(chunk))

    def complete(qid: int, t_done: int) -> None:
        chunk = groups.pop(qid)
        count[0] += len(chunk)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q, 0, 0) for q in chunk])

    failures: list[str] = []

    def failed(qid: int, reason: str) -> None:  # answered, so LoadGen never waits on it
        failures.append(reason)
        complete(qid, 0)

    pool.on_complete, pool.on_start, pool.on_error = complete, lambda qid: None, failed
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda idx: None, lambda idx: None)
    out = Path(log_dir or tempfile.mkdtemp(prefix="loadgen-"))
    out.mkdir(parents=True, exist_ok=True)
    logs = lg.LogSettings()
    logs.log_output.outdir = str(out)
    logs.log_output.copy_summary_to_stdout = False
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, logs)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    text = (out / "mlperf_log_summary.txt").read_text()
    summary = parse_summary(text)
    m = re.search(r"Scheduled samples per second\s*:\s*([\d.]+)", text)
    step = _step(summary, arrivals, float(m.group(1)) if m else qps, target_ns, count[0])
    if failures:
        reason = f"{len(failures)} requests failed (first: {failures[0]})"
        step = replace(step, valid=False, reasons=(reason, *step.reasons),
                       errors=len(failures))
    return step
