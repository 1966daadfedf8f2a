"""Every assignment's conventions (label order, orientation, scaling, shapes, eval mode, notebook contents) quote
the handout: each quote is found verbatim at its line of the seed, and the student page shows the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments import list_assignments, load_assignment
from grader.settings import settings

TOPICS = ("label order", "image orientation", "scaling", "input shape", "eval mode")


def _norm(text: str) -> str:
    return " ".join(text.split())


def seed_lines(name: str) -> list[str]:
    path = Path(settings().shared_data).parent / "seeds" / name
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("assignment", list_assignments())
def test_each_convention_quotes_its_seed_line(assignment):
    spec = load_assignment(assignment)
    assert spec.seed, f"{assignment}: [assignment] seed is not set"
    lines = seed_lines(spec.seed)
    assert spec.conventions, f"{assignment} has no conventions table"
    for c in spec.conventions:
        if not c.quote:
            assert c.line == 0 and c.rule, f"{assignment}: {c.topic} without a quote must say what the grader accepts"
            continue
        window = _norm(" ".join(lines[max(0, c.line - 3): c.line + 3]))
        assert _norm(c.quote) in window, f"{assignment}: {c.topic}: {c.quote!r} is not at line {c.line} of {spec.seed}"


@pytest.mark.parametrize("assignment", list_assignments())
def test_conventions_cover_the_usual_slips(assignment):
    spec = load_assignment(assignment)
    topics = {c.topic for c in spec.conventions}
    wanted = set(TOPICS) | ({"notebook contents"} if any(f.endswith(".ipynb") for f in spec.files) else set())
    assert wanted <= topics, f"{assignment} lacks conventions for {sorted(wanted - topics)}"


@pytest.mark.parametrize("assignment", list_assignments())
def test_student_page_shows_the_conventions_table(assignment):
    spec = load_assignment(assignment)
    page = spec.student_page
    assert "## Conventions (taken from the handout)" in page
    for c in spec.conventions:
        assert _norm(c.topic) in page
