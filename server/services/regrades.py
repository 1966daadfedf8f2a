"""Instructors' regrades: queue submissions again (results kept until the new ones arrive) and follow them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from server.models import Assignment, Regrade, Submission, SubmissionStatus, User, utcnow
from server.services.dispatch import Dispatch, send
from server.services.lanes import Lane
from server.services.lifecycle import Why, move_where
from server.services.phases import HOLDS_QUICK_RESULT

INLINE_SENDS = 50
"""A regrade sends this many messages in the request; the sweeper sends the rest."""


def regrade(session: Session, dispatch: Dispatch, *, assignment: Assignment, requested_by: User,
            submission_ids: list[int], scope: str, lane: Lane | None = None) -> Regrade:
    """Queue the given submissions again (results are kept until the new ones arrive), in `lane`: by default the
    quick lane for one submission (an instructor waits for it), the rerun lane for more (never delays students).
    Either is one whole grading, not two phases (services.phases)."""
    lane = lane or (Lane.QUICK if len(submission_ids) == 1 else Lane.RERUN)
    rg = Regrade(assignment_id=assignment.id, requested_by=requested_by.id, scope=scope[:200],
                 total=len(submission_ids))
    session.add(rg)
    session.flush()
    now = utcnow()
    for i in range(0, len(submission_ids), 500):
        chunk = submission_ids[i:i + 500]
        # A row in its slow phase holds its quick phase's result, not a report to keep: dropped (the SET reads the
        # row's old lane and status).
        move_where(session, SubmissionStatus.QUEUED, reason=Why.REGRADE, now=now,
                   where=[Submission.id.in_(chunk)], regrade_id=rg.id, lane=lane.value,
                   result_json=case((HOLDS_QUICK_RESULT, None), else_=Submission.result_json))
    session.commit()
    for sid in submission_ids[:INLINE_SENDS]:
        send(session, dispatch, sid, lane=lane.value)
    # The rest (a whole course) is sent by the sweeper in the background: enqueued_at is NULL.
    return rg


def regrade_ids(session: Session, assignment: Assignment, *, user: User | None = None) -> list[int]:
    q = select(Submission.id).where(Submission.assignment_id == assignment.id)
    if user is not None:
        q = q.where(Submission.user_id == user.id)
    return list(session.scalars(q.order_by(Submission.id)))


def regrade_progress(session: Session, regrade_id: int) -> dict[str, Any] | None:
    rg = session.get(Regrade, regrade_id)
    if rg is None:
        return None
    rows = {str(k): int(v) for k, v in session.execute(
        select(Submission.status, func.count(Submission.id))
        .where(Submission.regrade_id == rg.id).group_by(Submission.status)).all()}
    done = sum(v for k, v in rows.items() if SubmissionStatus(k).final)
    return {"id": rg.id, "scope": rg.scope, "total": rg.total, "done": done, "by_status": rows,
            "created_at": rg.created_at.isoformat()}


def latest_regrades(session: Session, limit: int = 5) -> list[Regrade]:
    return list(session.scalars(select(Regrade).order_by(Regrade.id.desc()).limit(limit)))
