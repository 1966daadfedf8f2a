"""Who may see which submission, and what the submission page and the API show of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Assignment, Submission, SubmissionStatus, User
from server.services.phases import Phase, holds_quick_result, kept_checks, phase_of
from server.services.queue import queue_eta, queue_position


class Forbidden(Exception):
    pass


def get_submission(session: Session, submission_id: int) -> Submission | None:
    return session.get(Submission, submission_id)


def visible_submission(session: Session, user: User, submission_id: int) -> Submission | None:
    """The submission if `user` may see it; Forbidden for another student's, None if there is none."""
    sub = session.get(Submission, submission_id)
    if sub is None:
        return None
    if sub.user_id != user.id and not user.is_instructor:
        raise Forbidden()
    return sub


def history(session: Session, user: User, assignment: Assignment | None = None) -> list[Submission]:
    q = select(Submission).where(Submission.user_id == user.id)
    if assignment is not None:
        q = q.where(Submission.assignment_id == assignment.id)
    return list(session.scalars(q.order_by(Submission.id.desc())))


def state_dict(session: Session, sub: Submission, *, for_instructor: bool = False) -> dict[str, Any]:
    """What the submission page and the API show (students never see the instructor-only reason)."""
    running = sub.status == SubmissionStatus.RUNNING
    waiting = running or sub.status == SubmissionStatus.QUEUED
    phase = phase_of(sub) if waiting else Phase.ALL
    # In a slow phase: the quick phase's verdicts (kept with its result), then the slow ones as they come.
    kept = kept_checks(sub) if phase is Phase.SLOW else []
    streamed = sub.partial if running else []
    partial = [c for c in kept if c.get("id") not in {s.get("id") for s in streamed}] + streamed
    position = queue_position(session, sub)
    d: dict[str, Any] = {
        "id": sub.id, "assignment": sub.assignment.name, "upload_number": sub.upload_number,
        "uploaded_at": sub.created_at.isoformat(), "status": str(sub.status), "filename": sub.original_filename,
        "queue_position": position, "eta_s": queue_eta(session, sub, position), "current_check": sub.current_check if running else "",
        "checks_done": sub.checks_done, "checks_total": sub.checks_total, "score": sub.score,
        "partial_checks": partial, "partial_score": round(sum(float(c.get("points", 0)) for c in partial), 4)
        if running or partial else None,
        "phase": phase.value if phase is not Phase.ALL else None,
        "max_score": sub.max_score, "passed": sub.passed, "message": sub.message,
        "result": None if holds_quick_result(sub) else sub.result,
        "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
    }
    if for_instructor:
        d.update(attempts=sub.attempts, worker=sub.worker, task_id=sub.task_id, error_reason=sub.error_reason,
                 user=sub.user.username)
    return d
