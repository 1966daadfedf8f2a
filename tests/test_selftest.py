"""The reference submission gets full marks; every declared mutant loses points on its target with a message
that names what is wrong (the assignment's self-test, mutation score 100 %)."""

from __future__ import annotations

import pytest

from grader.assignments import list_assignments
from grader.result import CheckStatus, Status
from grader.selftest import load_mutants, run_mutants, run_students

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

ASSIGNMENTS = list_assignments()
"""Every assignment folder found (grader/assignments/*/assignment.toml): none is listed by hand."""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_full_marks_and_every_mutant_caught(assignment, fast_settings):
    cfg = fast_settings.with_(limit_overrides={})  # the assignment's own limits, as in production
    reference, outcomes = run_mutants(assignment, settings=cfg, log=lambda s: None)
    assert reference.status is Status.GRADED
    failed = {c.id: c.message for c in reference.checks if c.status is not CheckStatus.PASSED}
    assert failed == {}
    assert reference.score == reference.max_score
    assert reference.passed
    missed = {o.mutant.name: o.detail for o in outcomes if not o.caught}
    assert missed == {}
    assert len(outcomes) == len(load_mutants(assignment)) > 0

    if assignment == "rpz-cnn":  # reference checkpoints: MyNet >= 0.88, FinetuneNet >= 0.85 weighted
        m = reference.metrics
        assert m["mynet.accuracy"] >= 0.88
        assert m["finetune.weighted"] >= 0.85
        weighted = 0.6 * m["finetune.orig"] + 0.3 * m["finetune.aug"] + 0.1 * m["finetune.new"]
        assert m["finetune.weighted"] == pytest.approx(weighted, abs=1e-3)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_style_references_get_full_marks(assignment, fast_settings):
    """Solutions written from the handout alone, in another style than the reference, get full marks."""
    cfg = fast_settings.with_(limit_overrides={})
    results = run_students(assignment, settings=cfg, log=lambda s: None)
    assert results, f"{assignment} has no student-style reference (grader/assignments/<name>/students/<style>/)"
    for style, result in results.items():
        failed = {c.id: c.message for c in result.checks if c.status is not CheckStatus.PASSED}
        assert (style, failed) == (style, {})
        assert result.score == result.max_score
