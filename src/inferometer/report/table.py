"""Plain-text tables of a run: one block per model, then each runtime's dependencies."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from ..results.accuracyrun import AccuracyRun
from ..results.cost import cost_per_million
from ..results.loadrun import LoadRun
from ..results.rounds import rounds_text
from ..results.schema import CellResult, ModelInfo, RunResult
from ..results.trainrun import TrainRun
from ..results.tunerun import TuneRun
from ..stats import ALPHA
from ..units import figure
from .compare import (
    NOISE,
    SENSITIVITY,
    Comparison,
    compare_cells,
    gemm_probes,
    key_label,
    machine_probes,
    process_figures,
)
from .repeated import UNTESTED, call, interval_text


def render(headers: Sequence[str], rows: Sequence[Sequence[str]],
           wrap: Mapping[int, int] | None = None) -> str:
    """Left-align the first column and text, right-align numbers.  A cell's newlines put its
    parts on lines of their own; `wrap` maps a column to its widest line: longer cells continue
    on the lines below, so a table of long lists fits a terminal."""
    wrap = wrap or {}
    def split(i: int, cell: str) -> list[str]:
        # A newline in any cell starts a line of its own; an unsplit one would break the
        # columns of every row below it.
        if i not in wrap:
            return cell.split("\n")
        return [x for part in cell.split("\n")
                for x in textwrap.wrap(part, wrap[i], break_on_hyphens=False) or [""]]

    lines_of = [[split(i, c) for i, c in enumerate(r)] for r in rows]
    widths = [max(len(h), *(len(x) for r in lines_of for x in r[i])) if rows else len(h)
              for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            numeric = i > 0 and c.replace(".", "", 1).replace("x", "", 1).isdigit()
            out.append(c.rjust(w) if numeric else c.ljust(w))
        return "  ".join(out).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    for r, cells in zip(rows, lines_of, strict=True):
        if not any(r):
            lines.append("")
            continue
        for k in range(max(len(c) for c in cells)):
            lines.append(fmt([c[k] if k < len(c) else "" for c in cells]))
    return "\n".join(lines)


_num = figure


def _cost(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _integrity(c: CellResult) -> str:
    i = c.integrity
    if i is None:
        return "n/a (see settings)" if "integrity" in c.settings else "n/a"
    top1 = "" if i.top1_agreement is None else f" top1 {i.top1_agreement:.0%}"
    # several outputs: the figures are the failing (or worst) output's, so name it
    where = f" {i.output}" if i.output and not i.passed else ""
    return f"{'ok' if i.passed else 'FAIL'}{where} {i.rel_max_abs_diff:.1e}{top1}"


def _deps(c: CellResult) -> str:
    if not c.libraries:
        return "-"
    total = sum(lib.size_mb for lib in c.libraries)
    return f"{len(c.libraries)} libs {total:.0f}MB"


_MAX_LIBS = 8
_MAX_LISTED = 8

HEADERS = ("runtime/variant", "prec", "thr", "batch", "mean ms", "p50 ms", "p90 ms", "p99 ms",
           "spread", "items/s", "peak MB", "load s", "first ms", "integrity", "deps", "flags")


def spread_cell(c: CellResult) -> str:
    """The between-process spread and the number of processes: '3.1% x3', or '- x1' where
    one process could not show it."""
    n = max(1, len(c.processes))
    return f"{'-' if c.spread is None else f'{c.spread:.1%}'} x{n}"


def cell_row(c: CellResult) -> list[str]:
    name = f"{c.spec.runtime}/{c.spec.variant}" + (f" @{c.spec.machine}" if c.spec.machine
                                                  else "")
    head = [name, c.precision, c.spec.threads_label, str(c.spec.batch)]
    if c.status != "ok" or c.summary is None:
        return head + ["-"] * (len(HEADERS) - 5) + [f"FAILED: {c.error}"]
    s = c.summary
    flags = " ".join(f for f, on in (("unstable", c.unstable), ("noisy", c.noisy)) if on)
    return [*head, _num(s.mean_ms), _num(s.p50_ms), _num(s.p90_ms), _num(s.p99_ms),
            spread_cell(c), _num(c.items_per_s, 1), _num(c.peak_rss_mb, 0), _num(c.load_s),
            _num(c.first_ms, 1), _integrity(c), _deps(c), flags]


def _ranked(cells: Sequence[CellResult]) -> dict[tuple[int, str], list[CellResult]]:
    """Per (batch size, precision): the cells that ran and passed integrity (or had no
    reference to fail), fastest median first.  Precisions are kept apart: an int8 row is only
    "fastest" next to what it costs in accuracy."""
    ranked: dict[tuple[int, str], list[CellResult]] = {}
    for c in cells:
        if c.status != "ok" or c.summary is None or c.spec.runtime == "null":
            continue
        if c.integrity is not None and not c.integrity.passed:
            continue
        ranked.setdefault((c.spec.batch, c.precision), []).append(c)
    return {k: sorted(v, key=lambda c: c.summary.p50_ms)  # type: ignore[union-attr]
            for k, v in ranked.items()}


def _runner_up(best: CellResult, ranked: Sequence[CellResult]) -> str:
    """The fastest other runtime, and whether the lead is beyond noise, by compare's rule on
    the stored process medians: the ratio's interval excludes 1, the ratio clears the
    noise floor (2%, or how far apart identical processes lie) and Welch's test on the process
    medians has p < 0.05.  A tie is worth saying: the choice is then free on speed."""
    other = next((c for c in ranked if c.spec.runtime != best.spec.runtime), None)
    if other is None:
        return ""
    cmp = compare_cells(best, other, None, None, NOISE)
    change = cmp.get("p50")
    if change is None:
        return ""
    label = f"{other.spec.runtime}/{other.spec.variant} threads={other.spec.threads_label}"
    ci = f", 95% CI [{change.low:.2f}, {change.high:.2f}]" if change.bounded else ""
    test = "" if change.p is None else (", p<0.01" if change.p < 0.01 else f", p={change.p:.2f}")
    evidence = (f"{ci}, {cmp.processes_a} vs {cmp.processes_b} processes{test}, noise floor "
                f"{change.floor:.1%}")
    if change.verdict == "slower":
        return f"; next runtime {label} {change.ratio:.2f}x slower{evidence}"
    return f"; tied with {label} ({change.ratio:.2f}x{evidence}: cannot tell them apart)"


def tied_with(best: CellResult, others: Sequence[CellResult]) -> list[CellResult]:
    """The cells the fastest one cannot be told apart from by compare's rule on p50 (the
    `fastest` line's tie): a table that names one "best" names these beside it, so an
    identical rerun that swaps two of them says the same thing."""
    out = []
    for o in others:
        if o is best or o.status != "ok" or o.summary is None:
            continue
        change = compare_cells(best, o, None, None, NOISE).get("p50")
        if change is not None and change.verdict != "slower":
            out.append(o)
    return out


def _where(c: CellResult) -> str:
    on = f" on {c.spec.machine}" if c.spec.machine else ""
    return f"{c.spec.runtime}/{c.spec.variant}{on}"


def cheapest_lines(cells: Sequence[CellResult], run: RunResult) -> list[str]:
    out = []
    for (batch, prec), ranked in sorted(_ranked(cells).items()):
        priced = sorted((x, c) for c in ranked if (x := cost_per_million(c, run)) is not None)
        if priced:
            x, c = priced[0]
            out.append(f"cheapest {prec} at batch {batch}: {_where(c)} "
                       f"threads={c.spec.threads_label}: {x:.4g} per million inferences "
                       f"({c.items_per_s:.1f} items/s)"
                       + (_next_cheapest(priced[0], priced[1]) if len(priced) > 1 else ""))
    return out


def _next_cheapest(best: tuple[float, CellResult], other: tuple[float, CellResult]) -> str:
    """How much more the next cheapest cell costs, called by the rule of every verdict: a
    process's cost is its cell's price an hour times its own median latency (throughput's
    inverse), so two machine types a few percent apart in cost are tied, not ranked, when
    their processes' spread covers it."""
    def costs(x: float, c: CellResult) -> list[float]:
        price = x * (c.items_per_s or 0.0)  # per hour, up to a constant
        return [price * f for f in process_figures(c, "p50")]

    a, b = costs(*best), costs(*other)
    c = other[1]
    label = f"{_where(c)} threads={c.spec.threads_label}"
    if not a or not b:
        return ""
    called = call(a, b, higher_is_better=False, words=("less", "more"), resolution=NOISE)
    evidence = f"{len(a)} vs {len(b)} processes"
    if called.word == UNTESTED:
        return f"; next {label} at {called.ratio:.2f}x the cost ({evidence}: not tested)"
    ci = interval_text(called.low, called.high)
    if called.word in ("less", "more"):
        return f"; next {label} at {called.ratio:.2f}x the cost (95% CI {ci}, {evidence})"
    return (f"; tied with {label} ({called.ratio:.2f}x the cost, 95% CI {ci}, {evidence}: "
            "cannot tell them apart)")


