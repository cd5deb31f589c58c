"""Load tests and scans as a user asks for them: configuration, the accuracy stage, the
instance pools, the scan over instances x threads, and the stored result."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import __version__, envs
from ..errors import UsageError
from ..models.ref import ModelRef
from ..results.loadrun import LoadRun, LoadStep, StepResult
from ..results.schema import SCHEMA_VERSION
from ..results.store import write_json
from . import engine, mlperf
from .arrivals import min_queries
from .batching import Batching
from .pool import InstancePool, PoolSpec
from .remote import Remote, parse_target, request_feeds

ENGINES = ("native", "mlperf")


@dataclass(frozen=True)
class LoadConfig:
    model: ModelRef
    runtime: str
    variant: str
    instances: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] = (None,)  # per instance
    engine: str = "native"
    arrivals: tuple[str, ...] = ("exponential",)
    targets_s: tuple[float, ...] = ()
    percentile: float = 99.0
    duration_s: float = 10.0
    qps: float | None = None
    precision: float = 0.1
    pin: bool = False
    seed: int = 0
    batching: Batching | None = None  # dynamic batching in the pool
    target: str = ""  # a remote v2 server's URL: the system under test instead of our pool
    concurrency: tuple[int, ...] = ()  # the concurrency mode's requests in flight
    window_s: float = 5.0  # the concurrency mode's measurement window
    stability: float = 0.10  # ... and its stability bound (last 3 windows)
    data: tuple[tuple[str, str], ...] = ()  # --inputs for a remote target's requests
    request_timeout_s: float = 30.0  # a remote request unanswered this long has failed


def check_accuracy(model: ModelRef) -> str:
    """The reference checks accuracy on the first N samples before timing.  Zoo models carry
    seeded weights and no labelled data yet, so the stage says so instead of inventing a
    number."""
    return (f"skipped: no labelled dataset for '{model.name}' (seeded weights); accuracy runs "
            "come with labelled data")


def validate(cfg: LoadConfig) -> None:
    if cfg.target and cfg.batching is not None:
        raise UsageError("--dynamic-batching belongs to the server: a remote target batches "
                         "as it is configured (inferometer serve --dynamic-batching ...)")
    if cfg.target and cfg.engine != "native":
        raise UsageError("--engine mlperf drives our pool only; a remote target runs with "
                         "--engine native")
    if any(c < 1 for c in cfg.concurrency):
        raise UsageError("--concurrency values must be >= 1")
    if cfg.request_timeout_s <= 0:
        raise UsageError("--request-timeout must be > 0")
    if cfg.window_s <= 0 or not 0 < cfg.stability < 1:
        raise UsageError("--window must be > 0 and --stability in (0, 1)")
    if cfg.batching is not None:
        if cfg.engine == "mlperf":
            raise UsageError("--dynamic-batching runs in our pool's dispatchers: use "
                             "--engine native")
        fixed = cfg.model.fixed_batch
        if fixed is not None and fixed < cfg.batching.max_batch:
            raise UsageError(f"--dynamic-batching max={cfg.batching.max_batch}: model "
                             f"'{cfg.model.name}' has a fixed batch of {fixed} in its file")
    if cfg.engine not in ENGINES:
        raise UsageError(f"unknown engine '{cfg.engine}'; valid: {', '.join(ENGINES)}")
    if any(t <= 0 for t in cfg.targets_s):
        raise UsageError("latency targets must be > 0")
    if cfg.qps is not None and cfg.qps <= 0:
        raise UsageError("--qps must be > 0")
    if cfg.duration_s <= 0:
        raise UsageError("--duration must be > 0")
    if not 0 < cfg.percentile < 100:
        raise UsageError("--percentile must be in (0, 100)")
    if any(i < 1 for i in cfg.instances):
        raise UsageError("--instances must be >= 1")
    if cfg.qps is not None:
        needed = min_queries(cfg.percentile)
        have = math.floor(cfg.qps * cfg.duration_s)
        if have < needed:
            raise UsageError(
                f"--duration {cfg.duration_s:g}s at {cfg.qps:g} QPS gives {have} queries; "
                f"p{cfg.percentile:g} at 99% confidence needs at least {needed} "
                f"(>= {needed / cfg.qps:.1f} s at this QPS)")
    if cfg.engine == "mlperf":
        mlperf._lg()
        if "linear" in cfg.arrivals:
            raise UsageError("the mlperf engine's Server scenario issues Poisson arrivals "
                             "only: use --arrivals exponential")


def _label(cfg: LoadConfig, instances: int, threads: int | None) -> str:
    if cfg.target:
        return "remote"
    return f"{instances}x{'auto' if threads is None else threads}"


def _pool(cfg: LoadConfig, instances: int, threads: int | None, batch: int,
          log_dir: Path) -> InstancePool | Remote:
    """The system under test: our instance pool, or the remote server (its requests built
    here, before any timing)."""
    if cfg.target:
        remote = Remote(parse_target(cfg.target),
                        connections=max(64, *cfg.concurrency) if cfg.concurrency else 64,
                        timeout_s=cfg.request_timeout_s)
        remote.prepare(request_feeds(cfg.model, batch, cfg.data))
        return remote
    d = log_dir / _label(cfg, instances, threads)
    d.mkdir(parents=True, exist_ok=True)
    spec = PoolSpec(cfg.model, cfg.runtime, cfg.variant, instances, threads, batch, cfg.pin,
                    batching=cfg.batching)
    return InstancePool(spec, d, envs.python_for(cfg.runtime))


def _with_server_view(pool: engine.Pool, run: Callable[[], StepResult]) -> StepResult:
    """A step, with the remote server's own queue/compute times when it has statistics."""
    stats = getattr(pool, "stats", None)
    if stats is None:
        return run()
    before = stats()
    step = run()
    return replace(step, server=engine.server_delta(before, stats()))


