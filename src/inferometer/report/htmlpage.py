"""Document -> one self-contained HTML file: styles, script and every figure inline (SVG as
data: URIs, which a browser shows as images and never executes), no network access needed.
Every string from a run passes through html.escape; tables sort on a header click without a
server (numbers numerically, '-' last)."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping

from .document import Code, Document, Facts, Heading, Image, Items, Table, Text

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#1a1a1a}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 7px;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:12px}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.scroll{overflow-x:auto}
"""

# Click a header: sort that column; again: reverse.  Cells parse as numbers when they start
# with one ("37.86", "1.2e-05", "3.03x"); others compare as text; "-" and empty sort last.
_JS = """
document.querySelectorAll("table.sortable").forEach(function(table){
  table.querySelectorAll("th").forEach(function(th, col){
    th.addEventListener("click", function(){
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort");});
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(r){
        var t = r.cells[col].textContent.trim(), n = parseFloat(t);
        if (t === "" || t === "-") return [2, 0, ""];
        return isNaN(n) ? [1, 0, t.toLowerCase()] : [0, n, ""];
      }
      rows.sort(function(a, b){
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];
        var c = x[0] === 0 ? x[1] - y[1] : (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0);
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""


def _is_num(text: str) -> bool:
    try:
        float(text.rstrip("x%"))
        return True
    except ValueError:
        return False


def _table(t: Table) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in t.headers)
    rows = []
    for row in t.rows:
        if not any(row):
            continue
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if _is_num(c)
                        else f"<td>{html.escape(c)}</td>" for c in row)
        rows.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return (f'<div class="scroll"><table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _image(b: Image, svgs: Mapping[str, bytes]) -> str:
    data = base64.b64encode(svgs[b.name]).decode("ascii")
    return (f'<figure id="fig-{html.escape(b.name)}"><img alt="{html.escape(b.title)}" '
            f'src="data:image/svg+xml;base64,{data}"><figcaption><b>{html.escape(b.title)}'
            f"</b>: {html.escape(b.caption)}</figcaption></figure>")


def render_html(doc: Document, svgs: Mapping[str, bytes]) -> str:
    """`svgs`: plot name -> its SVG bytes (the Image blocks' pictures)."""
    parts = [f"<h1>{html.escape(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Items):
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items)
                         + "</ul>")
        elif isinstance(b, Code):
            parts.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Facts):
            parts.append('<dl class="facts">' + "".join(
                f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in b.pairs)
                + "</dl>")
        elif isinstance(b, Table):
            parts.append(_table(b))
        elif isinstance(b, Image):
            parts.append(_image(b, svgs))
    # The page allows exactly its own script and data: images: even a string that escaped
    # escaping could not run or load anything.
    digest = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'

            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + f"\n<script>{_JS}</script>\n</body></html>\n")
