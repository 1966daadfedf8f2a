"""Issue 13, two lanes: a student's upload is graded in a quick phase (the quick checks, quick lane) and a slow phase
(hidden-set accuracy, slow lane, claimed only when no quick row waits), merged into one result (services.phases).
Real database and services; the broker is a recorder of wake-ups (the order is the claim's)."""

from __future__ import annotations

import io
import tomllib
from datetime import timedelta

import pytest

from grader.assignments import InvalidSpec, load_assignment
from grader.assignments.spec import parse_spec
from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import Submission, SubmissionStatus, utcnow
from server.services import claims, finishing, lanes, regrades
from server.services import submissions as svc

SPEC = load_assignment("rpz-cnn")


class Wakeups:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def __call__(self, sid: int, delay: float = 0.0, lane: str = "quick") -> None:
        self.sent.append((sid, lane))


def part(ids, *, metrics: dict[str, float], seconds: float = 0.5) -> dict:
    checks = [CheckResult(id=cid, target=SPEC.check(cid).target, status=CheckStatus.PASSED,
                          points=SPEC.check(cid).points, max_points=SPEC.check(cid).points, message="",
                          seconds=seconds) for cid in ids]
    return GradeResult.from_checks(assignment="rpz-cnn", checks=checks, metrics=metrics,
                                   timings={"unpack_s": 0.1, "sandbox_s": 1.0, "total_s": 2.0},
                                   notices=["a notice"]).to_dict()


QUICK = part(SPEC.quick_ids, metrics={"sandbox.starts": 1.0, "sandbox.peak_memory_mb": 300.0})
SLOW = part(reversed(SPEC.slow_ids), metrics={"sandbox.starts": 1.0, "sandbox.peak_memory_mb": 900.0,
                                              "mynet.accuracy": 0.9, "finetune.weighted": 0.8})


def upload(db, settings, wake, who: str, h) -> Submission:
    return svc.submit_upload(db, settings, wake, user=h.get_user(db, who), assignment=h.get_assignment(db),
                             stream=io.BytesIO(h.tiny_zip()), filename="a.zip")


def quick_phase(db, settings, wake, sid: int) -> None:
    c = claims.claim(db, settings, sid, hostname="w1")
    assert c.info()["phase"] == "quick" and c.info()["only"] == list(SPEC.quick_ids)
    assert finishing.finish(db, settings, sid, c.token, QUICK, phase="quick", dispatch=wake) == "queued"


def test_the_spec_says_which_checks_are_slow_from_their_kind_or_their_own_word():
    assert SPEC.slow_ids == ("pytorch_cnn.MyNet.accuracy", "pytorch_cnn.FinetuneNet.accuracy")  # hidden sets
    assert SPEC.two_phases and set(SPEC.quick_ids) | set(SPEC.slow_ids) == {c.id for c in SPEC.checks}
    for name in ("nd-hw04", "gt-hw5", "cmu-16720-hw5", "a4-digits"):
        spec = load_assignment(name)
        assert spec.slow_ids and all(spec.check(c).kind in ("predictions", "torch.accuracy") for c in spec.slow_ids)
    raw = tomllib.loads(SPEC.path.read_text())
    for c in raw["checks"]:
        if c["id"] == "pytorch_cnn.FinetuneNet.accuracy":
            c["slow"] = False
        if c["id"] == "numpy_nn.network":
            c["slow"] = True
    changed = parse_spec(raw, path=SPEC.path)
    assert changed.slow_ids == ("numpy_nn.network", "pytorch_cnn.MyNet.accuracy")
    raw["checks"][0]["slow"] = "yes"
    with pytest.raises(InvalidSpec, match="slow is true or false"):
        parse_spec(raw, path=SPEC.path)


