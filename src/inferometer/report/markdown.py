"""Document -> Markdown (GitHub flavour).  User strings are escaped so a model called
`a|b<script>` cannot break a table or smuggle HTML into a rendered README."""

from __future__ import annotations

from .document import Code, Document, Facts, Heading, Image, Items, Table, Text

_ESCAPES = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "`": "\\`", "*": "\\*",
                          "[": "\\[", "]": "\\]", "\n": " "})


def esc(text: str) -> str:
    return text.translate(_ESCAPES)


def _table(t: Table) -> list[str]:
    lines = ["| " + " | ".join(esc(h) for h in t.headers) + " |",
             "|" + "|".join("---" for _ in t.headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in t.rows if any(row)]
    return lines


def render_markdown(doc: Document, plots_dir: str = "plots") -> str:
    out = [f"# {esc(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * b.level} {esc(b.text)}", ""]
        elif isinstance(b, Text):
            out += [esc(b.text), ""]
        elif isinstance(b, Items):
            out += [f"- {esc(i)}" for i in b.items] + [""]
        elif isinstance(b, Code):
            fence = "```" if "```" not in b.text else "~~~~"
            out += [fence, b.text, fence, ""]
        elif isinstance(b, Facts):
            out += [f"- **{esc(k)}**: {esc(v)}" for k, v in b.pairs] + [""]
        elif isinstance(b, Table):
            out += [*_table(b), ""]
        elif isinstance(b, Image):
            out += [f"![{esc(b.title)}]({plots_dir}/{b.name}.png)", "",
                    f"*{esc(b.caption)}* ([SVG]({plots_dir}/{b.name}.svg))", ""]
    return "\n".join(out)
