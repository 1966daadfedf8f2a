"""Shared helpers of the per-assignment tests: reference notebooks in sync (self-tests: tests/test_selftest.py)."""

from __future__ import annotations

import importlib

from grader.selftest import REFERENCE_ROOT


def assert_notebook_in_sync(package: str, notebook: str) -> None:
    """The committed reference notebook is what reference/<package>/make_notebook.py builds from the module."""
    maker = importlib.import_module(f"reference.{package}.make_notebook")
    assert (REFERENCE_ROOT / package / notebook).read_text() == maker.text(), (
        f"run python -m reference.{package}.make_notebook")

