"""Handing a wake-up to the broker: the message names the lane and the submission it was sent for, but the
worker that takes it grades the best waiting row (services.lanes: fair share); the row is the truth."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Submission, utcnow

log = logging.getLogger(__name__)

class Dispatch(Protocol):
    """Hands a wake-up for submission N's lane (after a delay in seconds) to the broker."""

    def __call__(self, submission_id: int, delay: float = 0.0, lane: str = "quick") -> None: ...


def send(session: Session, dispatch: Dispatch, submission_id: int, delay: float = 0.0, *, lane: str = "quick") -> bool:
    """Hand the submission's wake-up to the broker; a failure leaves it queued for the sweeper to send again.

    The row is marked sent first: a wake-up claims only sent rows (services.lanes), so a worker that takes the
    message at once must find its row claimable."""
    session.execute(update(Submission).where(Submission.id == submission_id).values(enqueued_at=utcnow()))
    session.commit()
    try:
        dispatch(submission_id, delay, lane)
    except Exception:
        log.exception("could not queue submission %s; the sweeper will retry", submission_id)
        session.execute(update(Submission).where(Submission.id == submission_id).values(enqueued_at=None))
        session.commit()
        return False
    return True
