"""a4-digits: the reference notebook, the spec and the assignment's self-test."""

from __future__ import annotations

import pytest

from grader.assignments import load_assignment
from tests.test_assignment_helpers import assert_notebook_in_sync, assert_selftest


def test_reference_notebook_is_built_from_the_module() -> None:
    assert_notebook_in_sync("a4_digits", "assignment4.ipynb")


def test_spec() -> None:
    spec = load_assignment("a4-digits")
    assert spec.files == ("assignment4.ipynb", "classifier_mlp.pt", "classifier_cnn.pt")
    assert spec.max_score == 2
    assert "weights_only" in spec.page and "make_mlp()" in spec.page


@pytest.mark.sandbox
@pytest.mark.slow
def test_selftest_full_marks_and_every_mutant_caught(fast_settings) -> None:
    assert_selftest("a4-digits", fast_settings, at_least=12)
