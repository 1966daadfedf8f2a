"""The sweep: requeue running submissions whose worker went silent, resend queued ones never picked up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from server.models import Submission, SubmissionStatus, utcnow
from server.services.dispatch import Dispatch, send
from server.services.finishing import append_reason, give_up
from server.services.lifecycle import Why, move_where
from server.settings import ServerSettings

log = logging.getLogger(__name__)
Q, R = SubmissionStatus.QUEUED, SubmissionStatus.RUNNING


def sweep(session: Session, settings: ServerSettings, dispatch: Dispatch, *, now: datetime | None = None) -> dict[str, int]:
    """Requeue running submissions whose worker went silent, and resend queued ones never picked up."""
    now = now or utcnow()
    counts = {"requeued": 0, "resent": 0, "errored": 0}
    stale = list(session.scalars(select(Submission).where(Submission.status == R, Submission.lease_expires_at < now)))
    for sub in stale:
        reason = f"attempt {sub.attempts}: worker {sub.worker or '?'} went silent (lease expired)"
        if sub.attempts >= settings.max_attempts:
            give_up(session, sub, reason)
            counts["errored"] += 1
            continue
        moved = move_where(session, Q, reason=Why.RETRY, where=[Submission.id == sub.id, Submission.claim == sub.claim],
                           error_reason=append_reason(sub.error_reason, reason))
        session.commit()
        if moved == 1:
            send(session, dispatch, sub.id)
            counts["requeued"] += 1
    cutoff = now - timedelta(seconds=settings.requeue_after_seconds)
    lost_cond = and_(Submission.status == Q, or_(Submission.enqueued_at.is_(None), Submission.enqueued_at < cutoff))
    for sid in list(session.scalars(select(Submission.id).where(lost_cond).order_by(Submission.queued_at))):
        # Take the resend first, so that the sweepers of several web processes never send it twice.
        res = session.execute(update(Submission).where(Submission.id == sid, lost_cond).values(enqueued_at=utcnow()))
        session.commit()
        if res.rowcount != 1:  # type: ignore[attr-defined]
            continue
        try:
            dispatch(sid, 0.0)
        except Exception:
            log.exception("could not queue submission %s; will retry", sid)
            session.execute(update(Submission).where(Submission.id == sid).values(enqueued_at=None))
            session.commit()
            break  # the broker is down: try again at the next sweep
        counts["resent"] += 1
    return counts
