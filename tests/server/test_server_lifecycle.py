"""Grading life cycle through the HMAC-authenticated internal endpoints: claim, zip, progress, result, retries."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import Submission, utcnow
from server.security import TIMESTAMP_HEADER, sign, signed_headers
from server.services import submissions as svc


class Worker:
    """Talks to the internal endpoints exactly as server.worker_client does, through the test client."""

    def __init__(self, client, secret: str, hostname: str = "w1@test") -> None:
        self.c, self.secret, self.hostname = client, secret, hostname

    def call(self, method: str, path: str, payload: dict | None = None):
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = signed_headers(self.secret, method, path, body)
        if method == "GET":
            return self.c.get(path, headers=headers)
        return self.c.post(path, data=body, headers=headers, content_type="application/json")

    def claim(self, sid: int):
        return self.call("POST", f"/internal/submissions/{sid}/claim", {"hostname": self.hostname})

    def progress(self, sid: int, claim: str, check: str | None):
        return self.call("POST", f"/internal/submissions/{sid}/progress", {"claim": claim, "check": check,
                                                                           "hostname": self.hostname})

    def result(self, sid: int, claim: str, result: dict):
        return self.call("POST", f"/internal/submissions/{sid}/result", {"claim": claim, "result": result})

    def fail(self, sid: int, claim: str, reason: str):
        return self.call("POST", f"/internal/submissions/{sid}/fail", {"claim": claim, "reason": reason})


def graded(weighted: float = 0.8, passed: bool = True) -> dict:
    checks = [CheckResult(id="numpy_nn.Linear.forward", target="Linear",
                          status=CheckStatus.PASSED if passed else CheckStatus.FAILED, points=1.0 if passed else 0.0,
                          max_points=1.0, message="" if passed else "wrong values")]
    metrics = {"finetune.weighted": weighted, "finetune.orig": weighted + 0.05, "finetune.aug": weighted - 0.05,
               "finetune.new": weighted - 0.1, "mynet.accuracy": 0.88}
    return GradeResult.from_checks(assignment="rpz-cnn", checks=checks, metrics=metrics, timings={"total_s": 1.0},
                                   notices=[]).to_dict()


@pytest.fixture
def worker(app, settings) -> Worker:
    return Worker(app.test_client(), settings.internal_secret)


@pytest.fixture
def sub_id(as_user, h) -> int:
    r = h.upload(as_user("alice"), h.tiny_zip())
    return int(r.headers["Location"].rsplit("/", 1)[1])


def row(db, sid: int) -> Submission:
    db.expire_all()
    return db.get(Submission, sid)


def backoff_over(db, sid: int) -> None:
    """The retry's backoff has passed (instead of waiting for it)."""
    s = row(db, sid)
    s.retry_at = utcnow() - timedelta(seconds=1)
    db.commit()


def test_full_cycle(worker, db, sub_id, as_user, h):
    r = worker.claim(sub_id)
    assert r.status_code == 200
    info = r.json
    assert info["assignment"] == "rpz-cnn" and info["attempt"] == 1
    assert worker.claim(sub_id).status_code == 409  # held by a live worker: a duplicate message does nothing
    z = worker.call("GET", f"/internal/submissions/{sub_id}/zip?claim={info['claim']}")
    assert z.status_code == 200 and z.data == h.tiny_zip()
    assert worker.call("GET", f"/internal/submissions/{sub_id}/zip?claim=wrong").status_code == 409
    assert worker.progress(sub_id, info["claim"], "numpy_nn.Linear.forward").status_code == 200
    s = row(db, sub_id)
    assert s.status == "running" and s.current_check == "numpy_nn.Linear.forward" and s.checks_done == 1
    alice = as_user("alice")
    state = alice.get(f"/submissions/{sub_id}.json").json
    assert state["status"] == "running" and state["current_check"] == "numpy_nn.Linear.forward"
    assert worker.result(sub_id, "stale-claim", graded()).status_code == 409
    r = worker.result(sub_id, info["claim"], graded(0.8))
    assert r.status_code == 200 and r.json["status"] == "graded"
    s = row(db, sub_id)
    assert s.status == "graded" and s.score == 1.0 and s.passed and s.lb_value == pytest.approx(0.8)
    state = alice.get(f"/submissions/{sub_id}.json").json
    assert state["result"]["checks"][0]["id"] == "numpy_nn.Linear.forward"
    assert worker.claim(sub_id).status_code == 409  # finished: a redelivered message does nothing
    assert worker.progress(sub_id, info["claim"], None).status_code == 409