def fastest_lines(cells: Sequence[CellResult]) -> list[str]:
    """'fastest PRECISION at batch N: ...' for each (batch, precision), with what a reduced
    precision costs in top-1 agreement and how far ahead of the next runtime it is."""
    out = []
    for (batch, prec), ranked in sorted(_ranked(cells).items()):
        c = ranked[0]
        i = c.integrity
        cost = ("" if prec == "fp32" or i is None or i.top1_agreement is None
                else f" (top-1 agrees with the fp32 reference on {i.top1_agreement:.0%})")
        out.append(f"fastest {prec} at batch {batch}: {_where(c)} "
                   f"threads={c.spec.threads_label}: p50 {_num(c.summary.p50_ms)} ms, "  # type: ignore[union-attr]
                   f"{c.items_per_s:.1f} items/s{cost}{_runner_up(c, ranked)}")
    return out


def model_groups(run: RunResult) -> list[tuple[str, ModelInfo, list[CellResult]]]:
    """The run's cells per model and dim binding ("bert_base seq=128"): each binding is a
    model of its own shape, compared, ranked and drawn apart from the others."""
    out = []
    for m in run.models:
        cells = [c for c in run.cells if c.spec.model == m.name]
        for dims in dict.fromkeys(c.spec.dims for c in cells):
            group = [c for c in cells if c.spec.dims == dims]
            label = m.name + "".join(f" {k}={v}" for k, v in dims)
            out.append((label, m, group))
    return out


