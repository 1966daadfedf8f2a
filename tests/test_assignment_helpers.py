"""Shared helpers of the per-assignment tests: reference notebooks in sync, self-test with full marks."""

from __future__ import annotations

import importlib

from grader.result import CheckStatus, Status
from grader.selftest import REFERENCE_ROOT, load_mutants, run_mutants
from grader.settings import GraderSettings


def assert_notebook_in_sync(package: str, notebook: str) -> None:
    """The committed reference notebook is what reference/<package>/make_notebook.py builds from the module."""
    maker = importlib.import_module(f"reference.{package}.make_notebook")
    assert (REFERENCE_ROOT / package / notebook).read_text() == maker.text(), (
        f"run python -m reference.{package}.make_notebook")


def assert_selftest(assignment: str, settings: GraderSettings, *, at_least: int) -> None:
    reference, outcomes = run_mutants(assignment, settings=settings.with_(limit_overrides={}), log=lambda s: None)
    assert reference.status is Status.GRADED
    assert {c.id: c.message for c in reference.checks if c.status is not CheckStatus.PASSED} == {}
    assert reference.score == reference.max_score and reference.passed
    assert {o.mutant.name: o.detail for o in outcomes if not o.caught} == {}
    assert len(outcomes) == len(load_mutants(assignment)) >= at_least
