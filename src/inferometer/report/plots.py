"""Figures of a stored run, drawn only from what the run holds: a one-thread run gets no
latency-vs-threads line, a one-batch run no throughput-vs-batch curve.

matplotlib is used through `Figure` directly (no pyplot): no GUI backend, no global state, so
reports render the same on a server as on a laptop.  One style for every figure: the Okabe-Ito
palette (distinguishable with the common colour-vision deficiencies), a marker per series as a
second cue, units on every axis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..results.accuracyrun import AccuracyRun
from ..results.loadrun import LoadRun
from ..results.schema import CellResult, RunResult
from ..results.store import RunDir
from ..results.trainrun import TrainRun
from ..results.tunerun import TuneRun

# Okabe-Ito; its yellow last, as it is the faintest on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#F0E442")
_CDF_POINTS = 2000
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Plot:
    name: str  # file stem under plots/
    title: str
    caption: str
    figure: Any  # matplotlib.figure.Figure
    model: str = ""  # the model a speed-run figure belongs to (the report places it there)


def _figure(width: float = 7.0, height: float = 4.2) -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        from ..errors import UsageError

        raise UsageError("plots need matplotlib: pip install matplotlib "
                         "(or pip install -c constraints.txt -e '.[all]')") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _style(i: int) -> dict[str, Any]:
    """Series i's colour and marker.  Past the palette's length the marker shifts by one per
    lap, so no two of the first 64 series share both (make bench draws 13)."""
    lap = i // len(PALETTE)
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[(i + lap) % len(MARKERS)]}


def _log(ax: Any, which: str) -> None:
    """Log scale labelled 20, 30, 100 rather than 2x10^1 (minor labels only where the range
    is short enough for them, as matplotlib's LogFormatter decides)."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_formatter(Plain(labelOnlyBase=False))
    axis.set_minor_formatter(Plain(labelOnlyBase=False))


def _scale(ax: Any, which: str, values: Sequence[float]) -> None:
    """Log scale only when the values span more than a decade; within one, a linear axis is
    easier to read (and labels every tick), and it starts at zero: a cropped axis would draw a
    10% difference as a twofold one."""
    if values and min(values) > 0 and max(values) / min(values) > 10:
        _log(ax, which)
    elif values:
        (ax.set_ylim if which == "y" else ax.set_xlim)(0, max(values) * 1.08)


def _legend(ax: Any, **kw: Any) -> None:
    """Beside the axes, never over the data."""
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)


def series_label(c: CellResult) -> str:
    return f"{c.spec.runtime}/{c.spec.variant}"


def _ok(c: CellResult) -> bool:
    return c.status == "ok" and c.summary is not None


def _by_series(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = defaultdict(list)
    for c in cells:
        if _ok(c):
            out[series_label(c)].append(c)
    return dict(out)


def _fastest(cells: Sequence[CellResult]) -> CellResult:
    return min(cells, key=lambda c: c.summary.p50_ms)  # type: ignore[union-attr]


# -- speed runs ---------------------------------------------------------------------------------
def latency_vs_threads(cells: Sequence[CellResult], batch: int, stem: str,
                       order: Sequence[str]) -> Plot | None:
    cells = [c for c in cells if c.spec.batch == batch and _ok(c)]
    counts = sorted({c.spec.threads for c in cells if c.spec.threads is not None})
    has_auto = any(c.spec.threads is None for c in cells)
    if len(counts) + has_auto < 2:
        return None
    # Thread counts as categories (1, 2, 4, ... evenly spaced), "auto" last: the runtime's own
    # default is not a number we chose, so it gets a hollow marker and no connecting line.
    pos = {t: i for i, t in enumerate(counts)}
    fig, ax = _figure()
    for label, series in sorted(_by_series(cells).items()):
        st = _style(order.index(label))
        pts = sorted((pos[c.spec.threads], c.summary.p50_ms) for c in series  # type: ignore[union-attr]
                     if c.spec.threads is not None)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.6, **st)
        auto = [c for c in series if c.spec.threads is None]
        if auto:
            ax.plot([len(counts)], [auto[0].summary.p50_ms], linestyle="none",  # type: ignore[union-attr]
                    markerfacecolor="white", markersize=8, markeredgewidth=1.6,
                    label=None if pts else label, **st)
    ticks = [str(t) for t in counts] + (["auto"] if has_auto else [])
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel("threads (auto: the runtime's default, hollow marker)")
    ax.set_ylabel(f"median latency per batch of {batch} (ms)")
    _scale(ax, "y", [c.summary.p50_ms for c in cells])  # type: ignore[union-attr]
    _legend(ax)
    ax.set_title(f"Latency vs threads, batch {batch}")
    return Plot(f"{stem}latency-vs-threads-b{batch}", f"Latency vs threads (batch {batch})",
                "Median latency of each runtime/variant at each thread count; lower is "
                "better.", fig)