def run_tables(run: RunResult) -> str:
    out: list[str] = []
    groups = model_groups(run)
    for label, m, cells in groups:
        out.append(f"\n== {label}  ({m.signature()}) ==")
        rows: list[list[str]] = []
        prev = ""
        for c in cells:  # one block per runtime, as the CPU study lays it out
            if rows and c.spec.runtime != prev:
                rows.append([""] * len(HEADERS))
            rows.append(cell_row(c))
            prev = c.spec.runtime
        headers: tuple[str, ...] = HEADERS
        if run.settings.cost_per_hour:
            headers = (*HEADERS, "per M inf")
            costs = iter(cost_per_million(c, run) for c in cells)
            rows = [[*r, ""] if not r[0] else [*r, _cost(next(costs))] for r in rows]
        out.append(render(headers, rows))
        out += fastest_lines(cells)
        out += cheapest_lines(cells, run)
        out += [line for c in cells if (line := _device_line(c))]
        out.append(_dependencies(cells))
    if len(groups) > 1:
        headers, rows = throughput_pivot(run)
        out += ["\nitems/s by model, batch and precision (fastest runtime/variant):",
                render(headers, rows)]
    out.append(_footer(run))
    return "\n".join(out)


def throughput_pivot(run: RunResult) -> tuple[tuple[str, ...], list[list[str]]]:
    """The GPU study's table: model x batch rows, one column per precision, each the fastest
    passing cell's items/s (and which runtime/variant it was, with those it is tied with)."""
    precisions = list(dict.fromkeys(c.precision for c in run.cells if c.status == "ok"))
    rows = []
    for label, _, cells in model_groups(run):
        ranked = _ranked(cells)
        for b in sorted({k[0] for k in ranked}):
            row = [label, str(b)]
            for p in precisions:
                if (b, p) not in ranked:
                    row.append("-")
                    continue
                c, *rest = ranked[(b, p)]
                # each other runtime/variant by its fastest cell
                others = list({_where(x): x for x in reversed(rest)
                               if _where(x) != _where(c)}.values())
                tied = sorted({_where(x) for x in tied_with(c, others)})
                row.append(f"{c.items_per_s:.1f} {c.spec.runtime}/{c.spec.variant}"
                           + (f" (tied: {', '.join(tied)})" if tied else ""))
            rows.append(row)
    return ("model", "batch", *precisions), rows


