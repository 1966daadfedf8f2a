"""Issue 13, content-addressed reuse on the web app's side (services.reuse): whose verdicts are offered, what is
kept, and the whole path through a real web app, Redis and Celery worker. Real database and services."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import CheckVerdict
from server.services import claims, finishing, regrades, reuse
from server.services import submissions as svc

KEY = "a" * 64
OTHER = "b" * 64


def noop(sid: int, delay: float = 0.0, lane: str = "quick") -> None:
    """No broker: the test claims the rows itself."""


def result(status: CheckStatus = CheckStatus.PASSED, reused_from: str | None = None) -> dict:
    checks = [CheckResult(id="numpy_nn.Linear.forward", target="Linear", status=status, points=1.0,
                          max_points=1.0, message="ok", seconds=None if reused_from else 0.5,
                          reused_from=reused_from),
              CheckResult(id="numpy_nn.ReLU.forward", target="ReLU", status=CheckStatus.ERROR, points=0.0,
                          max_points=1.0, message="raised", seconds=0.1)]
    return GradeResult.from_checks(assignment="rpz-cnn", checks=checks, metrics={"mynet.accuracy": 0.9},
                                   timings={"total_s": 1.0}, notices=[]).to_dict()


def graded(db, settings, h, user, *, kept, status=CheckStatus.PASSED, reused_from=None):
    sub = svc.submit_upload(db, settings, noop, user=user, assignment=h.get_assignment(db),
                            stream=io.BytesIO(h.tiny_zip()), filename="a.zip")
    c = claims.claim(db, settings, sub.id, hostname="w1")
    finishing.finish(db, settings, sub.id, c.token, result(status, reused_from), kept=kept)
    return sub


def waiting(db, settings, h, user):
    sub = svc.submit_upload(db, settings, noop, user=user, assignment=h.get_assignment(db),
                            stream=io.BytesIO(h.tiny_zip()), filename="a.zip")
    claims.claim(db, settings, sub.id, hostname="w1")
    return sub


def keep_entry(key: str = KEY, check: str = "numpy_nn.Linear.forward", **metrics: float) -> dict:
    return {"check": check, "key": key, "metrics": metrics or {"mynet.accuracy": 0.9}}


def test_a_students_later_upload_is_offered_their_own_earlier_verdict(db, settings, h):
    alice = h.get_user(db, "alice")
    one = graded(db, settings, h, alice, kept=[keep_entry()])
    two = waiting(db, settings, h, alice)
    offered = reuse.lookup(db, two, {"numpy_nn.Linear.forward": KEY, "numpy_nn.ReLU.forward": OTHER})
    assert set(offered) == {"numpy_nn.Linear.forward"}
    got = offered["numpy_nn.Linear.forward"]
    assert got["origin"] == f"upload #{one.upload_number}"
    assert got["metrics"] == {"mynet.accuracy": 0.9}
    assert CheckResult.model_validate(got["result"]).status is CheckStatus.PASSED
    assert reuse.lookup(db, two, {"numpy_nn.Linear.forward": OTHER}) == {}  # another key: nothing


def test_another_students_identical_files_are_offered_nothing(db, settings, h):
    graded(db, settings, h, h.get_user(db, "alice"), kept=[keep_entry()])
    bob = h.get_user(db, "bob")
    assert reuse.lookup(db, waiting(db, settings, h, bob), {"numpy_nn.Linear.forward": KEY}) == {}


def test_a_regrade_is_offered_nothing_and_told_so_in_its_claim(db, settings, h, app):
    alice = h.get_user(db, "alice")
    graded(db, settings, h, alice, kept=[keep_entry()])
    two = graded(db, settings, h, alice, kept=[keep_entry()])
    regrades.regrade(db, noop, assignment=h.get_assignment(db), requested_by=h.get_user(db, "teacher"),
                     submission_ids=[two.id], scope="one")
    c = claims.claim(db, settings, two.id, hostname="w1")
    assert not reuse.offers_reuse(c.submission)
    assert reuse.lookup(db, c.submission, {"numpy_nn.Linear.forward": KEY}) == {}


def test_only_passed_or_failed_checks_of_the_result_with_a_real_key_are_kept(db, settings, h):
    alice = h.get_user(db, "alice")
    sub = graded(db, settings, h, alice, kept=[
        keep_entry(), keep_entry(key="not-a-key", check="numpy_nn.Linear.forward"),
        keep_entry(check="numpy_nn.ReLU.forward"),  # an error verdict
        keep_entry(check="numpy_nn.Nope.forward"),  # not a check of the result
        {"check": "numpy_nn.Linear.forward", "key": OTHER, "metrics": {"x": float("nan")}},
        "garbage"])
    rows = db.query(CheckVerdict).filter_by(submission_id=sub.id).all()
    assert [(r.check_id, r.key) for r in rows] == [("numpy_nn.Linear.forward", KEY)]


def test_a_reused_verdict_kept_again_names_the_upload_that_judged_it(db, settings, h):
    alice = h.get_user(db, "alice")
    one = graded(db, settings, h, alice, kept=[keep_entry()])
    graded(db, settings, h, alice, kept=[keep_entry()], reused_from=f"upload #{one.upload_number}")
    three = waiting(db, settings, h, alice)
    got = reuse.lookup(db, three, {"numpy_nn.Linear.forward": KEY})["numpy_nn.Linear.forward"]
    assert got["origin"] == f"upload #{one.upload_number}"
    assert CheckResult.model_validate(got["result"]).reused_from is None


def test_grading_a_submission_again_replaces_its_kept_verdicts(db, settings, h):
    alice = h.get_user(db, "alice")
    sub = graded(db, settings, h, alice, kept=[keep_entry()])
    regrades.regrade(db, noop, assignment=h.get_assignment(db), requested_by=h.get_user(db, "teacher"),
                     submission_ids=[sub.id], scope="one")
    c = claims.claim(db, settings, sub.id, hostname="w1")
    finishing.finish(db, settings, sub.id, c.token, result(CheckStatus.FAILED), kept=[keep_entry(key=OTHER)])
    assert [r.key for r in db.query(CheckVerdict).filter_by(submission_id=sub.id)] == [OTHER]


@pytest.mark.integration
@pytest.mark.slow
def test_an_identical_reupload_is_reused_through_the_real_stack(tmp_path, h, procs):
    """Upload the student-style solution twice through `autograder submit`: the second is graded from the first's
    verdicts (every check marked "reused from upload #1"), in a fraction of the time, same score."""
    from tests.server.stack import start_stack

    loops = Path(__file__).resolve().parents[2] / "grader" / "assignments" / "rpz_cnn" / "students" / "loops"
    zip_path = tmp_path / "loops.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        for name in ("numpy_nn.py", "pytorch_cnn.py", "model.pt", "finetuned.pt"):
            z.write(loops / name, name)
    stack = start_stack(tmp_path, h, procs)
    stack.start_worker()
    first = stack.wait_status(stack.submit_no_wait(zip_path), {"graded", "error", "rejected"}, timeout=400)
    assert first["status"] == "graded", stack.logs()
    t0 = time.monotonic()
    second = stack.wait_status(stack.submit_no_wait(zip_path), {"graded", "error", "rejected"}, timeout=120)
    took = time.monotonic() - t0
    assert second["status"] == "graded", stack.logs()
    n = first["upload_number"]
    assert all(c.get("reused_from") == f"upload #{n}" for c in second["result"]["checks"]), second["result"]
    assert second["result"]["score"] == first["result"]["score"]
    assert second["result"]["metrics"]["finetune.weighted"] == first["result"]["metrics"]["finetune.weighted"]
    assert took < first["result"]["timings"]["total_s"], (took, first["result"]["timings"])


def test_the_slow_phase_keeps_its_verdicts_beside_the_quick_phases(db, settings, h):
    """Each phase's result names its own checks: keeping the slow phase's verdicts leaves the quick phase's."""
    from tests.server.test_phases import QUICK, SLOW, SPEC, Wakeups

    wake = Wakeups()
    alice = h.get_user(db, "alice")
    sub = svc.submit_upload(db, settings, wake, user=alice, assignment=h.get_assignment(db),
                            stream=io.BytesIO(h.tiny_zip()), filename="a.zip")
    quick_id, slow_id = QUICK["checks"][0]["id"], SLOW["checks"][0]["id"]
    c = claims.claim(db, settings, sub.id, hostname="w1")
    finishing.finish(db, settings, sub.id, c.token, QUICK, phase="quick", dispatch=wake,
                     kept=[keep_entry(check=quick_id)])
    c = claims.claim(db, settings, sub.id, hostname="w1")
    assert c.info()["only"] == list(SPEC.slow_ids)
    finishing.finish(db, settings, sub.id, c.token, SLOW, phase="slow", dispatch=wake,
                     kept=[keep_entry(key=OTHER, check=slow_id)])
    rows = {r.check_id: r.key for r in db.query(CheckVerdict).filter_by(submission_id=sub.id)}
    assert rows == {quick_id: KEY, slow_id: OTHER}
    later = waiting(db, settings, h, alice)
    assert set(reuse.lookup(db, later, {quick_id: KEY, slow_id: OTHER})) == {quick_id, slow_id}
