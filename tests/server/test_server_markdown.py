"""Assignment pages (markdown-it-py in safe mode) never let HTML or a script link through."""

from __future__ import annotations

import dataclasses
import re

import pytest

from grader.assignments import load_assignment
from server.markdown import render


def _flat(html: str) -> str:
    """The HTML with the renderer's line breaks between tags and inside text taken out."""
    return re.sub(r">\s+<", "><", " ".join(html.split()))


def test_markdown_subset_and_escaping():
    html = str(render("## What to submit\n\nOne zip with **these** files, `numpy_nn.py` and *more*:\n\n"
                      "| file | contents |\n|---|---|\n| `model.pt` | MyNet <b>state</b> |\n\n"
                      "- first\n- second <script>alert(1)</script>\n\n```\nx = 1 < 2\n```\n"))
    assert "<h3>What to submit</h3>" in html
    assert "<strong>these</strong>" in html and "<code>numpy_nn.py</code>" in html and "<em>more</em>" in html
    assert "<th>file</th>" in html and "<td><code>model.pt</code></td>" in html
    assert "<li>first</li>" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert "&lt;b&gt;state" in html and "<pre><code>x = 1 &lt; 2</code></pre>" in html


def test_assignment_page_renders_the_spec(as_user):
    page = as_user("alice").get("/assignments/rpz-cnn").text
    assert 'id="assignment-page"' in page and "<table>" in page and "<code>numpy_nn.py</code>" in page


def test_wrapped_list_items_continue():
    html = _flat(str(render("- **numpy**: first line\n  continues here\n- second\n")))
    assert html == "<ul><li><strong>numpy</strong>: first line continues here</li><li>second</li></ul>"


HOSTILE_PAGE = """# Task

<script>alert("page")</script>

<img src=x onerror=alert(1)> and <a href="javascript:alert(2)">raw</a>

[the handout](https://example.org/hw.pdf?a=1&b=2), [the leaderboard](../leaderboard/rpz-cnn) and
[evil](javascript:alert(3)), [evil too](JAVASCRIPT:alert(4)), [data](data:text/html;base64,PHNjcmlwdD4=),
[vb](vbscript:msgbox), [file](file:///etc/passwd), <javascript:alert(5)> and ![pixel](https://example.org/t.png)

| a | b |
|---|---|
| `x` | [cell](javascript:alert(6)) |
"""


def test_a_hostile_page_source_is_escaped_and_links_are_http_or_relative_only():
    spec = dataclasses.replace(load_assignment("rpz-cnn"), page=HOSTILE_PAGE)
    html = str(render(spec.student_page))
    assert "<script" not in html and "&lt;script&gt;alert(&quot;page&quot;)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "<a href=\"javascript" not in html
    assert "javascript:" not in re.sub(r"[\s\S]*?(<a [^>]*>)|[\s\S]+$", r"\1", html).lower()  # in no tag
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert hrefs == ["https://example.org/hw.pdf?a=1&amp;b=2", "../leaderboard/rpz-cnn", "https://example.org/t.png"]
    assert '!<a href="https://example.org/t.png"' in html  # images are off: an image is a link to it
    assert '<a href="../leaderboard/rpz-cnn" rel="nofollow noopener noreferrer">the leaderboard</a>' in html
    assert "[evil](javascript:alert(3))" in html and "[data](data:text/html;base64,PHNjcmlwdD4=)" in html
    assert "<h2>Task</h2>" in html  # one level down: the page's h1 is the assignment title
    flat = _flat(html)
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td><code>x</code></td>" in flat
    assert "[cell](javascript:alert(6))</td>" in flat
    assert "<th>what</th><th>the grader</th><th>the handout says</th>" in flat  # the conventions table


@pytest.mark.parametrize("text", ["__init__(self)", "32*4*4 = 512", "params['W' + name]", "a | b", "<b>x</b>",
                                  "&amp;", "\\d", "`x|y` *not* `code *kept*`"])
def test_conventions_cells_show_their_text_as_written(text):
    spec = load_assignment("rpz-cnn")
    c = dataclasses.replace(spec.conventions[0], rule=text)
    html = _flat(str(render(dataclasses.replace(spec, conventions=(c,)).student_page)))
    cell = re.search(r"<tbody><tr><td>[^<]*</td><td>(.*?)</td>", html).group(1)  # type: ignore[union-attr]
    expected = {"<b>x</b>": "&lt;b&gt;x&lt;/b&gt;", "&amp;": "&amp;amp;",
                "`x|y` *not* `code *kept*`": "<code>x|y</code> *not* <code>code *kept*</code>"}
    assert cell == expected.get(text, text.replace("&", "&amp;"))
