"""A small, safe Markdown subset for assignment pages: everything is HTML-escaped first.

Headings, paragraphs, bullet and numbered lists, pipe tables, fenced code, `code`, **bold** and *italic*.
"""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
]


def _inline(text: str) -> str:
    out = escape(text, quote=False)
    parts = re.split(r"(<code>.*?</code>)", _INLINE[0][0].sub(_INLINE[0][1], out))
    return "".join(p if p.startswith("<code>") else _INLINE[2][0].sub(_INLINE[2][1], _INLINE[1][0].sub(_INLINE[1][1], p))
                   for p in parts)


def _cells(line: str) -> list[str]:
    """A table row's cells; ``\\|`` is a pipe inside a cell."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def render(md: str) -> Markup:
    lines = md.replace("\r\n", "\n").split("\n")
    html: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            html.append("<pre><code>" + escape("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(6, len(m.group(1)) + 1)  # the page's own h1 is the assignment title
            html.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|?[\s:|-]+\|?\s*$", lines[i + 1]):
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            rows, j = [], i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[j])) + "</tr>")
                j += 1
            html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
            i = j
        elif re.match(r"\s*([-*]|\d+\.)\s+", line):
            ordered = bool(re.match(r"\s*\d+\.", line))
            items: list[str] = []
            j = i
            while j < len(lines):
                if m2 := re.match(r"\s*(?:[-*]|\d+\.)\s+(.*)", lines[j]):
                    items.append(m2.group(1))
                elif items and lines[j].strip() and lines[j][:1] in (" ", "\t"):
                    items[-1] += " " + lines[j].strip()  # a wrapped item continues on an indented line
                else:
                    break
                j += 1
            items = [f"<li>{_inline(t)}</li>" for t in items]
            tag = "ol" if ordered else "ul"
            html.append(f"<{tag}>{''.join(items)}</{tag}>")
            i = j
        elif not line.strip():
            i += 1
        else:
            para, j = [], i
            while j < len(lines) and lines[j].strip() and not re.match(r"(#{1,6}\s|```|\s*\||\s*([-*]|\d+\.)\s)",
                                                                       lines[j]):
                para.append(lines[j].strip())
                j += 1
            html.append(f"<p>{_inline(' '.join(para))}</p>")
            i = j
    return Markup("\n".join(html))  # noqa: S704  (every piece of text above is escaped)
