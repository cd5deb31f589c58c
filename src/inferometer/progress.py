"""Progress on stderr: a redrawn bar on a terminal, one line per cell otherwise (CI logs)."""

from __future__ import annotations

import sys
from typing import TextIO

from .runner import Event


def _label(e: Event) -> str:
    s = e.spec
    return f"{s.model} {s.runtime}/{s.variant} threads={s.threads_label} batch={s.batch}"


def _outcome(e: Event) -> str:
    c = e.cell
    if c is None:
        return ""
    if c.status != "ok" or c.summary is None:
        return f"FAILED: {c.error}"
    return f"p50 {c.summary.p50_ms:.2f} ms ({c.summary.count} runs, {c.wall_s or 0:.1f} s)"


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
        tag = "(done earlier) " if e.kind == "skip" else ""
        self._line(f"{prefix} {_label(e)}: {tag}{_outcome(e)}", final=True)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
