"""Lanes and fair share (services.lanes, claims.claim_next): a wake-up claims the best waiting row, the database
decides the order. Real database and services; the broker is replaced by a recorder of wake-ups only where no
worker takes them (the order is the claim's, not the broker's)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import Submission, WorkerSeen, utcnow
from server.services import accounts, claims, finishing, lanes, regrades
from server.services import submissions as svc


class Wakeups:
    """The broker's side of the accounting: one wake-up per send, in its lane's queue."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def __call__(self, sid: int, delay: float = 0.0, lane: str = "quick") -> None:
        self.sent.append((sid, lane))


def result() -> dict:
    checks = [CheckResult(id="numpy_nn.Linear.forward", target="Linear", status=CheckStatus.PASSED, points=1.0,
                          max_points=1.0, message="")]
    return GradeResult.from_checks(assignment="rpz-cnn", checks=checks, metrics={"finetune.weighted": 0.8},
                                   timings={"total_s": 1.0}, notices=[]).to_dict()


def students(db, n: int, prefix: str = "s") -> list:
    out = [accounts.add_user(db, f"{prefix}{i:02d}", name=f"S {i}", password="pw-pw-pw-1")[0] for i in range(n)]
    db.commit()
    return out


def upload(db, settings, wake, user, h) -> Submission:
    return svc.submit_upload(db, settings, wake, user=user, assignment=h.get_assignment(db),
                             stream=io.BytesIO(h.tiny_zip()), filename="a.zip")


def grade_next(db, settings, hostname: str = "w1") -> Submission:
    c = claims.claim_next(db, settings, hostname=hostname)
    finishing.finish(db, settings, c.submission.id, c.token, result())
    return c.submission


def test_a_burst_of_20_gives_each_of_19_singles_a_slot_before_the_bursters_second(db, settings, h):
    wake = Wakeups()
    burster, *others = students(db, 20)
    burst = [upload(db, settings, wake, burster, h).id for _ in range(20)]
    # The worker picks up the burster's first while the others are still uploading (the worst case).
    first = claims.claim_next(db, settings, hostname="w1")
    assert first.submission.id == burst[0]
    singles = {upload(db, settings, wake, u, h).id: u.id for u in others}
    finishing.finish(db, settings, first.submission.id, first.token, result())

    order = [first.submission.id] + [grade_next(db, settings).id for _ in range(len(burst) - 1 + len(singles))]
    assert sorted(order) == sorted(burst + list(singles))  # nothing dropped, nothing twice
    second = order.index(burst[1])
    assert set(order[1:second]) == set(singles), "every single gets a slot before the burster's second"
    assert order[1:second] == sorted(singles)  # among the singles: who has waited longest (upload order)
    with pytest.raises(claims.Conflict):
        claims.claim_next(db, settings, hostname="w1")
    assert len(wake.sent) == len(order)  # one wake-up per queued submission, each consumed by one claim


def test_two_workers_racing_never_share_a_row_and_keep_the_fair_order(db, settings, h):
    wake = Wakeups()
    burster, *others = students(db, 6)
    burst = [upload(db, settings, wake, burster, h).id for _ in range(6)]
    singles = [upload(db, settings, wake, u, h).id for u in others]
    a = claims.claim_next(db, settings, hostname="w1")
    b = claims.claim_next(db, settings, hostname="w2")
    # The burster's first is running: their second is behind every single.
    assert a.submission.id == burst[0] and b.submission.id == singles[0]
    running = list(db.scalars(select(Submission.id).where(Submission.status == "running")))
    assert sorted(running) == sorted([a.submission.id, b.submission.id])


def test_only_sent_due_rows_are_claimed(db, settings, h):
    wake = Wakeups()
    (u,) = students(db, 1)
    sub = upload(db, settings, wake, u, h)
    db.get(Submission, sub.id).enqueued_at = None  # no wake-up was sent for it: the sweeper will
    db.commit()
    with pytest.raises(claims.Conflict):
        claims.claim_next(db, settings, hostname="w1")
    row = db.get(Submission, sub.id)
    row.enqueued_at, row.retry_at = utcnow(), utcnow() + timedelta(seconds=30)  # sent, but in its backoff
    db.commit()
    with pytest.raises(claims.Conflict):
        claims.claim_next(db, settings, hostname="w1")
    row.retry_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert claims.claim_next(db, settings, hostname="w1").submission.id == sub.id


