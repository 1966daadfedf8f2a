"""The assignment page's Markdown subset never lets HTML through."""

from __future__ import annotations

from server.markdown import render


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
    html = str(render("- **numpy**: first line\n  continues here\n- second\n"))
    assert html == "<ul><li><strong>numpy</strong>: first line continues here</li><li>second</li></ul>"
