"""HTML building blocks of a report: one self-contained page, plain string templates.

Everything a page needs is inline: the CSS here and figures as ``data:`` URIs, so a report
opens offline and never fetches anything. Cell and text arguments are escaped by the
helpers that take plain text (:func:`esc`, :func:`text_table`); ``table`` takes cells that
are already HTML.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

CSS = """
:root { --fg: #1a1a1a; --muted: #5a5a5a; --line: #d0d0d0; --bg-alt: #f5f5f5; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); max-width: 1240px; margin: 0.6rem auto 2rem; padding: 0 1.2rem; }
h1 { font-size: 1.45rem; margin: 0 0 0.1rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.subtitle { color: var(--muted); margin: 0 0 0.4rem; font-size: 0.85rem; }
.first { display: grid; grid-template-columns: minmax(0, 1.35fr) minmax(0, 1fr); gap: 0 1.2rem;
         align-items: start; }
.first ul.verdict { font-size: 0.84rem; line-height: 1.38; margin: 0; padding: 0.45rem 0.8rem 0.45rem 1.6rem; }
.first ul.verdict li { margin: 0.12rem 0; }
.first ul.verdict.context > li:first-child { color: var(--muted); }
.first .more summary { font-size: 0.84rem; margin: 0.2rem 0 0; }
.first figure, .headline { margin: 0; }
.first figure img { border: none; }
.first figcaption, .headline figcaption { font-size: 0.78rem; margin-top: 0; }
.headline { grid-column: 1 / -1; margin-top: 0.3rem; }
.headline img { display: block; width: 100%; max-height: 385px; object-fit: contain; object-position: left; }
nav.sections { font-size: 0.85rem; margin: 0.6rem 0 0; color: var(--muted); }
nav.sections a { color: var(--accent); text-decoration: none; margin-right: 0.9rem; }
details.section > summary { list-style: none; }
details.section > summary::-webkit-details-marker { display: none; }
details.section > summary h2 { display: inline-block; width: 100%; color: var(--fg); }
details.section > summary h2::before { content: "▸ "; color: var(--accent); }
details.section[open] > summary h2::before { content: "▾ "; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; font-size: 0.7em; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; font-size: 0.7em; }
.description { white-space: pre-line; background: var(--bg-alt); padding: 0.8rem 1rem; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.55rem; text-align: right; vertical-align: top; }
th { background: var(--bg-alt); }
td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tbody tr:nth-child(even) { background: #fafafa; }
code { font: 0.85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
ul.verdict { background: #eef5fb; border-left: 4px solid var(--accent); padding: 0.7rem 1rem 0.7rem 2rem; }
ul.verdict li { margin: 0.25rem 0; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.88rem; margin-top: 0.3rem; }
.note { color: var(--muted); font-size: 0.88rem; }
details summary { cursor: pointer; color: var(--accent); margin: 0.5rem 0; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.8rem; border-top: 1px solid var(--line);
         padding-top: 0.5rem; }
""".strip()

SORT_JS = """
(function () {
  function key(cell) {
    var t = cell.textContent.trim().replace(/,/g, "");
    var m = t.match(/^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?/i);
    if (!m) return [1, t.toLowerCase()];
    var v = parseFloat(m[0]), u = t.slice(m[0].length).trim();
    if (/^ms\\b/.test(u)) v /= 1000; else if (/^µs\\b/.test(u)) v /= 1e6;
    return [0, v];
  }
  function sort(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x[0] !== y[0]) return x[0] - y[0];
      return x[1] < y[1] ? -dir : x[1] > y[1] ? dir : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = "Sort by this column";
      th.addEventListener("click", function () { sort(table, i, th); });
    });
  });
  function openTarget() {  // a link to a folded section opens it
    var el = location.hash && document.getElementById(location.hash.slice(1));
    var d = el && el.querySelector("details.section");
    if (d) d.open = true;
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
""".strip()
"""The page's only script, inline (no network): click a header of a ``sortable`` table to sort its
rows by that column (numbers by value, ``ms`` read as thousandths of a second, text
alphabetically; click again to reverse), and a link to a folded section opens it."""

_MIME = {"png": "image/png", "svg": "image/svg+xml"}


def esc(value: object) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def page(title: str, body: Iterable[str], *, footer: str) -> str:
    """A complete HTML document: the title, the body parts in order, a footer (all inline)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        *body,
        f"<footer>{footer}</footer>",
        f"<script>\n{SORT_JS}\n</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """An ``<h2>`` section holding the given HTML parts."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return "\n".join([f"<section{ident}>", f"<h2>{esc(title)}</h2>", *parts, "</section>"])


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int = 1,
          sortable: bool = True) -> str:
    """A table of HTML cells; the first ``text_columns`` columns are left-aligned text.

    ``sortable`` tables sort by a column when its header is clicked (:data:`SORT_JS`).
    """
    def cls(j: int) -> str:
        return ' class="text"' if j < text_columns else ""

    head = "".join(f"<th{cls(j)}>{h}</th>" for j, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(f"<td{cls(j)}>{c}</td>" for j, c in enumerate(row)) + "</tr>"
                     for row in rows)
    klass = ' class="sortable"' if sortable else ""
    return f"<table{klass}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def text_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, text_columns: int = 1,
               sortable: bool = True) -> str:
    """:func:`table` with every header and cell escaped as plain text."""
    return table([esc(h) for h in header], ([esc(c) for c in row] for row in rows), text_columns=text_columns,
                 sortable=sortable)


def bullets(items: Iterable[str], *, cls: str | None = None) -> str:
    """An unordered list of HTML items."""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<ul{klass}>\n" + "\n".join(f"<li>{i}</li>" for i in items) + "\n</ul>"


def figure(data: bytes, fmt: str, *, alt: str, caption: str, cls: str | None = None) -> str:
    """An embedded image (``data:`` URI, no external file) with a caption."""
    uri = f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"
    klass = f' class="{esc(cls)}"' if cls else ""
    return (f'<figure{klass}>\n<img alt="{esc(alt)}" src="{uri}">\n'
            f"<figcaption>{esc(caption)}</figcaption>\n</figure>")


def details(summary: str, body: str, *, cls: str | None = None) -> str:
    """A collapsed block (``<details>``) opened by clicking ``summary``."""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<details{klass}>\n<summary>{esc(summary)}</summary>\n{body}\n</details>"


def fold_section(title: str, *parts: str, anchor: str | None = None, open: bool = False) -> str:
    """A section whose ``<h2>`` title opens and closes it (``<details>``), so the page starts short."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    state = " open" if open else ""
    return "\n".join([f"<section{ident}>", f'<details class="section"{state}>',
                      f"<summary><h2>{esc(title)}</h2></summary>", *parts, "</details>", "</section>"])


def nav(links: Sequence[tuple[str, str]]) -> str:
    """A row of links to the page's sections: ``(anchor, text)`` pairs."""
    return '<nav class="sections">' + "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in links) + "</nav>"