def test_the_rerun_lane_never_takes_a_row_while_a_quick_row_waits(db, settings, h):
    wake = Wakeups()
    course = students(db, 5, "c")
    old = [upload(db, settings, wake, u, h).id for u in course for _ in range(2)]
    for _ in old:
        grade_next(db, settings)
    teacher = h.get_user(db, "teacher")
    rg = regrades.regrade(db, wake, assignment=h.get_assignment(db), requested_by=teacher, submission_ids=old,
                          scope="all")
    assert {lane for sid, lane in wake.sent[-len(old):]} == {"rerun"}
    assert {r.lane for r in db.scalars(select(Submission).where(Submission.regrade_id == rg.id))} == {"rerun"}
    # Students upload while the regrade-all waits: each claim takes a quick row first, whichever queue woke it.
    fresh = [upload(db, settings, wake, u, h).id for u in students(db, 4, "n")]
    taken = []
    while True:
        try:
            sub = grade_next(db, settings)
        except claims.Conflict:
            break
        taken.append((sub.id, sub.lane))
        if len(taken) == 3:  # another student uploads mid-regrade
            fresh.append(upload(db, settings, wake, h.get_user(db, "bob"), h).id)
    assert [lane for _, lane in taken] == ["quick"] * len(fresh) + ["rerun"] * len(old)
    assert [sid for sid, _ in taken[:len(fresh)]] == fresh and sorted(s for s, _ in taken[len(fresh):]) == old
    # A single regrade is the instructor waiting on one submission: the quick lane.
    regrades.regrade(db, wake, assignment=h.get_assignment(db), requested_by=teacher, submission_ids=[old[0]],
                     scope="one")
    assert wake.sent[-1] == (old[0], "quick")


def test_the_sweeper_resends_each_row_in_its_lane(db, settings, h):
    wake = Wakeups()
    (u,) = students(db, 1)
    sid = upload(db, settings, wake, u, h).id
    grade_next(db, settings)
    regrades.regrade(db, Wakeups(), assignment=h.get_assignment(db), requested_by=h.get_user(db, "teacher"),
                     submission_ids=[sid, sid], scope="twice")
    db.get(Submission, sid).enqueued_at = None
    db.commit()
    again = Wakeups()
    assert svc.sweep(db, settings, again)["resent"] == 1 and again.sent == [(sid, "rerun")]


def test_position_is_fair_share_and_the_json_shows_position_and_eta(db, settings, h, as_user):
    wake = Wakeups()
    alice, bob = h.get_user(db, "alice"), h.get_user(db, "bob")
    a = [upload(db, settings, wake, alice, h).id for _ in range(3)]
    b = upload(db, settings, wake, bob, h).id
    # FIFO would put bob 4th; fair share puts him right after alice's first.
    assert lanes.positions(db) == {a[0]: 1, b: 2, a[1]: 3, a[2]: 4}
    ca, cb = as_user("alice"), as_user("bob")
    assert cb.get(f"/submissions/{b}.json").json["queue_position"] == 2
    assert ca.get(f"/submissions/{a[2]}.json").json["queue_position"] == 4
    assert "position 2 in the queue" in cb.get(f"/submissions/{b}").text

    # ETA: median of the assignment's recent grading times x position / active workers.
    now = utcnow()
    for i, secs in enumerate((10.0, 20.0, 90.0)):
        c = claims.claim(db, settings, a[i], hostname=f"w{i}")
        finishing.finish(db, settings, a[i], c.token, result())
        row = db.get(Submission, a[i])
        row.started_at, row.finished_at = now - timedelta(seconds=secs), now
    db.commit()
    for w in db.scalars(select(WorkerSeen)):
        w.last_seen = now
    db.commit()
    rows = [upload(db, settings, wake, u, h).id for u in students(db, 3, "x")]
    j = cb.get(f"/submissions/{b}.json").json
    assert j["queue_position"] == 1 and j["eta_s"] == round(20.0 / 3, 1)
    assert lanes.positions(db)[rows[2]] == 4
    db.scalars(select(WorkerSeen)).first().last_seen = now - timedelta(minutes=5)  # one worker gone
    db.commit()
    assert lanes.eta_seconds(db, db.get(Submission, rows[2]), 4) == 40.0
    assert cb.get(f"/submissions/{b}.json").json["eta_s"] == 10.0
    c = claims.claim_next(db, settings, hostname="w9")
    assert cb.get(f"/submissions/{c.submission.id}.json").json["queue_position"] is None


def test_which_queues_a_worker_serves_is_a_setting(tmp_path):
    from grader.settings import SettingsError
    from server.celery_app import QUEUES
    from server.settings import ServerSettings
    from server.worker import worker_argv

    env = {"AUTOGRADER_INSTANCE_DIR": str(tmp_path)}
    assert ServerSettings.from_env(env).worker_queues == "quick,slow,rerun" == ",".join(QUEUES)
    only = ServerSettings.from_env({**env, "AUTOGRADER_WORKER_QUEUES": " rerun "})
    argv = worker_argv(None, None, "info", only.worker_queues)
    assert argv[argv.index("-Q") + 1] == "rerun"
    with pytest.raises(SettingsError, match="AUTOGRADER_WORKER_QUEUES"):
        ServerSettings.from_env({**env, "AUTOGRADER_WORKER_QUEUES": "quick,slowest"})