def _hbar(labels: Sequence[str], values: Sequence[float], xlabel: str, title: str,
          annotate: Callable[[int], str], colors: Sequence[str],
          errors: Sequence[tuple[float, float]] | None = None) -> Any:
    fig, ax = _figure(7.0, 0.9 + 0.42 * len(labels))
    ys = range(len(labels))
    xerr = None
    if errors is not None:
        xerr = [[v - lo for v, (lo, _) in zip(values, errors, strict=True)],
                [hi - v for v, (_, hi) in zip(values, errors, strict=True)]]
    ax.barh(ys, values, color=colors, xerr=xerr, capsize=3, ecolor="#444444")
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()  # first (best) on top
    for y, v in zip(ys, values, strict=True):
        ax.annotate(annotate(y), (v, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7)
    if min(values) > 0 and max(values) / min(values) > 20:
        # one outlier (an untuned compiler, say) would flatten every other bar to nothing
        _log(ax, "x")
        xlabel += " (log scale)"
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.margins(x=0.25)
    return fig


def best_per_series(cells: Sequence[CellResult], batch: int) -> list[CellResult]:
    """Each runtime/variant's fastest cell at this batch size, fastest first."""
    best = [_fastest(s) for s in _by_series([c for c in cells if c.spec.batch == batch]).values()]
    return sorted(best, key=lambda c: c.summary.p50_ms)  # type: ignore[union-attr]


def _mark(c: CellResult) -> str:
    return " (integrity FAIL)" if c.integrity is not None and not c.integrity.passed else ""


def _color(c: CellResult, order: Sequence[str]) -> str:
    return _style(order.index(series_label(c)))["color"]


def latency_bars(cells: Sequence[CellResult], batch: int, stem: str,
                 order: Sequence[str]) -> Plot | None:
    best = best_per_series(cells, batch)
    if not best:
        return None
    labels = [series_label(c) + _mark(c) for c in best]
    values = [c.summary.p50_ms for c in best]  # type: ignore[union-attr]
    ci = [(c.summary.median_ci_low_ms, c.summary.median_ci_high_ms) for c in best]  # type: ignore[union-attr]
    fig = _hbar(labels, values, f"median latency per batch of {batch} (ms), 95% CI",
                f"Latency at the best thread count, batch {batch}",
                lambda i: f"{values[i]:.2f} ms, threads={best[i].spec.threads_label}",
                [_color(c, order) for c in best], ci)
    return Plot(f"{stem}latency-b{batch}", f"Latency at the best thread count (batch {batch})",
                "Each runtime/variant at its fastest thread count; bars are medians, whiskers "
                "their 95% confidence interval.", fig)


def memory_bars(cells: Sequence[CellResult], batch: int, stem: str,
                order: Sequence[str]) -> Plot | None:
    best = [c for c in best_per_series(cells, batch) if c.peak_rss_mb is not None]
    if not best:
        return None
    best.sort(key=lambda c: c.peak_rss_mb)  # type: ignore[arg-type, return-value]
    labels = [series_label(c) for c in best]
    values = [c.peak_rss_mb for c in best]
    fig = _hbar(labels, values, "peak resident memory of the worker process (MB)",  # type: ignore[arg-type]
                f"Peak memory, batch {batch}",
                lambda i: f"{values[i]:.0f} MB (after load {best[i].rss_after_load_mb or 0:.0f})",
                [_color(c, order) for c in best])
    return Plot(f"{stem}memory-b{batch}", f"Peak memory (batch {batch})",
                "Peak RSS (VmHWM) of the worker that ran the fastest cell of each "
                "runtime/variant, including the Python interpreter; lower is better.", fig)


def throughput_vs_batch(cells: Sequence[CellResult], stem: str,
                        order: Sequence[str]) -> Plot | None:
    batches = sorted({c.spec.batch for c in cells if _ok(c)})
    if len(batches) < 2:
        return None
    fig, ax = _figure()
    for label, series in sorted(_by_series(cells).items()):
        pts = []
        for b in batches:
            at = [c for c in series if c.spec.batch == b]
            if at:
                pts.append((b, _fastest(at).items_per_s))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.6,
                **_style(order.index(label)))
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("throughput (items/s, single stream)")
    _scale(ax, "y", [c.items_per_s for c in cells if _ok(c)])
    _legend(ax)
    ax.set_title("Throughput vs batch size (best thread count per batch)")
    return Plot(f"{stem}throughput-vs-batch", "Throughput vs batch size",
                "Items per second at the median latency, each batch size at its fastest thread "
                "count; higher is better.", fig)