def test_an_upload_is_graded_in_two_phases_and_merged_into_one_result(db, settings, h, as_user):
    wake = Wakeups()
    sid = upload(db, settings, wake, "alice", h).id
    quick_phase(db, settings, wake, sid)
    row = db.get(Submission, sid)
    assert (row.status, row.lane, row.attempts, row.score) == (SubmissionStatus.QUEUED, "slow", 1, None)  # counting on
    assert wake.sent[-1] == (sid, "slow")  # the slow phase's wake-up, in the slow queue

    j = as_user("alice").get(f"/submissions/{sid}.json").json
    assert j["status"] == "queued" and j["phase"] == "slow" and j["result"] is None and j["queue_position"] == 1
    assert [c["id"] for c in j["partial_checks"]] == list(SPEC.quick_ids)
    assert j["partial_score"] == pytest.approx(sum(SPEC.check(c).points for c in SPEC.quick_ids))
    assert "quick checks done, accuracy checks waiting" in as_user("alice").get(f"/submissions/{sid}").text

    c = claims.claim_next(db, settings, hostname="w1", lane="slow")
    assert c.submission.id == sid and c.info()["phase"] == "slow" and c.info()["only"] == list(SPEC.slow_ids)
    assert c.submission.checks_done == len(SPEC.quick_ids)  # "check 23 of 24", not "check 1"
    running = as_user("alice").get(f"/submissions/{sid}.json").json
    assert running["phase"] == "slow" and len(running["partial_checks"]) == len(SPEC.quick_ids)
    assert finishing.finish(db, settings, sid, c.token, SLOW, phase="slow") == "graded"

    db.expire_all()
    final = db.get(Submission, sid).result
    assert [c["id"] for c in final["checks"]] == [c.id for c in SPEC.checks]  # spec order, every check once
    assert final["score"] == final["max_score"] == SPEC.max_score and final["passed"] is True
    assert final["metrics"] == {"sandbox.starts": 2.0, "sandbox.peak_memory_mb": 900.0, "mynet.accuracy": 0.9,
                                "finetune.weighted": 0.8}
    assert final["timings"] == {"unpack_s": 0.2, "sandbox_s": 2.0, "total_s": 4.0} and final["notices"] == ["a notice"]
    j = as_user("alice").get(f"/submissions/{sid}.json").json
    assert j["status"] == "graded" and j["phase"] is None and j["partial_checks"] == [] and j["score"] == SPEC.max_score
    assert db.get(Submission, sid).lb_value == 0.8  # the leaderboard metric came with the slow phase


def test_a_waiting_slow_phase_never_delays_another_students_quick_phase(db, settings, h):
    wake = Wakeups()
    a = upload(db, settings, wake, "alice", h).id
    quick_phase(db, settings, wake, a)  # alice's accuracy checks wait in the slow lane
    b = upload(db, settings, wake, "bob", h).id
    assert lanes.positions(db) == {b: 1, a: 2}
    assert lanes.claim_order(db) == [b, a]

    wake.sent.clear()
    c = claims.claim_next(db, settings, hostname="w1", lane="slow", dispatch=wake)  # alice's wake-up takes bob's
    assert c.submission.id == b and c.info()["phase"] == "quick"
    assert wake.sent == [(b, "slow")]  # a replacement for the slow queue: bob's own wake-up stays in quick
    # A wake-up of the quick queue claims quick rows only: a pool serving `quick` never runs a slow phase.
    with pytest.raises(claims.Conflict):
        claims.claim_next(db, settings, hostname="w2", lane="quick", dispatch=wake)
    assert claims.claim_next(db, settings, hostname="w2", lane="slow", dispatch=wake).submission.id == a
    assert len(wake.sent) == 1  # a slow row taken by a slow wake-up: nothing to replace


def test_a_quick_phase_counts_as_a_verdict_for_fair_share(db, settings, h):
    wake = Wakeups()
    burst = [upload(db, settings, wake, "alice", h).id for _ in range(3)]
    quick_phase(db, settings, wake, burst[0])  # alice got her first verdicts a moment ago
    single = upload(db, settings, wake, "bob", h).id
    row = db.get(Submission, single)
    row.queued_at = db.get(Submission, burst[1]).queued_at + timedelta(milliseconds=1)  # bob came just after
    db.commit()
    # Without the quick verdict alice's second (queued earlier) would go first; she has waited only since then.
    assert lanes.claim_order(db)[:2] == [single, burst[1]]
    assert list(lanes.positions(db))[:2] == [single, burst[1]]


