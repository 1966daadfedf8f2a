"""The grading queue as instructors and students see it: positions, overview, counts, search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server.models import Assignment, Submission, SubmissionStatus, User, WorkerSeen, utcnow
from server.services import lanes

Q, R = SubmissionStatus.QUEUED, SubmissionStatus.RUNNING


def queue_position(session: Session, sub: Submission) -> int | None:
    """1 for the next submission to be graded, in fair-share order (services.lanes), not FIFO; None unless queued."""
    if sub.status != Q:
        return None
    return lanes.positions(session).get(sub.id)


def queue_eta(session: Session, sub: Submission, position: int | None) -> float | None:
    """Seconds until a queued submission's verdict, learned from the assignment's recent gradings."""
    return lanes.eta_seconds(session, sub, position)


@dataclass(frozen=True, slots=True)
class SubmissionFilter:
    assignment: str = ""
    student: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None


def search(session: Session, f: SubmissionFilter, *, limit: int = 200, offset: int = 0) -> tuple[list[Submission], int]:
    q = select(Submission).join(User, Submission.user_id == User.id).join(Assignment)
    if f.assignment:
        q = q.where(Assignment.name == f.assignment)
    if f.student:
        like = f"%{f.student.lower()}%"
        q = q.where(or_(User.username.like(like), func.lower(User.name).like(like)))
    if f.status:
        q = q.where(Submission.status == f.status)
    if f.since:
        q = q.where(Submission.created_at >= f.since)
    if f.until:
        q = q.where(Submission.created_at < f.until)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = list(session.scalars(q.order_by(Submission.id.desc()).limit(limit).offset(offset)))
    return rows, total


def status_counts(session: Session) -> dict[str, int]:
    return {str(k): int(v) for k, v in session.execute(
        select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all()}


def queue_overview(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    counts = {str(k): int(v) for k, v in session.execute(
        select(Submission.status, func.count(Submission.id))
        .where(Submission.status.in_([Q, R])).group_by(Submission.status)).all()}
    oldest = session.scalar(select(func.min(Submission.queued_at)).where(Submission.status == Q))
    workers = list(session.scalars(select(WorkerSeen).where(WorkerSeen.last_seen > now - timedelta(seconds=60))
                                   .order_by(WorkerSeen.hostname)))
    return {
        "queued": counts.get(Q, 0), "running": counts.get(R, 0),
        "oldest_waiting_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "workers_alive": len(workers),
        "workers": [{"hostname": w.hostname, "last_seen": w.last_seen.isoformat(), "submission": w.submission_id}
                    for w in workers],
    }