def latency_distribution(cells: Sequence[CellResult], batch: int, stem: str,
                         order: Sequence[str], rundir: RunDir) -> Plot | None:
    best = best_per_series(cells, batch)
    curves = []
    for c in best:
        procs = rundir.samples(c.spec.id)
        if procs:  # every process's samples together: the distribution the cell reports
            curves.append((c, sorted(s / 1e6 for p in procs for s in p)))
    if not curves:
        return None
    fig, ax = _figure()
    for c, ms in curves:
        n = len(ms)
        st = _style(order.index(series_label(c)))
        # At most _CDF_POINTS steps (evenly spaced ranks, min and max kept): a 50,000-sample
        # cell draws the same curve without a multi-megabyte SVG.
        ranks = range(n) if n <= _CDF_POINTS else sorted(
            {round(i * (n - 1) / (_CDF_POINTS - 1)) for i in range(_CDF_POINTS)})
        ax.step([ms[k] for k in ranks], [(k + 1) / n for k in ranks], where="post",
                color=st["color"], linewidth=1.4,
                label=f"{series_label(c)} t={c.spec.threads_label} (n={n})")
    lo, hi = min(ms[0] for _, ms in curves), max(ms[-1] for _, ms in curves)
    if hi > 10 * lo:
        _log(ax, "x")
    ax.set_xlabel(f"latency per batch of {batch} (ms)")
    ax.set_ylabel("fraction of runs at or below")
    ax.set_ylim(0, 1.02)
    _legend(ax)
    ax.set_title(f"Latency distribution, batch {batch}")
    return Plot(f"{stem}latency-cdf-b{batch}", f"Latency distribution (batch {batch})",
                "Empirical CDF of every steady-state run of each runtime/variant's fastest "
                "cell: a long right tail is jitter the median hides.", fig)


def precision_speedup(cells: Sequence[CellResult], batch: int, stem: str,
                      order: Sequence[str]) -> Plot | None:
    """Speed runs with several precisions: speed-up over the runtime's fp32 against how often
    top-1 agrees with the fp32 reference (the speed run's stand-in for an accuracy drop)."""
    best = best_per_series(cells, batch)
    fp32 = {c.spec.runtime: c for c in best if c.precision == "fp32"}
    pts = [(c, fp32[c.spec.runtime].summary.p50_ms / c.summary.p50_ms)  # type: ignore[union-attr]
           for c in best if c.precision != "fp32" and c.spec.runtime in fp32
           and c.integrity is not None and c.integrity.top1_agreement is not None]
    if not pts:
        return None
    fig, ax = _figure()
    for c, speedup in pts:
        agree = 100 * c.integrity.top1_agreement  # type: ignore[union-attr, operator]
        ax.plot([100 - agree], [speedup], linestyle="none", markersize=8,
                **_style(order.index(series_label(c))),
                label=f"{series_label(c)} ({c.precision})")
    ax.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--")
    ax.set_xlabel("predictions that moved vs the fp32 reference (% of fixed inputs)")
    ax.set_ylabel("speed-up over the runtime's fp32 (x)")
    _legend(ax)
    ax.set_title(f"Reduced precision: speed-up vs prediction change, batch {batch}")
    return Plot(f"{stem}precision-b{batch}", f"Reduced precision (batch {batch})",
                "Speed-up over the same runtime's fp32 against the share of top-1 predictions "
                "that changed on the fixed inputs. Accuracy on labelled data: inferometer "
                "accuracy.", fig)


def run_plots(run: RunResult, rundir: RunDir) -> list[Plot]:
    from .table import model_groups

    plots: list[Plot] = []
    groups = model_groups(run)
    for label, _, cells in groups:
        stem = f"{label.replace(' ', '-').replace('=', '')}-" if len(groups) > 1 else ""
        order = sorted(_by_series(cells))  # one colour per runtime/variant in every figure
        batches = sorted({c.spec.batch for c in cells})
        b0 = batches[0] if batches else 1
        found = [*(latency_vs_threads(cells, b, stem, order) for b in batches),
                 latency_bars(cells, b0, stem, order), memory_bars(cells, b0, stem, order),
                 throughput_vs_batch(cells, stem, order),
                 latency_distribution(cells, b0, stem, order, rundir),
                 precision_speedup(cells, b0, stem, order)]
        plots += [replace(p, model=label) for p in found if p is not None]
    return plots


