"""The submission life cycle as a state machine: the one place that moves `Submission.status`.

    queued --claimed--> running --finished--> graded | rejected
      ^  \\                 |  \
      |   gave up          |   gave up --> error
      |    (out of         |
      |     attempts)      retry (attempt failed, not the student's fault),
      +--------------------+ next phase (quick checks judged, the slow ones wait: services.phases)
    graded | rejected | error | queued | running --regrade--> queued

`move(sub, to, reason=...)` changes one loaded row, `move_where(session, to, reason=..., where=...)` is the
same transition as one conditional UPDATE (compare-and-swap for claims and sweeps, bulk for regrades). Both
refuse a transition the table does not list (`IllegalTransition`) and stamp the timestamps and attempt fields
the same way, so a row's fields always agree with its status (a running row has a claim and a lease; a
queued, graded, rejected or error row has neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from server.models import Submission, SubmissionStatus, utcnow

S = SubmissionStatus


class Why(StrEnum):
    """Why a submission changes state (part of the transition: the same pair may be legal for one only)."""

    CLAIMED = "claimed"
    """A worker starts an attempt."""
    FINISHED = "finished"
    """The attempt's result is stored (graded or rejected)."""
    RETRY = "retry"
    """The attempt failed for reasons not the student's (engine error, worker gone): another attempt later."""
    GAVE_UP = "gave up"
    """Out of attempts, or a grader error another attempt would repeat."""
    REGRADE = "regrade"
    """An instructor queued it again (results kept until the new ones arrive)."""
    NEXT_PHASE = "next phase"
    """The quick phase of a two-phase grading ended graded: queued again in the slow lane for the slow checks
    (services.phases), with a fresh count of attempts."""


TRANSITIONS: Mapping[tuple[SubmissionStatus, SubmissionStatus], frozenset[Why]] = {
    (S.QUEUED, S.RUNNING): frozenset({Why.CLAIMED}),
    (S.RUNNING, S.GRADED): frozenset({Why.FINISHED}),
    (S.RUNNING, S.REJECTED): frozenset({Why.FINISHED}),
    (S.RUNNING, S.QUEUED): frozenset({Why.RETRY, Why.REGRADE, Why.NEXT_PHASE}),
    (S.RUNNING, S.ERROR): frozenset({Why.GAVE_UP}),
    (S.QUEUED, S.ERROR): frozenset({Why.GAVE_UP}),
    (S.QUEUED, S.QUEUED): frozenset({Why.REGRADE}),
    (S.GRADED, S.QUEUED): frozenset({Why.REGRADE}),
    (S.REJECTED, S.QUEUED): frozenset({Why.REGRADE}),
    (S.ERROR, S.QUEUED): frozenset({Why.REGRADE}),
}
"""Every legal (from, to) pair and the reasons it may happen for; anything else is refused."""


class IllegalTransition(Exception):
    """A status change the life cycle does not allow (a bug in the caller, never a user's doing)."""

    def __init__(self, frm: SubmissionStatus | None, to: SubmissionStatus, reason: Why) -> None:
        super().__init__(f"submission cannot go from {frm or '?'} to {to} ({reason})")
        self.frm, self.to, self.reason = frm, to, reason


def allowed(frm: SubmissionStatus, to: SubmissionStatus, reason: Why) -> bool:
    return reason in TRANSITIONS.get((frm, to), frozenset())


def sources(to: SubmissionStatus, reason: Why) -> frozenset[SubmissionStatus]:
    """The states from which `reason` may move a submission to `to`."""
    return frozenset(frm for (frm, t), whys in TRANSITIONS.items() if t is to and reason in whys)


def stamps(to: SubmissionStatus, reason: Why, now: datetime) -> dict[str, Any]:
    """The fields every transition to `to` for `reason` sets, besides the status."""
    if to is S.RUNNING:
        return {"started_at": now, "current_check": "", "checks_done": 0, "retry_at": None, "partial_checks": None}
    out: dict[str, Any] = {"claim": None, "lease_expires_at": None, "current_check": "", "retry_at": None,
                           "partial_checks": None}
    if to.final:
        out["finished_at"] = now
    elif to is S.QUEUED:
        out["enqueued_at"] = None  # to be handed to the broker (now, or by the sweeper)
        if reason is Why.REGRADE:  # a new wait (its lane's fair share), a new attempt count
            out.update(queued_at=now, attempts=0, checks_done=0)
        elif reason is Why.NEXT_PHASE:  # a new wait; the attempts go on counting (services.phases.out_of_attempts)
            out.update(queued_at=now, checks_done=0)
    return out


def _check_values(reason: Why, values: Mapping[str, Any]) -> None:
    if (reason is Why.RETRY) != ("retry_at" in values):
        raise TypeError("a retry, and only a retry, says when it may run (retry_at): see services.retries.backoff")


def move(sub: Submission, to: SubmissionStatus, *, reason: Why, now: datetime | None = None,
         **values: Any) -> None:
    """Move one loaded submission to `to` (the caller commits); IllegalTransition if the table has no such move.

    `values`: further fields to set with the move (e.g. the result), applied after the stamps.
    """
    frm = SubmissionStatus(sub.status)
    if not allowed(frm, to, reason):
        raise IllegalTransition(frm, to, reason)
    _check_values(reason, values)
    sub.status = to
    for k, v in {**stamps(to, reason, now or utcnow()), **values}.items():
        setattr(sub, k, v)


def move_where(session: Session, to: SubmissionStatus, *, reason: Why, where: Iterable[ColumnElement[bool]],
               now: datetime | None = None, **values: Any) -> int:
    """The same transition as one UPDATE of the rows matching `where` whose status may move to `to` for `reason`
    (rows in any other state are left alone); returns how many rows moved (the caller commits)."""
    frm = sources(to, reason)
    if not frm:
        raise IllegalTransition(None, to, reason)
    _check_values(reason, values)
    res = session.execute(update(Submission).where(Submission.status.in_(sorted(frm)), *where)
                          .values(status=to, **{**stamps(to, reason, now or utcnow()), **values}))
    return int(res.rowcount)  # type: ignore[attr-defined]
