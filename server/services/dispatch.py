"""Handing "grade submission N" to the broker: the message carries the id only, the row is the truth."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Submission, utcnow

log = logging.getLogger(__name__)

Dispatch = Callable[[int, float], None]
"""Hands "grade submission N" (after a delay in seconds) to the broker."""


def send(session: Session, dispatch: Dispatch, submission_id: int, delay: float = 0.0) -> bool:
    """Hand the submission to the broker; a failure leaves it queued for the sweeper to send again."""
    try:
        dispatch(submission_id, delay)
    except Exception:
        log.exception("could not queue submission %s; the sweeper will retry", submission_id)
        return False
    session.execute(update(Submission).where(Submission.id == submission_id).values(enqueued_at=utcnow()))
    session.commit()
    return True