def test_rejected_result_shows_reason(worker, db, sub_id, as_user):
    claim = worker.claim(sub_id).json["claim"]
    rejected = GradeResult.rejected(assignment="rpz-cnn", message="The upload is not a zip file.",
                                    max_score=10).to_dict()
    assert worker.result(sub_id, claim, rejected).json["status"] == "rejected"
    state = as_user("alice").get(f"/submissions/{sub_id}.json").json
    assert state["status"] == "rejected" and state["message"] == "The upload is not a zip file."
    assert row(db, sub_id).lb_value is None


def test_engine_error_retried_then_error_with_reason_for_instructors(worker, db, sub_id, settings, as_user):
    for attempt in range(1, settings.max_attempts + 1):
        r = worker.claim(sub_id)
        assert r.status_code == 200 and r.json["attempt"] == attempt
        err = GradeResult.error(assignment="rpz-cnn", message=f"sandbox broke #{attempt}").to_dict()
        status = worker.result(sub_id, r.json["claim"], err).json["status"]
        assert status == ("queued" if attempt < settings.max_attempts else "error")
        if status == "queued":
            assert worker.claim(sub_id).status_code == 409  # not before its backoff is over
            backoff_over(db, sub_id)
    s = row(db, sub_id)
    assert s.status == "error" and s.attempts == settings.max_attempts
    assert "sandbox broke #1" in s.error_reason and "sandbox broke #3" in s.error_reason
    student = as_user("alice").get(f"/submissions/{sub_id}.json").json
    assert student["status"] == "error" and "not your fault" in student["message"] and "error_reason" not in student
    teacher = as_user("teacher").get(f"/submissions/{sub_id}")
    assert "sandbox broke #3" in teacher.text
    assert worker.claim(sub_id).status_code == 409


def test_deterministic_engine_error_ends_at_once(worker, db, sub_id, as_user, settings):
    """An error grading again would repeat (a spec that does not validate) is not retried."""
    claim = worker.claim(sub_id).json["claim"]
    err = GradeResult.error(assignment="rpz-cnn", deterministic=True,
                            message="The spec of assignment 'rpz-cnn' is invalid: params.treshold: unknown key")
    assert worker.result(sub_id, claim, err.to_dict()).json["status"] == "error"
    s = row(db, sub_id)
    assert s.status == "error" and s.attempts == 1
    assert "attempt 1: grader error (not retried)" in s.error_reason and "params.treshold" in s.error_reason
    sent: list[int] = []  # the retry layer leaves it alone, however long it waits
    for hours in (0, 1, 2, 24):
        assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid), now=utcnow() + timedelta(hours=hours)) \
            == {"requeued": 0, "resent": 0, "errored": 0}
    assert sent == [] and row(db, sub_id).attempts == 1
    student = as_user("alice").get(f"/submissions/{sub_id}.json").json
    assert student["status"] == "error" and "not your fault" in student["message"] and "error_reason" not in student
    assert worker.claim(sub_id).status_code == 409


def test_task_failure_counts_as_attempt(worker, db, sub_id):
    claim = worker.claim(sub_id).json["claim"]
    assert worker.fail(sub_id, claim, "engine raised: Boom").json["status"] == "queued"
    assert "Boom" in row(db, sub_id).error_reason


def test_malformed_result_is_a_failed_attempt(worker, db, sub_id):
    claim = worker.claim(sub_id).json["claim"]
    assert worker.result(sub_id, claim, {"schema": 99}).json["status"] == "queued"
    assert "malformed result" in row(db, sub_id).error_reason