def _device_line(c: CellResult) -> str:
    """A device cell's second figure (device compute alone) and its GPU memory."""
    d = c.device_summary
    if d is None or c.summary is None:
        return ""
    line = (f"device compute {c.spec.runtime}/{c.spec.variant} b={c.spec.batch}: p50 "
            f"{d.p50_ms:.3f} ms of {c.summary.p50_ms:.3f} ms end to end; "
            f"{c.spec.batch * 1000 / d.p50_ms:.0f} items/s on the device")
    if c.device_memory_mb:
        line += "; GPU MB " + ", ".join(f"{k.replace('_', ' ')} {v:.0f}"
                                        for k, v in c.device_memory_mb.items())
    return line


def _dependencies(cells: Sequence[CellResult]) -> str:
    lines = ["runtime dependencies (non-system shared libraries loaded by the worker):"]
    seen = set()
    for c in cells:
        if c.status != "ok" or c.spec.runtime in seen:
            continue
        seen.add(c.spec.runtime)
        shown = c.libraries[:_MAX_LIBS]  # biggest first; the full list is in results.json
        libs = ", ".join(f"{lib.name} {lib.size_mb:.1f}MB" for lib in shown) or "none"
        rest = c.libraries[_MAX_LIBS:]
        if rest:
            libs += f", and {len(rest)} more ({sum(lib.size_mb for lib in rest):.1f}MB)"
        lines.append(f"  {c.spec.runtime} {c.runtime_version}: {libs}")
    return "\n".join(lines)


NODE_HEADERS = ("node", "machine type", "CPU", "CPUs", "memory GB", "address", "inferometer",
                "price/h", "processes")


def _processes_by_node(run: RunResult) -> dict[str, int]:
    ran: dict[str, int] = {}
    for c in run.cells:
        for p in c.processes:
            ran[p.node] = ran.get(p.node, 0) + 1
    return ran


def node_rows(run: RunResult) -> list[list[str]]:
    """A cluster run's nodes, one row each: which machine, its price, what it ran."""
    ran = _processes_by_node(run)
    prices = run.settings.cost_per_hour
    return [[nid, str(m.get("machine_type", "")), str(m.get("cpu_model", "")),
             str(m.get("usable_cpus", "")), str(m.get("memory_gb", "")),
             str(m.get("address", "")), str(m.get("inferometer", "")),
             f"{prices[str(m.get('machine_type'))]:g}" if str(m.get("machine_type")) in prices
             else "-", str(ran.get(nid, 0))]
            for nid, m in run.machines.items()]


def _nodes_lines(run: RunResult) -> list[str]:
    """A cluster run's nodes: which machine each is and how many processes it ran."""
    if run.settings.cluster is None:
        return []
    ran = _processes_by_node(run)
    lines = [f"cluster {run.settings.cluster}: {len(run.machines)} node(s), "
             f"{run.settings.slots_per_node} process(es) at a time on each"]
    for nid, m in run.machines.items():
        lines.append(f"  node {nid} {m.get('machine_type')}: {m.get('cpu_model')}, "
                     f"{m.get('usable_cpus')} CPUs, {m.get('memory_gb')} GB, at "
                     f"{m.get('address')}; {ran.get(nid, 0)} process(es)")
    return lines


