"""The one layer that grades a submission again: the database row (attempt counter, `retry_at`) and the sweep.

An attempt that fails for reasons not the student's (an engine error, a task failure, a malformed result, a
worker that went silent) moves the row back to queued with `retry_at` = now + `backoff(attempts)`, or to error
once `max_attempts` are spent. Only `sweep()` (every `sweep_interval_seconds` in each web process) hands due
rows to the broker again. Nothing else retries a grading: the Celery task has no autoretry and a dead grading
process's message is not redelivered (`reject_on_worker_lost` off), the claim only starts a due attempt, and the
worker's HTTP client retries single requests (transport), never a grading. A deterministic grader error ends as
error at once (finishing.finish).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from server.models import Submission, SubmissionStatus, utcnow
from server.services.dispatch import Dispatch
from server.services.finishing import append_reason, give_up
from server.services.lifecycle import Why, move_where
from server.services.phases import out_of_attempts
from server.settings import ServerSettings

log = logging.getLogger(__name__)
Q, R = SubmissionStatus.QUEUED, SubmissionStatus.RUNNING

BACKOFF_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 60.0


def backoff(attempts: int) -> timedelta:
    """How long a submission waits after its `attempts`-th attempt failed: 5, 10, 20, 40, 60, 60 ... s."""
    return timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** max(0, attempts - 1)))


def due(now: datetime):  # type: ignore[no-untyped-def]
    """Queued rows whose backoff (if any) is over."""
    return and_(Submission.status == Q, or_(Submission.retry_at.is_(None), Submission.retry_at <= now))


def sweep(session: Session, settings: ServerSettings, dispatch: Dispatch, *, now: datetime | None = None) -> dict[str, int]:
    """Requeue running submissions whose worker went silent (lease expired), then send the due queued ones
    that were never sent or whose message was lost (sent `requeue_after_seconds` ago and still queued).

    Counts: "requeued" (lease expired, another attempt later), "errored" (out of attempts), "resent"
    (handed to the broker)."""
    now = now or utcnow()
    counts = {"requeued": 0, "resent": 0, "errored": 0}
    stale = list(session.scalars(select(Submission).where(Submission.status == R, Submission.lease_expires_at < now)))
    for sub in stale:
        reason = f"attempt {sub.attempts}: worker {sub.worker or '?'} went silent (lease expired)"
        if out_of_attempts(sub, settings.max_attempts):
            give_up(session, sub, reason)
            counts["errored"] += 1
            continue
        moved = move_where(session, Q, reason=Why.RETRY, now=now,
                           where=[Submission.id == sub.id, Submission.claim == sub.claim],
                           error_reason=append_reason(sub.error_reason, reason),
                           retry_at=now + backoff(sub.attempts))
        session.commit()
        counts["requeued"] += moved
    cutoff = now - timedelta(seconds=settings.requeue_after_seconds)
    send_cond = and_(due(now), or_(Submission.enqueued_at.is_(None), Submission.enqueued_at < cutoff))
    for sid, lane in list(session.execute(select(Submission.id, Submission.lane).where(send_cond)
                                          .order_by(Submission.queued_at, Submission.id))):
        # Take the send first, so that the sweepers of several web processes never send it twice.
        res = session.execute(update(Submission).where(Submission.id == sid, send_cond).values(enqueued_at=utcnow()))
        session.commit()
        if res.rowcount != 1:  # type: ignore[attr-defined]
            continue
        try:
            dispatch(sid, 0.0, lane)
        except Exception:
            log.exception("could not queue submission %s; will retry", sid)
            session.execute(update(Submission).where(Submission.id == sid).values(enqueued_at=None))
            session.commit()
            break  # the broker is down: try again at the next sweep
        counts["resent"] += 1
    return counts