# -- load runs ----------------------------------------------------------------------------------
def _tile_key(percentile: float) -> str:
    return f"{percentile:g}"


def qps_vs_latency(run: LoadRun) -> Plot | None:
    key = _tile_key(run.percentile)
    groups: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    targets: set[float] = set()
    for ls in run.scan:
        st = ls.step
        if st.scenario != "server" or key not in st.tiles_s:
            continue
        groups[f"{ls.config} {st.arrivals}"].append(
            (st.achieved_qps, st.tiles_s[key] * 1000, st.valid))
        if st.target_s is not None:
            targets.add(st.target_s)
    if not groups:
        return None
    fig, ax = _figure()
    for i, (label, pts) in enumerate(sorted(groups.items())):
        pts.sort()
        st = _style(i)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=st["color"], linewidth=1,
                alpha=0.6)
        for valid in (True, False):
            sel = [p for p in pts if p[2] == valid]
            if sel:
                ax.plot([p[0] for p in sel], [p[1] for p in sel], linestyle="none",
                        marker=st["marker"], color=st["color"],
                        markerfacecolor=st["color"] if valid else "white",
                        label=label if valid or not any(p[2] for p in pts) else None)
    for t in sorted(targets):
        ax.axhline(t * 1000, color="#888888", linewidth=0.8, linestyle="--")
        ax.annotate(f"target {t * 1000:g} ms", (0, t * 1000), xycoords=("axes fraction", "data"),
                    xytext=(2, 2), textcoords="offset points", fontsize=7, color="#555555")
    _log(ax, "y")
    ax.set_xlabel("achieved throughput (queries/s)")
    ax.set_ylabel(f"p{key} latency (ms)")
    _legend(ax, title="instances x\nthreads, arrivals", title_fontsize=8)
    ax.set_title(f"{run.model.name} on {run.runtime}: QPS vs p{key} latency")
    return Plot("qps-vs-latency", f"QPS vs p{key} latency",
                "Every load step of the run: filled markers met their target and every "
                "validity rule, hollow ones did not; dashed lines are the latency targets.", fig)


# -- accuracy runs ------------------------------------------------------------------------------
def accuracy_speedup(run: AccuracyRun) -> Plot | None:
    rows = [r for r in run.rows if r.status == "ok" and r.precision != "fp32"
            and r.speedup is not None and r.delta_top1 is not None]
    if not rows:
        return None
    fig, ax = _figure()
    runtimes = sorted({r.runtime for r in run.rows})
    shapes = {"fp16": "s", "bf16": "^", "int8": "D"}
    for r in rows:
        color = PALETTE[runtimes.index(r.runtime) % len(PALETTE)]
        ax.plot([-r.delta_top1], [r.speedup], linestyle="none", markersize=8,  # type: ignore[operator]
                marker=shapes.get(r.precision, "o"), color=color,
                label=f"{r.runtime} {r.precision} ({r.variant})")
    ax.axvline(run.max_drop, color="#D55E00", linewidth=0.8, linestyle="--")
    ax.annotate(f"allowed drop {run.max_drop:g} pt", (run.max_drop, 1),
                xycoords=("data", "axes fraction"), xytext=(3, -12),
                textcoords="offset points", fontsize=7, color="#D55E00")
    ax.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--")
    ax.set_xlabel("top-1 drop vs the runtime's fp32 (percentage points)")
    ax.set_ylabel("speed-up over the runtime's fp32 (x)")
    _legend(ax)
    ax.set_title(f"{run.model.name} on {run.dataset}: speed-up vs accuracy drop")
    return Plot("precision-speedup-vs-drop", "Speed-up vs accuracy drop",
                "Each reduced-precision variant against its own runtime's fp32: up is faster, "
                "right lost accuracy; the dashed line is --max-drop.", fig)