def test_bad_or_old_signature_refused(app, settings, sub_id):
    c = app.test_client()
    path = f"/internal/submissions/{sub_id}/claim"
    body = b'{"hostname": "x"}'
    old = str(int(time.time()) - 3600)
    headers = {TIMESTAMP_HEADER: old, "X-Autograder-Signature": sign(settings.internal_secret, "POST", path, body, old)}
    assert c.post(path, data=body, headers=headers, content_type="application/json").status_code == 401
    wrong = signed_headers("not-the-secret", "POST", path, body)
    assert c.post(path, data=body, headers=wrong, content_type="application/json").status_code == 401
    # a valid signature for another path does not work here
    other = signed_headers(settings.internal_secret, "POST", "/internal/workers/heartbeat", body)
    assert c.post(path, data=body, headers=other, content_type="application/json").status_code == 401


def test_sweeper_requeues_a_silent_worker_then_gives_up(worker, db, sub_id, settings):
    sent: list[int] = []
    for attempt in range(1, settings.max_attempts + 1):
        assert worker.claim(sub_id).status_code == 200
        s = row(db, sub_id)
        s.lease_expires_at = utcnow() - timedelta(seconds=1)  # the worker went silent (kill -9)
        db.commit()
        counts = svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))
        if attempt < settings.max_attempts:
            assert counts == {"requeued": 1, "resent": 0, "errored": 0} and row(db, sub_id).status == "queued"
            assert worker.claim(sub_id).status_code == 409  # the backoff
            later = row(db, sub_id).retry_at + timedelta(seconds=1)
            assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid), now=later)["resent"] == 1
            backoff_over(db, sub_id)
        else:
            assert counts["errored"] == 1
    s = row(db, sub_id)
    assert s.status == "error" and "went silent" in s.error_reason
    assert sent == [sub_id] * (settings.max_attempts - 1)


def test_heartbeat_keeps_the_lease(worker, db, sub_id, settings):
    claim = worker.claim(sub_id).json["claim"]
    before = row(db, sub_id).lease_expires_at
    time.sleep(0.05)
    assert worker.progress(sub_id, claim, None).status_code == 200
    assert row(db, sub_id).lease_expires_at > before
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": None) == {"requeued": 0, "resent": 0, "errored": 0}


def test_regrade_makes_a_running_claim_stale(worker, db, sub_id, as_user, h):
    claim = worker.claim(sub_id).json["claim"]
    t = as_user("teacher")
    token = h.csrf_of(t.get("/instructor/").text)
    assert t.post(f"/instructor/submissions/{sub_id}/regrade", data={"csrf_token": token}).status_code == 302
    assert worker.result(sub_id, claim, graded()).status_code == 409
    s = row(db, sub_id)
    assert s.status == "queued" and s.attempts == 0 and s.regrade_id is not None
    claim2 = worker.claim(sub_id).json["claim"]
    assert worker.result(sub_id, claim2, graded(0.7)).json["status"] == "graded"
    p = t.get(f"/instructor/regrades/{s.regrade_id}.json").json
    assert p["total"] == 1 and p["done"] == 1


def test_regrade_all_and_student(worker, db, as_user, h):
    for who in ("alice", "alice", "bob"):
        h.upload(as_user(who), h.tiny_zip())
    ids = list(db.scalars(select(Submission.id)))
    for sid in ids:
        c = worker.claim(sid).json["claim"]
        worker.result(sid, c, graded())
    t = as_user("teacher")
    token = h.csrf_of(t.get("/instructor/").text)
    assert t.post("/instructor/assignments/rpz-cnn/regrade", data={"csrf_token": token, "student": "alice"}).status_code == 302
    db.expire_all()
    assert sorted(s.status for s in db.scalars(select(Submission))) == ["graded", "queued", "queued"]
    t.post("/instructor/assignments/rpz-cnn/regrade", data={"csrf_token": token, "student": ""})
    db.expire_all()
    assert {s.status for s in db.scalars(select(Submission))} == {"queued"}
    page = t.get("/instructor/")
    assert "rpz-cnn: all submissions" in page.text and "0 of 3 done" in page.text


