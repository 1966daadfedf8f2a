"""The worker side of an attempt: claims (attempt tokens), leases renewed by progress, worker heartbeats.

A claim is an attempt token: one attempt at a time holds a submission, so duplicate or redelivered messages
are harmless, and requests of a superseded attempt are refused (`Conflict`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from grader.result import CheckResult
from server import storage
from server.models import Submission, SubmissionStatus, WorkerSeen, utcnow
from server.security import new_token
from server.services.lifecycle import Why, move_where
from server.services.phases import out_of_attempts
from server.settings import ServerSettings

if TYPE_CHECKING:
    from server.services.dispatch import Dispatch

log = logging.getLogger(__name__)
R = SubmissionStatus.RUNNING


class Conflict(Exception):
    """A worker's request that no longer applies (finished, busy, or a stale claim)."""


@dataclass(frozen=True, slots=True)
class Claim:
    token: str
    submission: Submission

    def info(self) -> dict[str, Any]:
        """What the worker is told: the row, its attempt, and which phase and checks to grade (services.phases)."""
        from server.services.phases import checks_of, phase_of

        sub = self.submission
        phase = phase_of(sub)
        return {"submission": sub.id, "claim": self.token, "assignment": sub.assignment.name, "sha256": sub.sha256,
                "size": sub.size_bytes, "attempt": sub.attempts, "lane": sub.lane, "phase": phase.value,
                "only": checks_of(sub, phase)}


def touch_worker(session: Session, hostname: str, submission_id: int | None) -> None:
    if not hostname:
        return
    w = session.get(WorkerSeen, hostname[:200])
    if w is None:
        session.add(WorkerSeen(hostname=hostname[:200], last_seen=utcnow(), submission_id=submission_id))
    else:
        w.last_seen = utcnow()
        w.submission_id = submission_id


def worker_heartbeat(session: Session, hostname: str) -> None:
    touch_worker(session, hostname, None)
    session.commit()


def claim(session: Session, settings: ServerSettings, submission_id: int, *, hostname: str,
          task_id: str = "") -> Claim:
    """Start a grading attempt of a queued, due submission; Conflict when finished, running (held by another
    attempt, or its worker went silent: the sweeper requeues it), waiting for its retry, or out of attempts.

    So a duplicate, redelivered or early message does nothing: when an attempt starts again is the sweeper's
    decision alone (services.retries).
    """
    from server.services.finishing import give_up

    now = utcnow()
    sub = session.get(Submission, submission_id)
    if sub is None or sub.state.final:
        raise Conflict("finished")
    if sub.status == R:
        raise Conflict("busy")
    if sub.retry_at is not None and sub.retry_at > now:
        raise Conflict("not due")
    if out_of_attempts(sub, settings.max_attempts):
        give_up(session, sub, "")
        raise Conflict("out of attempts")
    token = new_token()
    moved = move_where(session, R, reason=Why.CLAIMED, now=now,
                       where=[Submission.id == sub.id, Submission.attempts == sub.attempts, Submission.claim.is_(None)],
                       claim=token, attempts=sub.attempts + 1, worker=hostname[:200], task_id=task_id[:64],
                       lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
                       checks_done=_checks_done(sub))
    if moved != 1:
        session.rollback()
        raise Conflict("busy")
    touch_worker(session, hostname, sub.id)
    session.commit()
    session.refresh(sub)
    return Claim(token, sub)


