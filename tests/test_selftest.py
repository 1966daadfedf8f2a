"""The reference submission gets full marks; every declared mutant loses points on its target with a message
that names what is wrong (the assignment's self-test, mutation score 100 %)."""

from __future__ import annotations

import pytest

from grader.result import CheckStatus, Status
from grader.selftest import load_mutants, run_mutants

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.mark.parametrize("assignment", ["rpz-cnn"])
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
    assert len(outcomes) == len(load_mutants(assignment)) >= 20


def test_rpz_reference_metrics_meet_the_targets(fast_settings, tmp_path):
    """Reference checkpoints: MyNet >= 0.88 on FashionMNIST test, FinetuneNet >= 0.85 weighted."""
    from grader.api import grade_submission
    from grader.selftest import _zip, reference_files

    ids = ["pytorch_cnn.MyNet.accuracy", "pytorch_cnn.FinetuneNet.accuracy"]
    result = grade_submission(zip_path=_zip(tmp_path / "r.zip", reference_files("rpz-cnn")), assignment="rpz-cnn",
                              settings=fast_settings.with_(limit_overrides={}), only=ids)
    assert result.metrics["mynet.accuracy"] >= 0.88
    assert result.metrics["finetune.weighted"] >= 0.85
    w = 0.6 * result.metrics["finetune.orig"] + 0.3 * result.metrics["finetune.aug"] + 0.1 * result.metrics["finetune.new"]
    assert result.metrics["finetune.weighted"] == pytest.approx(w, abs=1e-3)