def test_queue_overview(worker, db, sub_id, as_user, h):
    h.upload(as_user("bob"), h.tiny_zip())
    worker.claim(sub_id)
    q = as_user("teacher").get("/instructor/queue.json").json
    assert q["queued"] == 1 and q["running"] == 1 and q["workers_alive"] == 1 and q["oldest_waiting_s"] >= 0
    assert as_user("bob").get(f"/submissions/{sub_id + 1}.json").json["queue_position"] == 1


def test_a_running_submission_is_claimed_by_no_one_until_the_sweeper_requeues_it(worker, db, sub_id, settings):
    """A redelivered or duplicate message, even to the worker that holds the claim, starts no second attempt:
    only the sweeper (lease expired) grades it again."""
    first = worker.call("POST", f"/internal/submissions/{sub_id}/claim", {"hostname": "w1@x"})
    assert first.status_code == 200
    for who in ("w1@x", "w2@x"):
        assert worker.call("POST", f"/internal/submissions/{sub_id}/claim", {"hostname": who}).status_code == 409
    s = row(db, sub_id)
    s.lease_expires_at = utcnow() - timedelta(seconds=1)  # its process died: no heartbeat any more
    db.commit()
    assert worker.call("POST", f"/internal/submissions/{sub_id}/claim", {"hostname": "w2@x"}).status_code == 409
    sent: list[int] = []
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))["requeued"] == 1
    later = row(db, sub_id).retry_at + timedelta(seconds=1)
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid), now=later)["resent"] == 1 and sent == [sub_id]
    backoff_over(db, sub_id)
    again = worker.call("POST", f"/internal/submissions/{sub_id}/claim", {"hostname": "w2@x"})
    assert again.status_code == 200 and again.json["attempt"] == 2
    assert worker.result(sub_id, first.json["claim"], graded()).status_code == 409  # the dead attempt's claim
    assert worker.result(sub_id, again.json["claim"], graded()).json["status"] == "graded"
    s = row(db, sub_id)
    assert s.error_reason == "attempt 1: worker w1@x went silent (lease expired)" and s.attempts == 2


def test_a_failed_attempt_is_sent_again_by_the_sweeper_only_after_its_backoff(worker, db, sub_id, settings):
    from server.services.retries import backoff

    claim = worker.claim(sub_id).json["claim"]
    assert worker.fail(sub_id, claim, "engine raised: Boom").json["status"] == "queued"
    s = row(db, sub_id)
    assert s.enqueued_at is None, "the failure request itself sent it again"
    assert s.retry_at is not None and s.retry_at - utcnow() <= backoff(1)
    sent: list[int] = []
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))["resent"] == 0 and sent == []
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid), now=s.retry_at)["resent"] == 1
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid), now=s.retry_at)["resent"] == 0  # once
    assert sent == [sub_id]
    assert [backoff(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_big_regrade_is_sent_by_the_sweeper_once(db, h, settings):
    from server.models import Submission as S

    alice, teacher, a = h.get_user(db, "alice"), h.get_user(db, "teacher"), h.get_assignment(db)
    for n in range(1, 71):
        db.add(S(user_id=alice.id, assignment_id=a.id, upload_number=n, stored_name=f"00/{n}.zip", status="graded"))
    db.commit()
    sent: list[int] = []
    rg = svc.regrade(db, lambda sid, d, lane="quick": sent.append(sid), assignment=a, requested_by=teacher,
                     submission_ids=svc.regrade_ids(db, a), scope="all")
    assert rg.total == 70 and len(sent) == svc.INLINE_SENDS
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))["resent"] == 70 - svc.INLINE_SENDS
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))["resent"] == 0  # never twice
    assert sorted(sent) == sorted(svc.regrade_ids(db, a))
