"""Our load generator.  The issuer thread sleeps until each scheduled instant (coarse sleep,
then a short spin) and puts the query on the pool's queue; latency runs from the *scheduled*
instant to the instance's completion timestamp, so an issuer or queue that falls behind counts
against the system (no coordinated omission), and the issuer's own lag is recorded and noted
when large (it is inside every latency already).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..results.loadrun import StepResult
from ..stats import percentile
from .arrivals import TILES, Verdict, judge, min_queries, schedule

Clock = Callable[[], int]
_SPIN_NS = 300_000  # sleep to within 0.3 ms of the instant, then spin


class Pool:
    """What the engine needs from a SUT (InstancePool, a remote server, or a fake in tests).
    Every submitted query ends in exactly one of on_complete or on_error."""

    on_complete: Callable[[int, int], None]
    on_start: Callable[[int], None]
    on_error: Callable[[int, str], None]

    def submit(self, qid: int, n: int = 1) -> None: ...


def _failed(errors: dict[int, str], sent: int) -> str:
    """'3 of 459 requests failed (first: connection refused)': a step with errors is INVALID."""
    first = errors[min(errors)]
    return f"{len(errors)} of {sent} requests failed (first: {first})"


def _batch_counts(pool: Pool) -> dict[str, int]:
    """The pool's calls per batch size during the step (a fake SUT in tests, or LoadGen's
    path, may not batch: then none)."""
    take = getattr(pool, "take_batch_counts", None)
    return {str(k): v for k, v in take().items()} if take else {}


def _timing(pool: Pool) -> dict[str, float]:
    """The pool's own split of the step's calls (queue, inference), as a server's statistics
    give it; none from a SUT that does not time its calls."""
    take = getattr(pool, "take_timing", None)
    return take() if take else {}


def sleep_until(t_ns: int, clock: Clock = time.monotonic_ns) -> None:
    """Coarse sleep, then a spin that yields the GIL on every turn (time.sleep(0)): a pure
    Python busy loop would hold the GIL and delay the dispatcher threads that hand queued
    queries to the instances, adding queueing latency that the system did not cause."""
    while True:
        rem = t_ns - clock()
        if rem <= 0:
            return
        time.sleep((rem - _SPIN_NS) / 1e9 if rem > _SPIN_NS else 0)


def _summarize(scenario: str, arrivals: str, qps: float, lat: Sequence[int],
               lag: Sequence[int], span_ns: int, verdict: Verdict,
               target_ns: int | None) -> StepResult:
    s = sorted(lat) or [0]
    return StepResult(
        scenario=scenario, arrivals=arrivals, offered_qps=qps,
        achieved_qps=len(lat) / (span_ns / 1e9) if span_ns > 0 else 0.0, queries=len(lat),
        duration_s=span_ns / 1e9, mean_s=sum(s) / len(s) / 1e9,
        tiles_s={f"{t:g}": percentile(s, t) / 1e9 for t in TILES},
        issue_lag_p99_us=percentile(sorted(lag), 99) / 1e3 if lag else 0.0,
        target_s=None if target_ns is None else target_ns / 1e9,
        valid=verdict.valid, reasons=verdict.reasons, notes=verdict.notes)


def run_server(pool: Pool, qps: float, arrivals: str, *, duration_s: float,
               target_ns: int | None = None, pct: float = 99.0, seed: int = 0,
               min_count: int | None = None, max_issue_lag_ns: int = 1_000_000,
               clock: Clock = time.monotonic_ns) -> tuple[StepResult, list[int]]:
    """Open-loop test: queries arrive on schedule whether or not the system keeps up.
    Returns the step and the raw latencies (ns)."""
    needed = min_queries(pct) if min_count is None else min_count
    n = max(needed, math.ceil(qps * duration_s))
    offsets = schedule(n, qps, arrivals, seed)
    # An overloaded system would make the test last forever: stop issuing once the oldest
    # waiting query is this late (the step is then INVALID anyway).
    abort_ns = max(10 * (target_ns or 0), 2_000_000_000)
    done = threading.Event()
    completed: dict[int, int] = {}
    errors: dict[int, str] = {}
    started = [0]
    issued = [0]
    lock = threading.Lock()
    aborted: list[str] = []

    def on_complete(qid: int, t: int) -> None:
        with lock:
            completed[qid] = t
            if len(completed) + len(errors) == issued[0] and issued_all.is_set():
                done.set()

    def on_error(qid: int, reason: str) -> None:
        with lock:
            errors[qid] = reason
            if len(completed) + len(errors) == issued[0] and issued_all.is_set():
                done.set()

    def on_start(qid: int) -> None:
        started[0] += 1

    issued_all = threading.Event()
    pool.on_complete, pool.on_start, pool.on_error = on_complete, on_start, on_error
    _batch_counts(pool)  # what ran before this step is not this step's
    _timing(pool)
    t0 = clock() + 20_000_000
    lag: list[int] = []
    for i, off in enumerate(offsets):
        when = t0 + off
        sleep_until(when, clock)
        now = clock()
        if started[0] < issued[0] and now - (t0 + offsets[started[0]]) > abort_ns:
            aborted.append(f"overloaded: a query waited over {abort_ns / 1e9:g} s; stopped "
                           f"issuing after {i} of {n}")
            break
        lag.append(now - when)
        with lock:
            issued[0] += 1
        pool.submit(i)
    with lock:
        issued_all.set()
        if len(completed) + len(errors) == issued[0]:
            done.set()
    done.wait()
    k = issued[0]
    lat = [completed[i] - (t0 + offsets[i]) for i in range(k) if i in completed]
    span = (max(completed.values()) - t0) if completed else 0
    if errors:
        aborted.insert(0, _failed(errors, k))
    verdict = judge(lat, lag, target_ns=target_ns, percentile=pct, needed=needed,
                    max_issue_lag_ns=max_issue_lag_ns,
                    aborted="; ".join(aborted) if aborted else None)
    res = _summarize("server", arrivals, qps, lat, lag, span, verdict, target_ns)
    return replace(res, batch_sizes=_batch_counts(pool), errors=len(errors),
                   server=_timing(pool)), lat


def run_offline(pool: Pool, queries: int, batch: int,
                clock: Clock = time.monotonic_ns) -> tuple[StepResult, list[int]]:
    """All queries at once, in batches: throughput is what counts (items/s)."""
    done = threading.Event()
    completed: dict[int, int] = {}
    errors: dict[int, str] = {}
    lock = threading.Lock()
    nb = math.ceil(queries / batch)

    def on_complete(qid: int, t: int) -> None:
        with lock:
            completed[qid] = t
            if len(completed) + len(errors) == nb:
                done.set()

    def on_error(qid: int, reason: str) -> None:
        with lock:
            errors[qid] = reason
            if len(completed) + len(errors) == nb:
                done.set()

    pool.on_complete, pool.on_start, pool.on_error = on_complete, lambda qid: None, on_error
    _timing(pool)
    t0 = clock()
    for i in range(nb):
        pool.submit(i, batch)
    done.wait()
    span = max(completed.values(), default=t0) - t0
    lat = [completed[i] - t0 for i in range(nb) if i in completed]
    verdict = Verdict(False, (_failed(errors, nb),)) if errors else Verdict(True, ())
    res = _summarize("offline", "all-at-once", 0.0, lat, [], span, verdict, None)
    items_per_s = len(lat) * batch / (span / 1e9) if span > 0 else 0.0
    return replace(res, achieved_qps=items_per_s, queries=len(lat) * batch,
                   errors=len(errors), server=_timing(pool)), lat


def run_single_stream(pool: Pool, *, duration_s: float, min_count: int,
                      clock: Clock = time.monotonic_ns) -> tuple[StepResult, list[int]]:
    """Closed loop: the next query is issued when the previous one completes."""
    done = threading.Event()
    finished = [0]
    errors: dict[int, str] = {}

    def on_complete(qid: int, t: int) -> None:
        finished[0] = t
        done.set()

    def on_error(qid: int, reason: str) -> None:
        errors[qid] = reason
        done.set()

    pool.on_complete, pool.on_start, pool.on_error = on_complete, lambda qid: None, on_error
    _timing(pool)
    lat: list[int] = []
    t0 = clock()
    end = t0 + int(duration_s * 1e9)
    while (len(lat) < min_count or clock() < end) and not errors:
        done.clear()
        start = clock()
        pool.submit(len(lat))
        done.wait()
        if not errors:
            lat.append(finished[0] - start)
    span = clock() - t0
    verdict = Verdict(False, (_failed(errors, len(lat) + 1),)) if errors else Verdict(True, ())
    res = _summarize("single-stream", "closed-loop", 0.0, lat, [], span, verdict, None)
    return replace(res, errors=len(errors), server=_timing(pool)), lat


def _window_stable(windows: Sequence[tuple[float, float]], bound: float) -> bool:
    """perf_analyzer's rule: the last 3 windows' throughput and mean latency each within
    `bound` of their mean."""
    if len(windows) < 3:
        return False
    for k in (0, 1):
        vals = [w[k] for w in windows[-3:]]
        mean = sum(vals) / 3
        if mean <= 0 or any(abs(v - mean) > bound * mean for v in vals):
            return False
    return True


def run_concurrency(pool: Pool, concurrency: int, *, window_s: float = 5.0,
                    window_requests: int = 50, stability: float = 0.10, max_windows: int = 10,
                    clock: Clock = time.monotonic_ns,
                    snapshot: Callable[[], Any] | None = None
                    ) -> tuple[StepResult, list[int]]:
    """perf_analyzer's concurrency mode: `concurrency` requests always in flight (each
    answered one is replaced at once), measured in windows of at least `window_s` and
    `window_requests` answers; the step is stable when the last 3 windows agree within
    `stability` (throughput and mean latency), and its figures are those 3 windows'.  Not
    stable after `max_windows`, or any failed request: INVALID, with the reason."""
    lock = threading.Lock()
    sent: dict[int, int] = {}
    done_at: list[tuple[int, int]] = []  # (completion ns, latency ns)
    errors: dict[int, str] = {}
    stopping = threading.Event()
    drained = threading.Event()
    ids = iter(range(1 << 62))
    outstanding = [0]

    def issue() -> None:
        with lock:
            qid = next(ids)
            sent[qid] = clock()
            outstanding[0] += 1
        pool.submit(qid)

    def finish(qid: int, t: int | None, reason: str | None) -> None:
        with lock:
            t0 = sent.pop(qid)
            outstanding[0] -= 1
            if reason is None:
                done_at.append((t, t - t0))  # type: ignore[operator]
            else:
                errors[qid] = reason
            last = outstanding[0] == 0
        if reason is not None:
            stopping.set()
        if not stopping.is_set():
            issue()
        elif last:
            drained.set()

    pool.on_complete = lambda qid, t: finish(qid, t, None)
    pool.on_error = lambda qid, reason: finish(qid, None, reason)
    pool.on_start = lambda qid: None
    for _ in range(concurrency):
        issue()
    windows: list[tuple[float, float]] = []
    bounds: list[tuple[int, int]] = []
    snaps = [snapshot()] if snapshot else []
    start = clock()
    while len(windows) < max_windows and not stopping.is_set():
        w0 = start
        while not stopping.is_set():
            time.sleep(min(window_s, 0.05))
            now = clock()
            with lock:
                n = sum(1 for t, _ in done_at if t >= w0)
            if now - w0 >= window_s * 1e9 and n >= window_requests:
                break
            if now - w0 > 20 * window_s * 1e9:  # too slow for the request count: take it
                break
        start = clock()
        if snapshot:
            snaps.append(snapshot())
        with lock:
            inside = [lat for t, lat in done_at if w0 <= t < start]
        span = (start - w0) / 1e9
        windows.append((len(inside) / span if span > 0 else 0.0,
                        sum(inside) / len(inside) if inside else 0.0))
        bounds.append((w0, start))
        if _window_stable(windows, stability):
            break
    stopping.set()
    with lock:
        if outstanding[0] == 0:
            drained.set()
    drained.wait(timeout=120)
    with lock:
        lost = outstanding[0]
    stable = _window_stable(windows, stability)
    lo, hi = (bounds[-3][0], bounds[-1][1]) if len(bounds) >= 3 else (
        (bounds[0][0], bounds[-1][1]) if bounds else (0, 0))
    with lock:
        lat = [x for t, x in done_at if lo <= t < hi]
    reasons = []
    if lost:
        reasons.append(f"{lost} requests never answered (waited 120 s after the last window)")
    if errors:
        reasons.append(_failed(errors, len(done_at) + len(errors)))
    if not stable and not errors:
        reasons.append(f"not stable: the last 3 of {len(windows)} windows differ by more than "
                       f"{stability:.0%} in throughput or latency")
    verdict = Verdict(not reasons, tuple(reasons))
    res = _summarize("concurrency", "closed-loop", 0.0, lat, [], hi - lo, verdict, None)
    server = server_delta(snaps[-4] if len(snaps) >= 4 else snaps[0], snaps[-1]) \
        if len(snaps) >= 2 else {}
    return replace(res, errors=len(errors) + lost, concurrency=concurrency,
                   windows=len(windows), server=server), lat


def server_delta(before: dict[str, Any] | None, after: dict[str, Any] | None
                 ) -> dict[str, float]:
    """Mean server-side time per request between two statistics snapshots (the statistics
    extension's cumulative counts and ns), in ms: queue, compute and the whole request as
    the server saw it, and the requests it counted."""
    if not before or not after:
        return {}
    n = after["success"]["count"] - before["success"]["count"]
    if n <= 0:
        return {}
    out: dict[str, float] = {"requests": float(n)}
    for key, label in (("queue", "queue_ms"), ("compute_input", "input_ms"),
                       ("compute_infer", "compute_ms"), ("compute_output", "output_ms"),
                       ("success", "request_ms")):
        ns = after[key]["ns"] - before[key]["ns"]
        count = after[key]["count"] - before[key]["count"]
        if count > 0:
            out[label] = round(ns / count / 1e6, 3)
    return out


def out_of_reach(prev: StepResult, cur: StepResult, key: str) -> str | None:
    """Why halving the load again cannot meet the target, or None.  `cur` ran at half the
    load of `prev` and both failed on the target alone.  At light load the queueing part of a
    percentile roughly halves with each halving of the load (M/M/1: wait ~ rho/(1-rho)), so
    every further halving together lowers it by about what the last one did.  When the excess
    over the target is more than twice that drop, and more than 10% of the target (one
    percentile from a few hundred queries is noisy), the latency is the service's own: a scan
    halving on would spend minutes on ever longer steps that must fail too."""
    target = cur.target_s
    if target is None or key not in prev.tiles_s or key not in cur.tiles_s:
        return None
    if cur.valid or prev.valid or cur.errors or prev.errors or not all(
            "over target" in r for r in (*prev.reasons, *cur.reasons)):
        return None
    drop = max(prev.tiles_s[key] - cur.tiles_s[key], 0.0)
    excess = cur.tiles_s[key] - target
    if excess > 2 * drop and excess > 0.1 * target:
        return (f"stopped halving at {cur.offered_qps:g} qps: p{key} "
                f"{cur.tiles_s[key] * 1e3:.2f} ms is {excess * 1e3:.2f} ms over the target and "
                f"halving the load lowered it by {drop * 1e3:.2f} ms: less load will not meet it")
    return None


def scan_target(test: Callable[[float], StepResult], start_qps: float, *,
                precision: float = 0.05, min_qps: float = 0.5, max_steps: int = 20,
                known_valid: float | None = None, confirm: int = 1,
                percentile_key: str | None = None,
                on_note: Callable[[str], None] | None = None) -> tuple[float, list[StepResult]]:
    """Largest QPS whose step is VALID: bracket by doubling/halving from `start_qps`, then
    bisect until the bracket is within `precision` (relative), then confirm the answer: it is
    tested `confirm` more times and stands only if every test at it passed.  A failed
    confirmation makes it the new upper bound and the search goes on below it.  -1 if none
    is valid.  On a noisy machine one pass at a load near saturation can be a lucky draw;
    an answer that must pass again is not.

    `known_valid`: a QPS that already passed (and was confirmed at) a stricter test, a
    tighter latency target, so it passes this one: the search brackets upward from it instead
    of re-testing below it.  That makes a scan's answers monotone in the target.

    `percentile_key` (the tiles key of the scan's percentile) lets the halving stop early
    when less load cannot help (`out_of_reach`); `on_note` hears why."""
    steps: list[StepResult] = []

    def ok(q: float) -> bool:
        r = test(q)
        steps.append(r)
        return r.valid

    def halve_down(q: float, hi: float, cap: int) -> tuple[float, float]:
        """Halve from `q`, whose failed step is the last one, until a load passes: (lo, hi),
        lo 0 when none did."""
        while q / 2 >= min_qps and len(steps) < cap:
            prev = steps[-1]
            q /= 2
            if ok(q):
                return q, hi
            hi = q
            why = out_of_reach(prev, steps[-1], percentile_key) if percentile_key else None
            if why:
                if on_note:
                    on_note(why)
                break
        return 0.0, hi

    lo, hi = 0.0, 0.0
    known = known_valid is not None and known_valid > 0
    q = known_valid if known else start_qps
    if known or ok(q):
        lo = q
        while len(steps) < max_steps and ok(q * 2):
            lo = q = q * 2
        hi = q * 2
    else:
        lo, hi = halve_down(q, q, max_steps)
        if lo == 0:
            return -1.0, steps
    limit = max_steps
    while True:
        while (hi - lo) / hi > precision and len(steps) < limit:
            mid = round((lo + hi) / 2, 2)
            if ok(mid):
                lo = mid
            else:
                hi = mid
        if (known and lo == known_valid) or all(ok(lo) for _ in range(confirm)):
            return lo, steps
        # not confirmed: it bounds the answer from above; resume from the best load below it
        # that passed (halving when none did), with a few more steps to bisect again
        hi = lo
        below = [r.offered_qps for r in steps if r.valid and r.offered_qps < hi]
        if known and known_valid < hi:  # type: ignore[operator]
            below.append(known_valid)  # type: ignore[arg-type]
        lo = max(below, default=0.0)
        if lo == 0:
            lo, hi = halve_down(hi, hi, len(steps) + max_steps)
        if lo == 0:
            return -1.0, steps
        limit = len(steps) + 4