# -- history across runs ------------------------------------------------------------------------
def history_plot(model: str, series: dict[str, list[tuple[str, float]]]) -> Plot:
    """p50 per configuration over the stored runs, in run order (dates as labels)."""
    stamps = sorted({t for pts in series.values() for t, _ in pts})
    pos = {t: i for i, t in enumerate(stamps)}
    fig, ax = _figure(max(7.0, 0.5 * len(stamps)), 4.2)
    for i, (label, pts) in enumerate(sorted(series.items())):
        ax.plot([pos[t] for t, _ in pts], [v for _, v in pts], label=label, linewidth=1.4,
                **_style(i))
    ax.set_xticks(range(len(stamps)), [t[:16].replace("T", " ") for t in stamps],
                  rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("median latency (ms)")
    ax.set_ylim(bottom=0)
    _legend(ax)
    ax.set_title(f"{model}: median latency across stored runs")
    return Plot(f"history-{model}", f"{model} history", "p50 of each configuration in each "
                "stored run, oldest first.", fig)


# -- training runs ------------------------------------------------------------------------------
def train_phases(run: TrainRun) -> Plot | None:
    rows = [r for r in run.rows if r.status == "ok" and r.forward and r.backward and r.update]
    if not rows:
        return None
    fig, ax = _figure(7.0, 1.2 + 0.5 * len(rows))
    ys = range(len(rows))
    left = [0.0] * len(rows)
    for i, phase in enumerate(("forward", "backward", "update")):
        widths = [getattr(r, phase).p50_ms for r in rows]
        ax.barh(ys, widths, left=left, color=PALETTE[i], label=phase)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(ys, [r.precision for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("median time per training step (ms)")
    _legend(ax)
    ax.set_title(f"{run.model.name} training step on {run.device}, batch {run.batch}")
    return Plot("train-phases", "Training step by phase",
                "Median forward (with the loss), backward and optimizer-update time per "
                "precision.", fig)


# -- tune runs ----------------------------------------------------------------------------------
def tune_fronts(run: TuneRun) -> Plot | None:
    """Every measured candidate as max QPS against its p99 and against its memory, the Pareto
    front joined, the recommendation ringed."""
    from .tunetable import pareto

    pts = [v for v in run.verdicts if v.max_qps and v.max_qps > 0]
    if not pts or run.objective != "throughput":
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    chosen = run.recommendation.candidate if run.recommendation else None
    runtimes = sorted({v.candidate.runtime for v in pts})
    for k, (other, label) in enumerate((("p99_ms", "p99 latency at max QPS (ms)"),
                                        ("memory_mb", "peak memory, all processes (MB)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        sel = [v for v in pts if getattr(v, other) is not None]
        for v in sel:
            i = runtimes.index(v.candidate.runtime)
            ax.plot([getattr(v, other)], [v.max_qps], linestyle="none", **_style(i),
                    alpha=0.8, label=v.candidate.runtime)
            if v.candidate == chosen:
                ax.plot([getattr(v, other)], [v.max_qps], linestyle="none", marker="o",
                        markersize=14, markerfacecolor="none", color="#000000",
                        label="recommended")
        front = pareto(run, other)
        ax.plot([getattr(v, other) for v in front], [v.max_qps for v in front],
                color="#555555", linewidth=0.9, linestyle="--", label="Pareto front")
        if other == "p99_ms" and run.slo_s:
            ax.axvline(run.slo_s * 1e3, color="#D55E00", linewidth=0.8, linestyle=":")
        ax.set_xlabel(label)
        ax.set_ylabel("max QPS under the SLO")
        ax.set_xlim(0, 1.1 * max(getattr(v, other) for v in sel))
        ax.set_ylim(0, 1.1 * max(v.max_qps for v in pts))  # type: ignore[type-var]
        handles, labels = ax.get_legend_handles_labels()
        seen = dict(zip(labels, handles, strict=True))
        ax.legend(seen.values(), seen.keys(), fontsize=7, frameon=False)
    fig.suptitle(f"{run.model.name}: what each candidate carries under the SLO")
    return Plot("tune-pareto", "Max QPS vs p99 and vs memory",
                "Each measured candidate at its max QPS under the SLO; the dashed line joins "
                "those nothing else beats on both axes; the ring is the recommendation.", fig)


def plots_for(run: RunResult | LoadRun | AccuracyRun | TrainRun | TuneRun,
              rundir: RunDir) -> list[Plot]:
    if isinstance(run, TuneRun):
        found = [tune_fronts(run)]
    elif isinstance(run, TrainRun):
        found = [train_phases(run)]
    elif isinstance(run, LoadRun):
        found = [qps_vs_latency(run)]
    elif isinstance(run, AccuracyRun):
        found = [accuracy_speedup(run)]
    else:
        return run_plots(run, rundir)
    return [p for p in found if p is not None]
