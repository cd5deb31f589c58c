"""Report: the plots a run has (and only those), Markdown in the studies' shape, escaping, and
the command line around them.  The browser check of the HTML is in test_browser.py."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import cli
from synthetic import EVIL, Cell, full_run, noisy, processes, write_run

from inferometer.report.write import write_report

GOLDEN = Path(__file__).parent / "golden"
def _plot_names(path: Path) -> set[str]:
    return {p.name for p in (path / "plots").iterdir()}


def test_a_full_run_gets_every_plot_in_png_and_svg(tmp_path: Path) -> None:
    files = write_report(full_run(tmp_path / "run"))
    stems = {"latency-vs-threads-b1", "latency-vs-threads-b4", "latency-b1", "memory-b1",
             "throughput-vs-batch", "latency-cdf-b1", "precision-b1"}
    assert _plot_names(tmp_path / "run") == {f"{s}.{e}" for s in stems for e in ("png", "svg")}
    for p in files.plots:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
        else:
            root = ET.fromstring(data)  # well-formed SVG
            assert root.tag.endswith("svg")


def test_only_what_the_run_has_is_drawn(tmp_path: Path) -> None:
    path = tmp_path / "one"
    write_run(path, [Cell("alpha", "default", 1, 1, noisy(5e6)),
                     Cell("beta", "default", 1, 1, noisy(6e6))])
    write_report(path)
    stems = {n.rsplit(".", 1)[0] for n in _plot_names(path)}
    # one thread count, one batch, one precision: no lines to draw across them
    assert stems == {"latency-b1", "memory-b1", "latency-cdf-b1"}


def test_markdown_has_a_block_per_runtime_in_the_studies_shape(tmp_path: Path) -> None:
    write_report(full_run(tmp_path / "run"))
    md = (tmp_path / "run" / "report.md").read_text()
    assert md.startswith("# inferometer report: net")
    assert "- **machine**: Test CPU, 2 usable of 2 logical CPUs" in md
    assert "- **runtimes**: alpha 1.0, beta 1.0" in md
    for runtime in ("alpha", "beta"):
        block = md.split(f"### {runtime} 1.0", 1)[1].split("###", 1)[0]
        assert "dependencies (1 non-system shared libraries, 12 MB): lib" in block
        assert "integrity passed" in block
        assert "| runtime/variant | prec | thr | batch |" in block
        # the threads table: one row per thread count and batch of each variant
        assert block.count(f"| {runtime}/") >= 6
    assert "![Latency vs threads (batch 1)](plots/latency-vs-threads-b1.png)" in md
    assert "fastest fp32 at batch 1: beta/fast threads=" in md
    # no cell ran on a device: no device column of dashes
    assert ("| runtime/variant | precision | batch | best threads | p50 ms | p99 ms "
            "| spread | items/s |") in md


def test_user_strings_are_escaped_in_markdown_and_html(tmp_path: Path) -> None:
    path = tmp_path / "evil"
    write_run(path, [Cell("alpha", "default", 1, 1, noisy(5e6), model=EVIL)])
    write_report(path)
    md = (path / "report.md").read_text()
    html = (path / "report.html").read_text()
    outside_code = md.split("```")[0::2]  # a fenced block shows markup as text: allowed there
    assert not any("<img" in part for part in outside_code)
    assert "x\\|y&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in html and "x|y&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script>") == 1  # the page's own sorter, nothing else


def test_html_is_self_contained(tmp_path: Path) -> None:
    write_report(full_run(tmp_path / "run"))
    html = (tmp_path / "run" / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert html.count('src="data:image/svg+xml;base64,') == 7
    assert "Content-Security-Policy" in html


def test_rendering_twice_gives_identical_files(tmp_path: Path) -> None:
    path = full_run(tmp_path / "run")
    write_report(path)
    first = {p.name: p.read_bytes() for p in (path / "plots").iterdir()}
    html = (path / "report.html").read_bytes()
    write_report(path)
    assert {p.name: p.read_bytes() for p in (path / "plots").iterdir()} == first
    assert (path / "report.html").read_bytes() == html


@pytest.mark.parametrize("kind", ["scan", "accuracy"])
@pytest.mark.parametrize("version", [1, 2])
def test_scan_and_accuracy_runs_render(tmp_path: Path, kind: str, version: int) -> None:
    path = tmp_path / kind
    path.mkdir()
    shutil.copy(GOLDEN / f"{kind}-v{version}.json", path / "results.json")
    r = cli("report", str(path))
    assert r.returncode == 0, r.stderr
    want = "qps-vs-latency" if kind == "scan" else "precision-speedup-vs-drop"
    assert _plot_names(path) == {f"{want}.png", f"{want}.svg"}
    md = (path / "report.md").read_text()
    if kind == "scan":
        assert "max QPS 1xauto linear" in md and "| instances x threads |" in md
    else:
        assert "| runtime | precision | variant | top-1 % |" in md


def test_report_command_on_a_real_run(tmp_path: Path) -> None:
    from conftest import QUICK

    out = tmp_path / "run"
    r = cli("run", "tinynet", "--runtimes", "onnxruntime", "--threads", "1,auto", "--batch",
            "1,2", "--output", str(out), "--report", *QUICK)  # what make bench runs
    assert r.returncode == 0, r.stderr
    assert f"report: {out / 'report.html'} (and report.md, plots/)" in r.stdout
    assert (out / "report.html").stat().st_size > 10_000
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert f"report: {out / 'report.html'}" in r.stdout
    stems = {n.rsplit(".", 1)[0] for n in _plot_names(out)}
    assert stems == {"latency-vs-threads-b1", "latency-vs-threads-b2", "latency-b1",
                     "memory-b1", "throughput-vs-batch", "latency-cdf-b1"}
    assert "### onnxruntime " in (out / "report.md").read_text()


def test_report_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = cli("report", str(tmp_path))
    assert r.returncode == 2 and "not a run directory (no results.json)" in r.stderr
    (tmp_path / "results.json").write_text('{"schema_version": 2, "kind": "run", "cells": [')
    r = cli("report", str(tmp_path))
    assert r.returncode == 2
    assert f"{tmp_path / 'results.json'} is corrupt or truncated" in r.stderr
    assert "line 1 column" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 2, "kind": "odd"}))
    r = cli("report", str(tmp_path))
    assert r.returncode == 2 and "unknown kind 'odd'" in r.stderr


def test_several_models_get_the_gpu_study_table(tmp_path: Path) -> None:
    path = tmp_path / "two"
    cells = [Cell("alpha", "default", 1, b, noisy(m * b * 1e6), model=name)
             for name, m in (("vgg16", 4.0), ("alexnet", 1.0)) for b in (8, 50)]
    cells += [Cell("alpha", "fp16", 1, b, noisy(b * 0.5e6), precision="fp16", model="alexnet")
              for b in (8, 50)]
    write_run(path, cells)
    write_report(path)
    md = (path / "report.md").read_text()
    table = md.split("## Items/s by model, batch and precision", 1)[1]
    assert "| model | batch | fp32 | fp16 |" in table
    # alexnet at batch 8: 8 items per 8 ms = ~1000 images/s in fp32, ~2000 in fp16
    row = next(ln for ln in table.splitlines() if ln.startswith("| alexnet | 8 |"))
    fp32, fp16 = (float(x.split()[0]) for x in row.split("|")[3:5])
    assert 900 < fp32 < 1100 and 1800 < fp16 < 2200
    assert "| vgg16 | 50 |" in table and table.count("| - |") == 2  # vgg16 has no fp16
    # and each model's plots carry its name
    assert {"vgg16-latency-b8.png", "alexnet-latency-b8.png"} <= _plot_names(path)


def test_an_outlier_puts_the_latency_bars_on_a_log_scale(tmp_path: Path) -> None:
    path = tmp_path / "outlier"
    write_run(path, [Cell("fast", "default", 1, 1, noisy(10e6)),
                     Cell("untuned", "default", 1, 1, noisy(3000e6))])
    write_report(path)
    assert "(log scale)" in (path / "plots" / "latency-b1.svg").read_text()
    write_run(tmp_path / "even", [Cell("a", "default", 1, 1, noisy(10e6)),
                                  Cell("b", "default", 1, 1, noisy(30e6))])
    write_report(tmp_path / "even")
    assert "(log scale)" not in (tmp_path / "even" / "plots" / "latency-b1.svg").read_text()


def test_a_run_whose_cells_all_failed_still_reports(tmp_path: Path) -> None:
    path = tmp_path / "failed"
    write_run(path, [Cell("alpha", "default", t, 1, [], status="failed") for t in (1, 2, None)])
    files = write_report(path)
    assert files.plots == ()  # nothing measured, nothing drawn
    md = (path / "report.md").read_text()
    assert "warning: 3 cell(s) failed" in md and md.count("FAILED: boom") == 3


def test_long_cells_keep_the_report_small(tmp_path: Path) -> None:
    path = tmp_path / "long"
    write_run(path, [Cell("a", "v", 1, 1, noisy(5e4, n=50_000)),
                     Cell("b", "v", 1, 1, noisy(6e4, n=50_000, seed=2))])
    write_report(path)
    assert (path / "plots" / "latency-cdf-b1.svg").stat().st_size < 300_000
    assert "(n=50000)" in (path / "plots" / "latency-cdf-b1.svg").read_text()


def test_each_model_section_shows_only_its_own_figures(tmp_path: Path) -> None:
    path = tmp_path / "prefix"  # one model's name is a prefix of the other's file stems
    write_run(path, [Cell("a", "v", 1, 1, noisy(5e6), model="vgg"),
                     Cell("a", "v", 1, 1, noisy(9e6), model="vgg-x")])
    write_report(path)
    md = (path / "report.md").read_text()
    vgg = md.split("## vgg (", 1)[1].split("## vgg-x (", 1)[0]
    assert "plots/vgg-latency-b1.png" in vgg and "plots/vgg-x-" not in vgg


def test_series_styles_stay_distinct_past_the_palette() -> None:
    from inferometer.report.plots import _style

    styles = [(s["color"], s["marker"]) for s in map(_style, range(20))]
    assert len(set(styles)) == 20  # make bench draws 13 runtime/variant series


def test_text_table_wraps_long_cells_under_their_column() -> None:
    from inferometer.report.table import render

    text = render(("name", "items", "n"), [["a", "one two three four\nfive", "12.5"],
                                           ["bb", "x", "3"]], wrap={1: 9})
    lines = text.splitlines()
    assert lines[0].split() == ["name", "items", "n"]
    col = lines[0].index("items")
    # the long cell continues on its own lines, under its column; numbers stay right-aligned
    assert [ln[col:col + 9].strip() for ln in lines[2:6]] == ["one two", "three", "four",
                                                              "five"]
    assert lines[2].startswith("a ") and lines[2].endswith("12.5")
    assert all(not ln[:col].strip() for ln in lines[3:6])
    assert lines[6].split() == ["bb", "x", "3"] and lines[6].endswith("   3")
    assert lines[1].split() == ["----", "-" * len("one two"), "----"]


def test_text_table_puts_a_multiline_cell_under_its_column_unwrapped() -> None:
    # `inferometer models` lists a multi-input model's inputs one per line
    from inferometer.report.table import render

    text = render(("model", "inputs", "about"), [["bert", "input_ids int64\nseq=128", "x"],
                                                 ["tiny", "3x32x32", "y"]])
    lines = text.splitlines()
    col = lines[0].index("inputs")
    assert [ln[col:].split()[0] for ln in lines[2:5]] == ["input_ids", "seq=128", "3x32x32"]
    assert lines[3][:col].strip() == "" and lines[4].startswith("tiny")
    assert len(lines[2]) == len(lines[4])  # the last column stays aligned


def test_linear_magnitude_axes_start_at_zero(tmp_path: Path) -> None:
    from inferometer.report.plots import plots_for
    from inferometer.results.store import RunDir, load_result

    path = full_run(tmp_path / "run")
    plots = {p.name: p.figure for p in plots_for(load_result(path), RunDir(path))}
    # throughput and latency within a decade: linear, from zero (a cropped axis would draw
    # the int8 variant's 2.5x as a far larger gap)
    for name in ("throughput-vs-batch", "latency-vs-threads-b1"):
        ax = plots[name].axes[0]
        assert ax.get_yscale() == "linear"
        bottom, top = ax.get_ylim()
        assert bottom == 0 and top > max(y for ln in ax.get_lines() for y in ln.get_ydata())


def test_the_fastest_line_says_how_far_ahead_of_the_next_runtime(tmp_path: Path) -> None:
    from inferometer.report.table import fastest_lines
    from inferometer.results.store import load_result

    write_run(tmp_path / "run", [
        Cell("alpha", "default", 1, 1, noisy(10e6, seed=1)),
        Cell("beta", "fast", 1, 1, noisy(8e6, seed=2)),
        Cell("beta", "slow", 1, 1, noisy(8.1e6, seed=3)),  # same runtime: not the runner-up
        Cell("alpha", "default", 1, 4, noisy(40.2e6, seed=4)),
        Cell("beta", "fast", 1, 4, noisy(40e6, seed=5)),
        Cell("gamma", "x", 1, 4, noisy(30e6, seed=6), status="failed")])  # failed: not ranked
    one, four = fastest_lines(load_result(tmp_path / "run").cells)
    assert one.startswith("fastest fp32 at batch 1: beta/fast threads=1: p50 8.")
    assert "; next runtime alpha/default threads=1 1.25x slower, 95% CI [" in one
    assert one.endswith("1 vs 1 processes, noise floor 2.0%")
    # half a percent apart: inside the noise floor, said as a tie rather than a winner
    assert four.startswith("fastest fp32 at batch 4: beta/fast threads=1")
    assert "; tied with alpha/default threads=1 (1.01x" in four
    assert four.endswith("cannot tell them apart)")


def test_the_fastest_line_is_tied_when_the_processes_disagree_more_than_the_lead(
        tmp_path: Path) -> None:
    """Each process of a cell lands somewhere else (its own layout, placement, neighbours):
    a 6% lead between cells whose processes spread 15% is no lead.  With one process a cell
    the same data looks decisive: the test fails if the process level is dropped."""
    from inferometer.report.table import fastest_lines
    from inferometer.results.store import load_result

    fast = processes(10e6, [0.92, 1.0, 1.07], seed=1)
    slow = processes(10.6e6, [0.93, 1.0, 1.08], seed=2)
    write_run(tmp_path / "run", [Cell("beta", "fast", 1, 1, fast),
                                 Cell("alpha", "default", 1, 1, slow)])
    (line,) = fastest_lines(load_result(tmp_path / "run").cells)
    assert "tied with alpha/default" in line and "3 vs 3 processes" in line, line
    floor = float(line.split("noise floor ")[1].split("%")[0])
    assert floor > 6  # identical processes lie further apart than the lead
    write_run(tmp_path / "one", [Cell("beta", "fast", 1, 1, fast[1]),
                                 Cell("alpha", "default", 1, 1, slow[1])])
    (line,) = fastest_lines(load_result(tmp_path / "one").cells)
    assert "next runtime alpha/default threads=1 1.06x slower" in line, line


def test_a_tiny_models_latency_keeps_three_significant_digits(tmp_path: Path) -> None:
    """A 12 us call printed with two decimals read "0.01" ms: a 20% change vanished."""
    from inferometer.report.table import cell_row
    from inferometer.results.store import RunDir

    write_run(tmp_path / "r", [Cell("a", "v", 1, 1, noisy(12_300, spread=0.001))])
    row = cell_row(RunDir(tmp_path / "r").load().cells[0])
    mean, p50 = row[4], row[5]
    assert "0.01" not in row and p50.startswith("0.012") and len(p50) == 6, row
    assert mean.startswith("0.01") and len(mean) == 6, row


def test_the_fastest_line_and_progress_keep_a_tiny_latency_too(tmp_path: Path) -> None:
    """The table kept three significant digits; the fastest line and the progress line said
    "p50 0.01 ms" for a 9 us call (and "p=0.00" for a clear lead)."""
    from inferometer.progress import _outcome
    from inferometer.report.table import fastest_lines
    from inferometer.results.store import RunDir
    from inferometer.runner import Event

    write_run(tmp_path / "r", [Cell("a", "v", 1, 1, processes(8_860, [1.0, 1.01, 0.99])),
                               Cell("b", "v", 1, 1, processes(55_100, [1.0, 1.01, 0.99]))])
    cells = RunDir(tmp_path / "r").load().cells
    (line,) = fastest_lines(cells)
    assert re.search(r"a/v threads=1: p50 0\.00\d{3} ms", line) and "p<0.01" in line, line
    done = Event("done", 1, 1, cells[0].spec, cells[0], 0, 3, cells[0].processes[0])
    assert re.match(r"p50 0\.00\d{3} ms .*; cell p50 0\.00\d{3} ms", _outcome(done)), \
        _outcome(done)


def test_the_run_length_says_the_pooled_target_and_the_warm_up_limit(tmp_path: Path) -> None:
    """The default per-process target is 1.7%: '+-2%' would misstate it, '+-1%' more so."""
    from inferometer.report.table import run_tables
    from inferometer.results.store import load_result

    path = full_run(tmp_path / "run")
    data = json.loads((path / "results.json").read_text())
    data["settings"].update(target_rel_ci=0.0173, warmup_max_s=1.0)
    data["cells"][0]["unstable"] = True
    (path / "results.json").write_text(json.dumps(data))
    write_report(path)
    md = (path / "report.md").read_text()
    assert "each process: 1 warm-up (at most 1 s), " in md
    assert "stop at +-1.7% CI of the median" in md
    # the footer's warning on an unstable cell names the target too
    assert "stayed wider than +-1.7%)" in run_tables(load_result(path))


def test_the_cheapest_line_calls_the_next_machine_only_beyond_noise(tmp_path: Path) -> None:
    """Cost is price times latency: machine types a few percent apart in cost, with processes
    that spread more than that, are tied, not ranked; one process a side is not tested."""
    from dataclasses import replace

    from inferometer.report.table import cheapest_lines
    from inferometer.results.store import load_result

    def line(name: str, prices: dict[str, float], a: list, b: list) -> str:
        write_run(tmp_path / name, [Cell("ort", "default", 1, 1, a),
                                    Cell("ov", "default", 1, 1, b)])
        run = load_result(tmp_path / name)
        cells = [replace(c, spec=replace(c.spec, machine=m))
                 for c, m in zip(run.cells, ("small", "big"), strict=True)]
        run = replace(run, cells=tuple(cells),
                      settings=replace(run.settings, cost_per_hour=prices))
        (out,) = cheapest_lines(run.cells, run)
        return out

    tight = [1.0, 1.01, 0.99]
    four = line("four", {"small": 0.1, "big": 0.4}, processes(10e6, tight, seed=1),
                processes(10e6, tight, seed=2))
    assert four.startswith("cheapest fp32 at batch 1: ort/default on small"), four
    assert "; next ov/default on big threads=1 at 4.0" in four and "3 vs 3 processes" in four
    assert "tied" not in four
    tied = line("tied", {"small": 0.1, "big": 0.1}, processes(10e6, [0.92, 1.0, 1.07], seed=1),
                processes(10.5e6, [0.93, 1.0, 1.08], seed=2))
    assert "; tied with ov/default on big threads=1 (1.0" in tied, tied
    assert tied.endswith("cannot tell them apart)")
    one = line("one", {"small": 0.1, "big": 0.1}, noisy(10e6, seed=1), noisy(10.5e6, seed=2))
    assert "(1 vs 1 processes: not tested)" in one, one


def test_best_thread_count_and_the_gpu_table_name_what_they_are_tied_with(
        tmp_path: Path) -> None:
    """A "best" that an identical rerun can swap (2 threads vs auto, which is 2 here) is
    said as a tie; what is clearly slower is not named."""
    path = tmp_path / "ties"
    tight = [1.0, 1.01, 0.99]
    cells = [Cell("alpha", "default", t, 1, processes(m * 1e6, tight, seed=k), model=name)
             for name in ("a", "b")
             for k, (t, m) in enumerate(((1, 10.0), (2, 10.02), (4, 15.0)))]
    cells += [Cell("beta", "default", 1, 1, processes(10.01e6, tight, seed=9), model="a"),
              Cell("beta", "default", 1, 1, processes(20e6, tight, seed=9), model="b")]
    write_run(path, cells)
    write_report(path)
    md = (path / "report.md").read_text()
    block = md.split("## a (", 1)[1].split("\n## ", 1)[0]
    row = next(ln for ln in block.splitlines() if ln.startswith("| alpha/default | fp32 | 1 |"))
    assert "| 1 (tied: 2) |" in row, row
    table = md.split("## Items/s by model, batch and precision", 1)[1]
    a = next(ln for ln in table.splitlines() if ln.startswith("| a | 1 |"))
    b = next(ln for ln in table.splitlines() if ln.startswith("| b | 1 |"))
    assert "alpha/default (tied: beta/default)" in a, a
    assert "tied" not in b and "alpha/default" in b, b
