"""Shared helpers of the per-assignment tests: reference notebooks in sync (self-tests: tests/test_selftest.py)."""

from __future__ import annotations

import importlib

from grader.assignments.spec import ASSIGNMENTS_DIR


def assert_notebook_in_sync(package: str, notebook: str) -> None:
    """The committed reference notebook is what grader/assignments/<package>/make_notebook.py builds from the
    module (both in the folder's reference/)."""
    maker = importlib.import_module(f"grader.assignments.{package}.make_notebook")
    assert (ASSIGNMENTS_DIR / package / "reference" / notebook).read_text() == maker.text(), (
        f"run python -m grader.assignments.{package}.make_notebook")

