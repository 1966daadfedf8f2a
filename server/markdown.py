"""Assignment pages: CommonMark plus pipe tables, rendered by markdown-it-py in safe mode.

Raw HTML is escaped (``html=False``), images are off, and a link is kept only when its target is http(s) or
relative; any other scheme (``javascript:``, ``data:``, ...) leaves the link text as plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from html import escape
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

_SCHEMES = frozenset({"", "http", "https"})


def _safe_link(url: str) -> bool:
    """http(s) or relative (no scheme) only; control characters and whitespace cannot smuggle a scheme."""
    cleaned = "".join(ch for ch in url if ch > " " and ch != "\x7f")
    try:
        return urlsplit(cleaned).scheme.lower() in _SCHEMES
    except ValueError:
        return False


def _heading(_self: Any, tokens: Sequence[Token], idx: int, _options: Any, _env: Any) -> str:
    """Headings one level down: the page's own h1 is the assignment title."""
    tok = tokens[idx]
    level = min(6, int(tok.tag[1]) + 1)
    return f"<h{level}>" if tok.nesting == 1 else f"</h{level}>\n"


def _fence(_self: Any, tokens: Sequence[Token], idx: int, _options: Any, _env: Any) -> str:
    return "<pre><code>" + escape(tokens[idx].content.rstrip("\n"), quote=False) + "</code></pre>\n"


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return str(self.renderToken(tokens, idx, options, env))


@cache
def md() -> MarkdownIt:
    """The one renderer, built on first use."""
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable("table").disable("image")
    parser.validateLink = _safe_link  # type: ignore[method-assign]
    for rule in ("heading_open", "heading_close"):
        parser.add_render_rule(rule, _heading)
    parser.add_render_rule("fence", _fence)
    parser.add_render_rule("code_block", _fence)
    parser.add_render_rule("link_open", _link_open)
    return parser


def render(source: str) -> Markup:
    """HTML for a page's Markdown; every piece of text in it is escaped."""
    return Markup(md().render(source))  # noqa: S704  (html=False: markdown-it escapes all source text)
