"""Report pages: a list of blocks (heading, paragraph, table, image) rendered as Markdown and as HTML, so the
two say the same thing. Every study builds its blocks from its rows and calls :func:`write_pages`."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from taxodiff import runs

Block = tuple[str, Any]  # ("h1" | "h2" | "h3" | "p", text), ("img", (path, alt)), ("table", (head, rows))


def to_markdown(bl: list[tuple[str, Any]]) -> str:
    out = []
    for kind, v in bl:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + v)
        elif kind == "p":
            out.append(v)
        elif kind == "img":
            out.append(f"![{v[1]}]({v[0]})")
        elif kind == "table":
            head, body = v
            out.append(
                "\n".join(
                    ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                    + ["| " + " | ".join(row) + " |" for row in body]
                )
            )
    return "\n\n".join(out) + "\n"


def to_html(bl: list[tuple[str, Any]], title: str) -> str:
    def inline(s: str) -> str:
        parts = html.escape(s).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}"
        "img{max-width:100%}</style></head><body>",
    ]
    for kind, v in bl:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{inline(v)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{inline(v)}</p>")
        elif kind == "img":
            out.append(f"<p><img src='{html.escape(v[0])}' alt='{html.escape(v[1])}'></p>")
        elif kind == "table":
            head, body = v
            out.append(
                "<table><tr>"
                + "".join(f"<th>{inline(h)}</th>" for h in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body)
                + "</table>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_pages(out: Path, bl: list[tuple[str, Any]], title: str) -> tuple[Path, Path]:
    """The same blocks as ``out/report.md`` and ``out/report.html``, each written atomically."""
    md, page = out / "report.md", out / "report.html"
    runs.atomic_write(md, to_markdown(bl))
    runs.atomic_write(page, to_html(bl, title))
    return md, page