def claim_next(session: Session, settings: ServerSettings, *, hostname: str, task_id: str = "",
               tries: int = 5, lane: str = "", dispatch: Dispatch | None = None) -> Claim:
    """A wake-up of the `lane` queue: start an attempt of the best claimable submission of the lanes that queue may
    claim from (services.lanes.CLAIMS_FROM; an unknown or empty lane: every lane), by lane and fair share;
    Conflict("nothing to do") when none waits. Each try is the same compare-and-swap as `claim`, so two workers
    never hold one row; losing a race moves on to the next candidate.

    A slow or rerun wake-up that takes a quick row sends its own queue a replacement wake-up through `dispatch`
    (the quick row's wake-up stays in the quick queue, where it cannot claim the slow or rerun row this one was
    sent for)."""
    from server.services.finishing import give_up
    from server.services.lanes import CLAIMS_FROM, LANES, Lane, claim_order, claimable

    woke = Lane(lane) if lane in tuple(Lane) else None
    lanes = CLAIMS_FROM[woke] if woke is not None else LANES
    for _ in range(tries):
        now = utcnow()
        candidates = claim_order(session, now=now, lanes=lanes)
        if not candidates:
            break
        for sid in candidates:
            sub = session.get(Submission, sid)
            if sub is None or sub.status != SubmissionStatus.QUEUED:
                continue
            if out_of_attempts(sub, settings.max_attempts):
                give_up(session, sub, "")
                session.commit()
                continue
            token = new_token()
            moved = move_where(session, R, reason=Why.CLAIMED, now=now,
                               where=[Submission.id == sid, Submission.attempts == sub.attempts,
                                      Submission.claim.is_(None), claimable(now)],
                               claim=token, attempts=sub.attempts + 1, worker=hostname[:200], task_id=task_id[:64],
                               lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
                               checks_done=_checks_done(sub))
            if moved != 1:
                session.rollback()
                continue
            touch_worker(session, hostname, sid)
            session.commit()
            session.refresh(sub)
            if woke is not None and woke is not Lane.QUICK and sub.lane == Lane.QUICK.value and dispatch is not None:
                _replace_wakeup(dispatch, sid, woke)
            return Claim(token, sub)
        session.expire_all()
    raise Conflict("nothing to do")


def _checks_done(sub: Submission) -> int:
    """Where a new attempt's check counter starts: after the kept quick checks in a slow phase, else at 0."""
    from server.services.phases import quick_result

    kept = quick_result(sub)
    return len(kept.checks) if kept is not None else 0


def _replace_wakeup(dispatch: Dispatch, sid: int, lane: str) -> None:
    try:
        dispatch(sid, 0.0, lane)
    except Exception:  # the broker is down: the sweeper resends rows whose wake-up went missing
        log.exception("could not send a replacement wake-up to the %s queue", lane)


def held(session: Session, submission_id: int, token: str) -> Submission:
    """The submission if `token` is the claim of its running attempt; Conflict otherwise."""
    sub = session.get(Submission, submission_id)
    if sub is None or sub.status != R or not token or sub.claim != token:
        raise Conflict("stale claim")
    return sub


def zip_path_for_claim(session: Session, settings: ServerSettings, submission_id: int, token: str) -> Path:
    sub = held(session, submission_id, token)
    return storage.path_of(settings.upload_dir, sub.stored_name)


MAX_PARTIAL_CHECKS = 500
"""Verdicts kept of one attempt (an assignment has a few dozen checks; a worker cannot grow the row further)."""


def verdict_of(payload: Any) -> CheckResult:
    """A streamed verdict as the grader's CheckResult model; ValueError (pydantic's) if it is none."""
    if not isinstance(payload, dict):
        raise ValueError(f"a verdict is a JSON object, not {type(payload).__name__}")
    return CheckResult.model_validate(payload)


def progress(session: Session, settings: ServerSettings, submission_id: int, token: str, *,
             check: str | None, hostname: str = "", verdict: CheckResult | None = None) -> None:
    """Record the check being run (or just renew the lease when `check` is None) and a check's verdict as soon as
    it is judged (kept on the row until the attempt ends, one per check id, the latest wins): the one progress
    channel."""
    sub = held(session, submission_id, token)
    sub.lease_expires_at = utcnow() + timedelta(seconds=settings.lease_seconds)
    if check and check != sub.current_check:
        sub.current_check = check[:200]
        sub.checks_done += 1
    if verdict is not None:
        kept = [c for c in sub.partial if c.get("id") != verdict.id]
        if len(kept) < MAX_PARTIAL_CHECKS:
            sub.partial_checks = json.dumps([*kept, verdict.model_dump(mode="json")])
    touch_worker(session, hostname, sub.id)
    session.commit()