def _footer(run: RunResult) -> str:
    s = run.settings
    m = run.machine
    lines = [f"\nmachine: {m.get('cpu_model')}, {m.get('usable_cpus')} usable CPUs, "
             f"flags {','.join(m.get('cpu_flags') or []) or '-'}",  # type: ignore[arg-type]
             *(f"timed: {r}" for r in dict.fromkeys(c.timed_region for c in run.cells
                                                      if c.timed_region) or
               ["uint8 NHWC buffer -> runtime input + inference" if s.preprocess_timed
                else "inference only (--no-preprocess)"]),
             f"integrity reference: {s.reference_runtime} fp32 on the same fixed inputs",
             *_nodes_lines(run)]
    noisy = sum(c.noisy for c in run.cells)
    unstable = sum(c.unstable for c in run.cells)
    if noisy:
        lines.append(f"warning: {noisy} cell(s) ran while other processes used more than "
                     f"{s.noisy_threshold:.0%} of the CPUs they ran on (noisy): re-run on a quiet "
                     "machine")
    if unstable:
        lines.append(f"warning: {unstable} cell(s) unstable: their process medians spread more "
                     f"than {s.max_spread:.0%} (or, measured in one process, the median's CI "
                     f"stayed wider than {s.target_label}); verdicts on them need a "
                     "bigger difference")
    single = sum(1 for c in run.cells if c.status == "ok" and len(c.processes) <= 1)
    if single:
        lines.append(f"note: {single} cell(s) ran in one process: their intervals cannot "
                     "include between-run noise (run with --repeat auto, the default)")
    else:
        rounds = rounds_text(run.cells, s)
        lines.append(f"processes: {s.processes_label} per cell, scheduled {s.order}; "
                     "'spread' is the range of the process medians over their median"
                     + (f", {rounds}" if rounds else ""))
    gemm = sorted(gemm_probes(run.cells))
    probes = sorted(machine_probes(run.cells))
    if gemm:
        lines.append(f"machine speed before each process: a one-thread matrix product took "
                     f"median {gemm[len(gemm) // 2]:.3f} ms (range {gemm[0]:.3f}-{gemm[-1]:.3f});"
                     " compare divides another run's CPU latencies by the difference in it")
    elif probes:
        lines.append(f"machine speed probe before each process: median "
                     f"{probes[len(probes) // 2]:.2f} ms of fixed work (range {probes[0]:.2f}-"
                     f"{probes[-1]:.2f}); compare holds two runs to the difference in it")
    if run.status != "complete":
        lines.append(f"note: this run is {run.status}; resume it with inferometer run --resume")
    return "\n".join(lines)


LOAD_HEADERS = ("instances x threads", "arrivals", "target s", "offered qps", "qps", "queries",
                "p50 ms", "p99 ms", "errors", "server queue/compute ms", "verdict")


def load_rows(run: LoadRun) -> list[list[str]]:
    rows = []
    for ls in run.scan:
        st = ls.step
        sv = st.server
        server = (f"{_num(sv.get('queue_ms', 0))} / {_num(sv.get('compute_ms', 0))}" if sv
                  else "-")
        arrivals = (f"concurrency {st.concurrency}" if st.concurrency is not None
                    else st.arrivals)
        rows.append([ls.config, arrivals, "-" if st.target_s is None else f"{st.target_s:g}",
                     f"{st.offered_qps:g}", f"{st.achieved_qps:.2f}", str(st.queries),
                     _num(st.tiles_s.get('50', 0) * 1000),
                     _num(st.tiles_s.get('99', 0) * 1000), str(st.errors), server,
                     ("VALID" if st.valid else "INVALID: " + "; ".join(st.reasons))
                     + "".join(f" (note: {n})" for n in st.notes)])
    return rows


