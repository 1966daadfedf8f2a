"""The submission life cycle's state machine (server/services/lifecycle.py): every move not in its table is
refused, legal moves stamp the row consistently, the database refuses unknown states, and no code outside the
lifecycle module assigns a submission's status."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from server.models import Submission, SubmissionStatus, utcnow
from server.services import lifecycle
from server.services.lifecycle import TRANSITIONS, IllegalTransition, Why, move, move_where

S = SubmissionStatus
SERVER = Path(__file__).resolve().parents[2] / "server"
ALL_MOVES = list(itertools.product(S, S, Why))
LEGAL = [(f, t, w) for f, t, w in ALL_MOVES if w in TRANSITIONS.get((f, t), frozenset())]
ILLEGAL = [(f, t, w) for f, t, w in ALL_MOVES if w not in TRANSITIONS.get((f, t), frozenset())]


def _row(status: S) -> Submission:
    sub = Submission(user_id=1, assignment_id=1, upload_number=1, stored_name="x.zip", status=status, attempts=1,
                     claim="tok" if status is S.RUNNING else None, checks_done=2, current_check="c",
                     lease_expires_at=utcnow() if status is S.RUNNING else None, error_reason="", message="")
    return sub


def test_the_table_is_the_life_cycle():
    """The legal moves, spelled out: a change of the table is a change of the product's behaviour."""
    assert {(f.value, t.value, w.value) for f, t, w in LEGAL} == {
        ("queued", "running", "claimed"),
        ("running", "graded", "finished"), ("running", "rejected", "finished"),
        ("running", "queued", "retry"), ("running", "queued", "regrade"), ("running", "queued", "next phase"),
        ("running", "error", "gave up"), ("queued", "error", "gave up"),
        ("queued", "queued", "regrade"), ("graded", "queued", "regrade"), ("rejected", "queued", "regrade"),
        ("error", "queued", "regrade"),
    }


@pytest.mark.parametrize(("frm", "to", "why"), ILLEGAL, ids=lambda x: str(x))
def test_every_illegal_move_is_refused_and_changes_nothing(frm, to, why):
    sub = _row(frm)
    before = {c: getattr(sub, c) for c in ("status", "claim", "finished_at", "started_at", "current_check")}
    with pytest.raises(IllegalTransition) as e:
        move(sub, to, reason=why, **({"retry_at": utcnow()} if why is Why.RETRY else {}))
    assert (e.value.frm, e.value.to, e.value.reason) == (frm, to, why)
    assert {c: getattr(sub, c) for c in before} == before


@pytest.mark.parametrize(("frm", "to", "why"), LEGAL, ids=lambda x: str(x))
def test_legal_moves_stamp_the_row_consistently(frm, to, why):
    sub = _row(frm)
    now = utcnow()
    extra = {"retry_at": now + timedelta(seconds=5)} if why is Why.RETRY else {}
    move(sub, to, reason=why, now=now, **extra)
    assert sub.status is to
    assert sub.retry_at == extra.get("retry_at")  # only a retry waits; any other move clears the wait
    if to is S.RUNNING:
        assert sub.started_at == now and sub.checks_done == 0
    else:  # only a running row holds a claim and a lease
        assert sub.claim is None and sub.lease_expires_at is None and sub.current_check == ""
    assert (sub.finished_at == now) == to.final
    if to is S.QUEUED:
        assert sub.enqueued_at is None
        assert (sub.queued_at == now) == (why in (Why.REGRADE, Why.NEXT_PHASE))
        assert (sub.attempts == 0) == (why is Why.REGRADE)  # a next phase counts on


def test_a_retry_and_only_a_retry_says_when_it_may_run():
    with pytest.raises(TypeError):
        move(_row(S.RUNNING), S.QUEUED, reason=Why.RETRY)
    with pytest.raises(TypeError):
        move(_row(S.RUNNING), S.QUEUED, reason=Why.REGRADE, retry_at=utcnow())


def test_move_where_refuses_a_move_from_nowhere(db):
    with pytest.raises(IllegalTransition):
        move_where(db, S.GRADED, reason=Why.RETRY, where=[Submission.id == 1])
    with pytest.raises(IllegalTransition):
        move_where(db, S.RUNNING, reason=Why.FINISHED, where=[Submission.id == 1])


def test_move_where_moves_only_rows_in_a_legal_source_state(db, h):
    alice, a = h.get_user(db, "alice"), h.get_assignment(db)
    for n, st in enumerate(S, start=1):
        db.add(Submission(user_id=alice.id, assignment_id=a.id, upload_number=n, stored_name=f"{n}.zip", status=st))
    db.commit()
    assert move_where(db, S.ERROR, reason=Why.GAVE_UP, where=[Submission.user_id == alice.id]) == 2  # queued, running
    db.commit()
    assert sorted(db.scalars(text("select status from submissions")).all()) == ["error", "error", "error", "graded",
                                                                                 "rejected"]


def test_the_database_refuses_an_unknown_status(db, h):
    from sqlalchemy.exc import IntegrityError, StatementError

    alice, a = h.get_user(db, "alice"), h.get_assignment(db)
    db.add(Submission(user_id=alice.id, assignment_id=a.id, upload_number=1, stored_name="1.zip"))
    db.commit()
    with pytest.raises(IntegrityError):  # the CHECK constraint, below the ORM
        db.execute(text("update submissions set status = 'half-done'"))
    db.rollback()
    with pytest.raises((StatementError, LookupError)):  # the ORM's enum type
        db.add(Submission(user_id=alice.id, assignment_id=a.id, upload_number=2, stored_name="2.zip",
                          status="half-done"))
        db.flush()
    db.rollback()
    row = db.scalars(text("select status from submissions")).one()
    assert row == "queued" and db.get(Submission, 1).status is S.QUEUED


# Assignments of a submission's status: `x.status = ...`, `setattr(x, "status", ...)`, and `status=` as a keyword
# of an UPDATE's values() or of the Submission constructor.
ASSIGNMENTS = [
    re.compile(r"\.status\s*(?<![=!<>])=(?!=)"),
    re.compile(r"setattr\([^,]+,\s*['\"]status['\"]"),
    re.compile(r"\.values\((?:[^()]|\([^()]*\))*\bstatus\s*="),
    re.compile(r"\bSubmission\((?:[^()]|\([^()]*\))*\bstatus\s*="),
]


def status_assignments(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == Path(lifecycle.__file__):
            continue
        src = path.read_text()
        for rx in ASSIGNMENTS:
            for m in rx.finditer(src):
                line = src.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(root.parent)}:{line}: {src.splitlines()[line - 1].strip()}")
    return found


def test_no_code_outside_the_lifecycle_module_assigns_a_status():
    assert status_assignments(SERVER) == []


def test_the_structural_check_finds_assignments(tmp_path):
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "bad.py").write_text(
        "sub.status = 'graded'\nsession.execute(update(Submission).values(claim=None, status=Q))\n"
        "setattr(sub, 'status', 'error')\nok = sub.status == Q\nSubmission(user_id=1,\n  status='graded')\n")
    assert len(status_assignments(tmp_path / "server")) == 4
