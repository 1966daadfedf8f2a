"""a4-digits: the reference notebook, the spec."""

from __future__ import annotations

from grader.assignments import load_assignment
from tests.test_assignment_helpers import assert_notebook_in_sync


def test_reference_notebook_is_built_from_the_module() -> None:
    assert_notebook_in_sync("a4_digits", "assignment4.ipynb")


def test_spec() -> None:
    spec = load_assignment("a4-digits")
    assert spec.files == ("assignment4.ipynb", "classifier_mlp.pt", "classifier_cnn.pt")
    assert spec.max_score == 2
    assert "weights_only" in spec.page and "make_mlp()" in spec.page