def load_title(run: LoadRun) -> str:
    if run.target:
        return (f"{run.kind}: {run.model.name} at {run.target} (server: "
                f"{run.runtime or 'unnamed'}), our client")
    return (f"{run.kind}: {run.model.name} on {run.runtime} {run.runtime_version} "
            f"({run.variant}), engine {run.engine}"
            + (f", dynamic batching {run.batching}" if run.batching else ""))


def max_qps_lines(run: LoadRun) -> list[str]:
    out = []
    for config, by_arrival in run.results.items():
        for arrivals, by_target in by_arrival.items():
            best = ", ".join(f"{t}s: {q:g}" for t, q in by_target.items())
            out.append(f"max QPS {config} {arrivals}: {best}")
    return out


def load_tables(run: LoadRun) -> str:
    """A stored loadtest or scan: every step, then the max QPS per target."""
    return "\n".join([load_title(run), f"check_accuracy {run.check_accuracy}",
                      render(LOAD_HEADERS, load_rows(run)), *max_qps_lines(run)])


PRECISION_HEADERS = ("runtime", "precision", "variant", "top-1 %", "d top-1 vs fp32",
                     "differ vs ref", "agrees with ref", "max|d| logits", "p50 ms/batch",
                     "speed-up", "flag")


def precision_rows(run: AccuracyRun) -> list[list[str]]:
    def f(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    rows = []
    for r in run.rows:
        if r.status != "ok":
            rows.append([r.runtime, r.precision, r.variant, *["-"] * 7, f"{r.status}: {r.note}"])
            continue
        rows.append([r.runtime, r.precision, r.variant, f(r.top1, ".2f"),
                     f(r.delta_top1, "+.2f"),
                     "-" if r.differ_from_reference is None else str(r.differ_from_reference),
                     "-" if r.agreement is None else
                     (f"{r.agreement:.2f}% argmax" if r.agreement_kind == "argmax %"
                      else f"cosine {r.agreement:.4f}"),
                     f(r.max_abs_diff, ".2e"), f(r.p50_ms, ".3f"), f(r.speedup, ".2f"),
                     f"TOP-1 DROP > {run.max_drop:g} pt" if r.flagged else ""])
    return rows


def precision_title(run: AccuracyRun) -> str:
    on = "" if run.device == "cpu" else f" on {run.device}"
    return (f"precision table: {run.model.name} on {run.dataset} ({run.items} items, "
            f"batch {run.batch}){on}; reference {run.reference}")


def precision_table(run: AccuracyRun) -> str:
    return (f"{precision_title(run)}\n{run.dataset_note}\n"
            + render(PRECISION_HEADERS, precision_rows(run)))


TRAIN_HEADERS = ("precision", "forward ms", "backward ms", "update ms", "step p50 ms",
                 "step p90 ms", "images/s", "loss first -> last", "trained", "peak MB",
                 "GPU alloc MB")


def train_rows(run: TrainRun) -> list[list[str]]:
    rows = []
    for r in run.rows:
        if r.status != "ok" or r.total is None:
            rows.append([r.precision, *["-"] * (len(TRAIN_HEADERS) - 2), f"FAILED: {r.error}"])
            continue
        rep = r.report
        rows.append([r.precision, _num(r.forward.p50_ms if r.forward else None),
                     _num(r.backward.p50_ms if r.backward else None),
                     _num(r.update.p50_ms if r.update else None), _num(r.total.p50_ms),
                     _num(r.total.p90_ms), _num(r.images_per_s, 1),
                     f"{r.loss_first:.3f} -> {r.loss_last:.3f}",
                     "yes" if r.trained else "NO (loss did not fall)",
                     _num(rep.peak_rss_mb if rep else None, 0),
                     _num(rep.gpu_peak_allocated_mb if rep else None, 0)])
    return rows


def train_title(run: TrainRun) -> str:
    threads = "auto" if run.threads is None else str(run.threads)
    return (f"training step: {run.model.name} on {run.device} ({run.device_name}), torch "
            f"{run.torch_version}, batch {run.batch}, {run.optimizer}, threads {threads}"
            f"{', channels_last' if run.channels_last else ''}; median of {run.iterations} "
            f"iterations after {run.warmup} warm-up")


def train_table(run: TrainRun) -> str:
    return train_title(run) + "\n" + render(TRAIN_HEADERS, train_rows(run))


def tables(run: RunResult | LoadRun | AccuracyRun | TrainRun | TuneRun) -> str:
    """The plain-text view of any stored run."""
    if isinstance(run, TuneRun):
        from .tunetable import tune_text  # it renders with this module's tables

        return tune_text(run)
    if isinstance(run, TrainRun):
        return train_table(run)
    if isinstance(run, AccuracyRun):
        return precision_table(run)
    if isinstance(run, LoadRun):
        return load_tables(run)
    return run_tables(run)


def comparison_text(cmp: Comparison, thresholds_failed: Sequence[str]) -> str:
    """compare's output: the p50 table with intervals, processes per side and the noise floor
    each verdict had to clear, memory beside it, then the summary."""
    rows = []
    for cc in cmp.cells:
        p50, rss = cc.get("p50"), cc.get("peak_rss")
        if p50 is None:
            continue
        ci = f"[{p50.low:.3f}, {p50.high:.3f}]" if p50.bounded else "-"
        test = "-" if p50.p is None else f"{p50.p:.3f}"
        mem = "-" if rss is None else f"{rss.a:.0f} -> {rss.b:.0f} ({rss.ratio - 1:+.0%})"
        raw = [] if cmp.machine.speed == 1.0 else ["-" if p50.raw is None else f"{p50.raw:.3f}"]
        rows.append([key_label(cc.key), f"{p50.a:.3f}", f"{p50.b:.3f}", *raw, f"{p50.ratio:.3f}",
                     ci, f"{cc.processes_a}/{cc.processes_b}", test, f"{p50.floor:.1%}",
                     p50.verdict, mem])
    # with the machine's change divided out, B/A is the adjusted ratio and 'raw' B/A as measured
    ratio_heads = ("raw B/A", "B/A") if cmp.machine.speed != 1.0 else ("B/A",)
    out = [f"A: {cmp.a}", f"B: {cmp.b}",
           render(("cell", "A p50 ms", "B p50 ms", *ratio_heads, "95% CI", "procs A/B", "p",
                   "floor", "verdict", "peak MB"), rows)]
    g = cmp.geomean("p50")
    if g is not None:
        counts = {v: sum(1 for cc in cmp.cells if (c := cc.get("p50")) and c.verdict == v)
                  for v in ("faster", "slower", "no significant change")}
        out.append(f"geometric mean of B/A p50 over {len(cmp.cells)} cells: {g:.3f} "
                   f"({counts['faster']} faster, {counts['slower']} slower, "
                   f"{counts['no significant change']} no significant change; a change is "
                   "called when the 95% CI (two-level bootstrap: processes, then samples) "
                   f"excludes 1, it exceeds the noise floor: {cmp.noise:.0%}, or how far "
                   "apart two identical processes lie (1.13 standard deviations of the "
                   "process medians, pooled over both sides)"
                   + (f", at both ends of the machine's own change of speed divided out "
                      f"(B/A to the power {SENSITIVITY[0]:g} and {SENSITIVITY[1]:g})"
                      if cmp.machine.speed != 1.0 else
                      f", or the difference in the machine's own speed "
                      f"({cmp.machine.shift:.0%} here)")
                   + f", and p, Welch's test on the process medians, is under {ALPHA:g})")
    out += [f"note: {n}" for n in cmp.notes]
    for label, keys in (("only in A", cmp.only_a), ("only in B", cmp.only_b),
                        ("not compared", cmp.failed)):
        out += [f"{label}: {k}" for k in keys[:_MAX_LISTED]]
        if len(keys) > _MAX_LISTED:
            out.append(f"{label}: ... and {len(keys) - _MAX_LISTED} more (--json lists all)")
    out += [f"REGRESSION {line}" for line in thresholds_failed]
    return "\n".join(out)
