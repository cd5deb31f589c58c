"""`inferometer report RUN_DIR`: plots/ (PNG and SVG), report.md and report.html, written
atomically next to results.json."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ..results.store import RunDir, atomic_write, load_result
from .build import document
from .htmlpage import render_html
from .markdown import render_markdown
from .plots import plots_for


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    plots: tuple[Path, ...]


def save_figure(fig: object, path: Path, fmt: str) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    # No creation date and a fixed salt for the SVG element ids (random by default): rendering
    # a run twice gives byte-identical files.
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "inferometer"}):
        fig.savefig(buf, format=fmt, dpi=120, metadata=meta)  # type: ignore[attr-defined]
    data = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def write_report(path: Path) -> ReportFiles:
    run = load_result(path)
    plots = plots_for(run, RunDir(path))
    out = path / "plots"
    out.mkdir(exist_ok=True)
    svgs, files = {}, []
    for p in plots:
        save_figure(p.figure, out / f"{p.name}.png", "png")
        svgs[p.name] = save_figure(p.figure, out / f"{p.name}.svg", "svg")
        files += [out / f"{p.name}.png", out / f"{p.name}.svg"]
    doc = document(run, plots)
    atomic_write(path / "report.md", render_markdown(doc))
    atomic_write(path / "report.html", render_html(doc, svgs))
    return ReportFiles(path / "report.md", path / "report.html", tuple(files))
