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
       color: var(--fg); max-width: 1100px; margin: 2rem auto; padding: 0 1.2rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.subtitle { color: var(--muted); margin-top: 0; }
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
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """An ``<h2>`` section holding the given HTML parts."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return "\n".join([f"<section{ident}>", f"<h2>{esc(title)}</h2>", *parts, "</section>"])


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int = 1) -> str:
    """A table of HTML cells; the first ``text_columns`` columns are left-aligned text."""
    def cls(j: int) -> str:
        return ' class="text"' if j < text_columns else ""

    head = "".join(f"<th{cls(j)}>{h}</th>" for j, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(f"<td{cls(j)}>{c}</td>" for j, c in enumerate(row)) + "</tr>"
                     for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def text_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, text_columns: int = 1) -> str:
    """:func:`table` with every header and cell escaped as plain text."""
    return table([esc(h) for h in header], ([esc(c) for c in row] for row in rows), text_columns=text_columns)


def bullets(items: Iterable[str], *, cls: str | None = None) -> str:
    """An unordered list of HTML items."""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<ul{klass}>\n" + "\n".join(f"<li>{i}</li>" for i in items) + "\n</ul>"


def figure(data: bytes, fmt: str, *, alt: str, caption: str) -> str:
    """An embedded image (``data:`` URI, no external file) with a caption."""
    uri = f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<figure>\n<img alt="{esc(alt)}" src="{uri}">\n'
            f"<figcaption>{esc(caption)}</figcaption>\n</figure>")


def details(summary: str, body: str) -> str:
    """A collapsed block (``<details>``) opened by clicking ``summary``."""
    return f"<details>\n<summary>{esc(summary)}</summary>\n{body}\n</details>"
