"""Progress on stderr: a redrawn bar on a terminal, one line per cell otherwise (CI logs)."""

from __future__ import annotations

import sys
from typing import TextIO

from .runner import Event
from .units import figure


def _label(e: Event) -> str:
    s = e.spec
    label = f"{s.model} {s.runtime}/{s.variant} threads={s.threads_label} batch={s.batch}"
    if s.dims:
        label += f" {s.dims_label}"
    return label + (f" process {e.rep + 1}/{e.repeat}" if e.repeat > 1 else "")


def _outcome(e: Event) -> str:
    c, p = e.cell, e.process
    if c is None:
        return ""
    if c.status != "ok" or c.summary is None:
        return f"FAILED: {c.error}"
    if p is None:
        return f"p50 {figure(c.summary.p50_ms)} ms"
    line = f"p50 {figure(p.summary.p50_ms)} ms ({p.summary.count} runs, {p.wall_s or 0:.1f} s)"
    if len(c.processes) > 1 and len(c.processes) == e.repeat:
        line += (f"; cell p50 {figure(c.summary.p50_ms)} ms over {len(c.processes)} processes, "
                 f"spread {c.spread:.1%}")
    return line


class Progress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, e: Event) -> None:
        if e.kind in ("reference", "convert"):
            what = "reference outputs" if e.kind == "reference" else "converting"
            s = e.spec
            label = _label(e) if e.kind == "reference" else f"{s.model} {s.runtime}/{s.variant}"
            self._line(f"{what} {e.index}/{e.total}: {label}", final=not self.tty)
            return
        prefix = f"[{e.index:>{len(str(e.total))}}/{e.total}]"
        if e.kind == "start":
            if self.tty:
                width = 20
                filled = width * (e.index - 1) // e.total
                bar = "#" * filled + "." * (width - filled)
                self._line(f"{prefix} [{bar}] {_label(e)} ...", final=False)
            return
        tag = ""
        if e.kind == "skip":
            failed = e.cell is not None and e.cell.status != "ok"
            tag = "(skipped: an earlier process of this cell failed) " if failed else \
                "(done earlier) "
        on = f" on node {e.node}" if e.node and e.node != "local" else ""
        self._line(f"{prefix} {_label(e)}{on}: {tag}{_outcome(e)}", final=True)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