def test_a_failed_slow_phase_is_retried_as_a_slow_phase_keeping_the_quick_result(db, settings, h):
    wake = Wakeups()
    sid = upload(db, settings, wake, "alice", h).id
    quick_phase(db, settings, wake, sid)
    c = claims.claim_next(db, settings, hostname="w1")
    assert finishing.fail(db, settings, sid, c.token, reason="worker crashed") == "queued"
    row = db.get(Submission, sid)
    assert row.lane == "slow" and row.retry_at is not None and row.attempts == 2
    row.retry_at = utcnow() - timedelta(seconds=1)
    row.enqueued_at = utcnow()
    db.commit()
    again = claims.claim_next(db, settings, hostname="w2")
    assert again.info()["phase"] == "slow" and again.info()["only"] == list(SPEC.slow_ids) and again.submission.attempts == 3
    assert finishing.finish(db, settings, sid, again.token, SLOW, phase="slow") == "graded"
    db.expire_all()
    assert len(db.get(Submission, sid).result["checks"]) == len(SPEC.checks)


def test_rejected_quick_phase_is_final_and_regrades_are_whole_gradings(db, settings, h):
    wake = Wakeups()
    sid = upload(db, settings, wake, "alice", h).id
    c = claims.claim(db, settings, sid, hostname="w1")
    rejected = GradeResult.rejected(assignment="rpz-cnn", message="not a zip", max_score=SPEC.max_score).to_dict()
    assert finishing.finish(db, settings, sid, c.token, rejected, phase="quick", dispatch=wake) == "rejected"
    teacher = h.get_user(db, "teacher")
    # One submission, quick lane: one whole grading (the old report stays until the complete new one arrives).
    regrades.regrade(db, wake, assignment=h.get_assignment(db), requested_by=teacher, submission_ids=[sid], scope="one")
    c = claims.claim_next(db, settings, hostname="w1")
    assert c.submission.lane == "quick" and c.info()["phase"] == "all" and c.info()["only"] is None
    # A result without a phase (a worker of an earlier version grades everything) is a whole grading too.
    assert finishing.finish(db, settings, sid, c.token, QUICK) == "graded"

    other = upload(db, settings, wake, "bob", h).id
    quick_phase(db, settings, wake, other)
    regrades.regrade(db, wake, assignment=h.get_assignment(db), requested_by=teacher, submission_ids=[sid, other],
                     scope="all")
    db.expire_all()
    kept, waiting = db.get(Submission, sid), db.get(Submission, other)
    assert kept.result is not None  # a final report is kept until the new one arrives
    assert waiting.lane == "rerun" and waiting.result_json is None  # a quick phase's result is no report to keep
    c = claims.claim_next(db, settings, hostname="w1")
    assert c.info()["phase"] == "all"


def test_each_phase_gets_max_attempts_and_attempt_numbers_name_one_attempt(db, settings, h):
    """The quick phase's attempts count on into the slow phase (an instructor reads "attempt 2: ..." of one attempt);
    the slow phase still gets max_attempts of its own before the row gives up."""
    wake = Wakeups()
    sid = upload(db, settings, wake, "alice", h).id
    quick_phase(db, settings, wake, sid)  # attempt 1
    for n in range(settings.max_attempts):  # attempts 2..1+max: each fails in the slow phase
        row = db.get(Submission, sid)
        row.retry_at, row.enqueued_at = None, utcnow()
        db.commit()
        c = claims.claim_next(db, settings, hostname="w1")
        assert c.submission.attempts == 2 + n and c.info()["phase"] == "slow"
        finishing.fail(db, settings, sid, c.token, reason=f"crash {n}")
    row = db.get(Submission, sid)
    assert row.status is SubmissionStatus.QUEUED and row.lane == "slow"  # 1 + max attempts: not spent yet
    assert "attempt 1" not in row.error_reason and f"attempt {1 + settings.max_attempts}: crash" in row.error_reason
