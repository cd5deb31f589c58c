"""The real measurements behind the search: instance pools of fresh processes (pinned to
their own cores when the layout names threads), closed-loop probes, and server-scenario
scans and tests from our load generator (latency from the scheduled instant)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import envs
from ..errors import InferometerError
from ..loadgen import engine
from ..loadgen.arrivals import min_queries
from ..loadgen.batching import Batching
from ..loadgen.pool import InstancePool, PoolSpec
from ..loadgen.run import server_step
from ..models.ref import ModelRef
from ..results.loadrun import StepResult
from ..results.tunerun import Candidate, Probe, Scan, Trial
from .search import LONGEST_STEP_S, Goal

Line = Callable[[str], None]
_ALONE = 40  # single calls at batch 1: enough for their spread to show this host's tail


@dataclass(frozen=True)
class BenchConfig:
    model: ModelRef
    goal: Goal
    arrivals: str = "exponential"
    duration_s: float = 3.0  # a server step lasts at least this (and holds min_queries)
    probe_s: float = 1.0  # capacity: keep every instance busy about this long per batch size
    seed: int = 0


def service_estimate(calls_ns: Sequence[int]) -> float:
    """A batch size's call time alone, for the bounds: the median of many calls (batch 1:
    its spread is drawn on top of it), the fastest of a few (larger batches: five calls
    take under a second, and one slow spell of the host over three of them moved the median
    28% and a candidate's bound from 17.1 to 11.1 QPS, under an answer of 16.7 measured
    later; a bound must err high, and no call is faster than the machine allows)."""
    xs = sorted(calls_ns)
    return float(xs[len(xs) // 2] if len(xs) > 5 else xs[0])


class PoolBench:
    """Keeps the last candidate's pool open: a challenger's test at the leader's load and the
    scan that may follow it share one pool start."""

    def __init__(self, cfg: BenchConfig, log_dir: Path, on_line: Line) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.on_line = on_line
        self._t0 = time.monotonic()
        self._open: tuple[str, InstancePool] | None = None

    @property
    def spent_s(self) -> float:
        """Wall time since the bench started: the budget covers everything the search does
        (pool starts, probes, bounds, steps), so --budget 15m ends within 15 minutes."""
        return time.monotonic() - self._t0

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _pool(self, c: Candidate, batch: int, batching: Batching | None,
              dynamic: bool, key: str) -> InstancePool:
        if self._open is not None and self._open[0] == key:
            return self._open[1]
        self.close()
        d = self.log_dir / key
        d.mkdir(parents=True, exist_ok=True)
        spec = PoolSpec(self.cfg.model, c.runtime, c.variant, c.instances, c.threads, batch,
                        pin=c.threads is not None, batching=batching, dynamic_batch=dynamic)
        pool = InstancePool(spec, d, envs.python_for(c.runtime))
        self._open = (key, pool)
        return pool

    def probe(self, c: Candidate, sizes: Sequence[int]) -> Probe:
        t0 = time.monotonic()
        try:
            pool = self._pool(c, max(sizes), None, True, f"probe-{c.group}")
            service, capacity, memory = {}, {}, {}
            tail: tuple[float, ...] = ()
            for b in sorted(sizes):
                calls = _ALONE if b == 1 else 5
                alone = sorted(engine.run_offline(pool, b, b)[1][0] for _ in range(calls))
                if b == 1:
                    tail = tuple(x / 1e6 for x in alone)
                service[str(b)] = service_estimate(alone) / 1e6
                alone = alone[calls // 2 - 2: calls // 2 + 3]  # the middle five
                per_instance = max(2, math.ceil(self.cfg.probe_s / (alone[2] / 1e9)))
                n = per_instance * c.instances * b
                capacity[str(b)] = engine.run_offline(pool, n, b)[0].achieved_qps
                memory[str(b)] = round(pool.peak_mb(), 1)
            self.close()
            probe = Probe(True, "", service, capacity, memory, time.monotonic() - t0, tail)
            self.on_line(f"probe {c.group}: " + ", ".join(
                f"b{b} {service[str(b)]:.1f} ms alone, {capacity[str(b)]:.1f}/s busy, "
                f"{memory[str(b)]:.0f} MB" for b in sorted(sizes)))
        except InferometerError as exc:
            self.close()
            probe = Probe(False, str(exc), seconds=time.monotonic() - t0)
            self.on_line(f"probe {c.group}: FAILED {exc}")
        return probe

    def _candidate_pool(self, c: Candidate) -> InstancePool:
        batching = Batching(c.max_batch, c.delay_s) if c.max_batch > 1 else None
        return self._pool(c, c.max_batch, batching, False, c.id)

    def _step(self, pool: InstancePool, c: Candidate, qps: float) -> StepResult:
        g = self.cfg.goal
        step = server_step(pool, qps, self.cfg.arrivals, g.slo_s, percentile=g.percentile,
                           duration_s=self.cfg.duration_s, seed=self.cfg.seed)
        self.on_line(f"  {c.id} " + step.line(f"{g.slo_s:g}" if g.slo_s else ""))
        return step

    def _p99_ms(self, step: StepResult) -> float:
        return step.tiles_s.get(f"{self.cfg.goal.percentile:g}", step.tiles_s.get("99", 0.0)) \
            * 1e3

    def scan(self, c: Candidate, start_qps: float, known_valid: float | None,
             max_steps: int = 20) -> Scan:
        t0 = time.monotonic()
        g = self.cfg.goal
        try:
            pool = self._candidate_pool(c)
            steps: list[StepResult] = []

            def test(q: float) -> StepResult:
                s = self._step(pool, c, q)
                steps.append(s)
                return s

            best, _ = engine.scan_target(test, start_qps, precision=g.precision,
                                         min_qps=min_queries(g.percentile) / LONGEST_STEP_S,
                                         known_valid=known_valid,
                                         max_steps=max(2, max_steps - 1),
                                         percentile_key=f"{g.percentile:g}",
                                         on_note=lambda why: self.on_line(f"  {c.id} {why}"))
            at = [s for s in steps if s.valid and s.offered_qps == best]
            above = [s.offered_qps for s in steps if not s.valid and s.offered_qps > best]
            p99 = self._p99_ms(at[-1]) if at else None
            scan = Scan(best, min(above, default=None), p99, round(pool.peak_mb(), 1),
                        len(steps), time.monotonic() - t0, log=tuple(steps))
        except InferometerError as exc:
            self.close()
            scan = Scan(-1.0, None, None, 0.0, 0, time.monotonic() - t0, str(exc))
        self.on_line(f"scan {c.id}: " + (f"FAILED {scan.error}" if scan.error else
                                         f"max {scan.max_qps:g} QPS in {scan.steps} steps"))
        return scan

    def test(self, c: Candidate, qps: float, rep: int) -> Trial:
        t0 = time.monotonic()
        try:
            pool = self._candidate_pool(c)
            s = self._step(pool, c, qps)
            t = Trial(qps, s.valid, self._p99_ms(s), round(pool.peak_mb(), 1),
                      time.monotonic() - t0, s.reasons, s)
        except InferometerError as exc:
            self.close()
            t = Trial(qps, False, math.inf, 0.0, time.monotonic() - t0, (str(exc),))
        return t