def _service_ms(pool: engine.Pool, n: int = 10) -> float:
    """Median closed-loop latency of one query: where a scan starts looking."""
    out = sorted(engine.run_offline(pool, 1, 1)[1][0] for _ in range(n))
    return out[len(out) // 2] / 1e6


def server_step(pool: engine.Pool, qps: float, arrivals: str, target_s: float | None, *,
                percentile: float, duration_s: float, seed: int) -> StepResult:
    """One open-loop step of our generator, long enough for the percentile's query count.
    Latency counts from the scheduled instant, so a late issuer can only make results
    worse; its lag is noted once it is no longer small against the target."""
    target_ns = None if target_s is None else int(target_s * 1e9)
    duration = max(duration_s, min_queries(percentile) / qps)
    max_lag = max(1_000_000, int(0.05 * target_ns)) if target_ns else 1_000_000
    return engine.run_server(pool, qps, arrivals, duration_s=duration, target_ns=target_ns,
                             pct=percentile, seed=seed, max_issue_lag_ns=max_lag)[0]


def _server(cfg: LoadConfig, pool: engine.Pool, qps: float, arrivals: str,
            target_s: float | None, log_dir: Path) -> StepResult:
    return _with_server_view(pool, lambda: _server_step(cfg, pool, qps, arrivals, target_s,
                                                        log_dir))


def _server_step(cfg: LoadConfig, pool: engine.Pool, qps: float, arrivals: str,
                 target_s: float | None, log_dir: Path) -> StepResult:
    if cfg.engine == "mlperf":
        target_ns = None if target_s is None else int(target_s * 1e9)
        duration = max(cfg.duration_s, min_queries(cfg.percentile) / qps)
        return mlperf.run_server(pool, qps, arrivals, duration_s=duration, target_ns=target_ns,
                                 pct=cfg.percentile, seed=cfg.seed,
                                 log_dir=log_dir / f"loadgen-{arrivals}-{qps:g}")
    return server_step(pool, qps, arrivals, target_s, percentile=cfg.percentile,
                       duration_s=cfg.duration_s, seed=cfg.seed)


def scan(cfg: LoadConfig, log_dir: Path, on_line: Callable[[str], None]) -> tuple[
        dict[str, dict[str, dict[str, float]]], list[LoadStep], str]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    steps: list[LoadStep] = []
    version = ""
    for inst in cfg.instances:
        for thr in cfg.threads:
            label = _label(cfg, inst, thr)
            with _pool(cfg, inst, thr, 1, log_dir) as pool:
                version = _version(pool)
                service = _service_ms(pool)
                on_line(f"# {label}: " + (f"{cfg.target}" if cfg.target else
                                          f"{inst} instance(s) x {thr or 'auto'} thread(s)")
                        + f", closed-loop latency {service:.2f} ms")
                for arrivals in cfg.arrivals:
                    best = -1.0
                    # tightest target first: its answer is a floor for every looser one
                    for target in sorted(cfg.targets_s):
                        if target * 1000 < service:
                            best, found = -1.0, []
                            on_line(f"{arrivals}/{target:g}: skipped: the target is below one "
                                    f"query's service time ({service:.2f} ms)")
                        else:
                            start = max(0.5, 0.6 * inst * 1000 / service)

                            def test(q: float, a: str = arrivals, t: float = target) -> StepResult:
                                r = _server(cfg, pool, q, a, t, log_dir)
                                on_line(r.line(f"{t:g}"))
                                return r

                            best, found = engine.scan_target(
                                test, round(start, 2), precision=cfg.precision,
                                min_qps=min_queries(cfg.percentile) / 120.0, known_valid=best,
                                percentile_key=f"{cfg.percentile:g}", on_note=on_line)
                        steps += [LoadStep(label, s) for s in found]
                        results.setdefault(label, {}).setdefault(arrivals, {})[f"{target:g}"] = \
                            best
                        on_line(f"===RESULT: {label} {arrivals} target_latency={target:g}s "
                                f"max_qps={best:g}")
    return results, steps, version


def _version(pool: InstancePool | Remote) -> str:
    if isinstance(pool, Remote):
        return str(pool.meta.get("platform", ""))
    return pool.version


def concurrency_steps(cfg: LoadConfig, pool: engine.Pool, label: str,
                      on_line: Callable[[str], None]) -> list[LoadStep]:
    """perf_analyzer's concurrency sweep: one stable step per level."""
    steps = []
    for c in cfg.concurrency:
        step, _ = engine.run_concurrency(pool, c, window_s=cfg.window_s,
                                         stability=cfg.stability,
                                         snapshot=getattr(pool, "stats", None))
        on_line(step.line())
        steps.append(LoadStep(label, step))
    return steps


def loadtest(cfg: LoadConfig, scenario: str, queries: int, batch: int, log_dir: Path,
             on_line: Callable[[str], None]) -> tuple[list[LoadStep], str]:
    inst, thr = cfg.instances[0], cfg.threads[0]
    label = _label(cfg, inst, thr)
    with _pool(cfg, inst, thr, batch if scenario == "offline" else 1, log_dir) as pool:
        if scenario == "concurrency":
            steps = concurrency_steps(cfg, pool, label, on_line)
            if isinstance(pool, InstancePool):
                steps = [LoadStep(s.config, replace(s.step, peak_memory_mb=round(
                    pool.peak_mb(), 1))) for s in steps]
            return steps, _version(pool)
        if scenario == "offline" and cfg.engine == "mlperf":
            step = mlperf.run_offline(pool, queries, batch, log_dir / "loadgen-offline")
        elif scenario == "offline":
            step, _ = engine.run_offline(pool, queries, batch)
        elif scenario == "single-stream":
            step, _ = engine.run_single_stream(pool, duration_s=cfg.duration_s,
                                               min_count=min_queries(cfg.percentile))
        else:
            qps = cfg.qps or 1.0
            target = cfg.targets_s[0] if cfg.targets_s else None
            step = _server(cfg, pool, qps, cfg.arrivals[0], target, log_dir)
        if isinstance(pool, InstancePool):
            step = replace(step, peak_memory_mb=round(pool.peak_mb(), 1))
        on_line(step.line(f"{cfg.targets_s[0]:g}" if cfg.targets_s else ""))
        if step.batch_sizes:
            on_line(f"batch sizes (calls per size): {step.batch_text()}")
        return [LoadStep(label, step)], _version(pool)


def save(path: Path, run: LoadRun) -> None:
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "results.json", run)


def new_run(kind: str, cfg: LoadConfig, command: tuple[str, ...], machine: dict[str, object],
            version: str, accuracy: str, results: dict, steps: list[LoadStep]) -> LoadRun:
    m = cfg.model
    return LoadRun(schema_version=SCHEMA_VERSION, kind=kind, tool_version=__version__,
                   created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   command=command, machine=machine,
                   model=m.info(),
                   runtime=cfg.runtime, runtime_version=version, variant=cfg.variant,
                   engine=cfg.engine, check_accuracy=accuracy, results=results,
                   scan=tuple(steps), percentile=cfg.percentile,
                   batching=cfg.batching.label() if cfg.batching else "", target=cfg.target)
