"""Uploads, visibility of submissions, and the grading life cycle (queue, claim, progress, result, sweep).

The database row is the source of truth: the broker only carries "grade submission N". A worker claims
the submission (one attempt at a time, with a lease it renews), so duplicate or redelivered messages are
harmless and a submission whose worker died is requeued by the sweeper when its lease expires.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import storage
from server.models import Assignment, Regrade, Submission, SubmissionStatus, User, WorkerSeen, utcnow
from server.security import new_token
from server.settings import ServerSettings

log = logging.getLogger(__name__)

Dispatch = Callable[[int, float], None]
"""Hands "grade submission N" (after a delay in seconds) to the broker."""

INLINE_SENDS = 50
"""A regrade sends this many messages in the request; the sweeper sends the rest."""
Q, R = SubmissionStatus.QUEUED.value, SubmissionStatus.RUNNING.value
FINAL = (SubmissionStatus.GRADED.value, SubmissionStatus.REJECTED.value, SubmissionStatus.ERROR.value)


class UploadRefused(Exception):
    """An upload refused before anything is stored; `message` is for the student."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Forbidden(Exception):
    pass


class Conflict(Exception):
    """A worker's request that no longer applies (finished, busy, or a stale claim)."""


def fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} bytes"


# ---------------------------------------------------------------- uploads


def uploads_used(session: Session, user: User, assignment: Assignment) -> int:
    return session.scalar(select(func.count(Submission.id)).where(
        Submission.user_id == user.id, Submission.assignment_id == assignment.id)) or 0


def check_can_upload(session: Session, user: User, assignment: Assignment, *, now: datetime | None = None) -> int:
    """Refusals that need no file (closed, limit reached); returns the uploads used so far."""
    now = now or utcnow()
    if assignment.opens_at is not None and now < assignment.opens_at:
        raise UploadRefused(f"{assignment.title} is not open yet: it opens at "
                            f"{assignment.opens_at:%Y-%m-%d %H:%M} UTC.", 403)
    if assignment.closes_at is not None and now >= assignment.closes_at:
        raise UploadRefused(f"{assignment.title} closed at {assignment.closes_at:%Y-%m-%d %H:%M} UTC: "
                            "uploads are no longer accepted.", 403)
    used = uploads_used(session, user, assignment)
    if used >= assignment.upload_limit:
        raise UploadRefused(f"You have used all {assignment.upload_limit} of {assignment.upload_limit} uploads "
                            f"for {assignment.title}.", 429)
    return used


def too_large_message(limit: int) -> str:
    return f"The file is too large: the limit is {fmt_bytes(limit)} per upload."


def submit_upload(session: Session, settings: ServerSettings, dispatch: Dispatch, *, user: User,
                  assignment: Assignment, stream: BinaryIO, filename: str, via: str = "web") -> Submission:
    """Store an upload and queue it; on any refusal or failure nothing is kept (no row, no file)."""
    used = check_can_upload(session, user, assignment)
    if not filename:
        raise UploadRefused("Choose a zip file to upload.")
    try:
        stored = storage.save_stream(settings.upload_dir, stream, limit=assignment.max_upload_bytes)
    except storage.TooLarge:
        raise UploadRefused(too_large_message(assignment.max_upload_bytes), 413) from None
    try:
        if stored.size == 0:
            raise UploadRefused("The file is empty.")
        sub = Submission(user_id=user.id, assignment_id=assignment.id, upload_number=used + 1, via=via,
                         original_filename=Path(filename).name[:255], stored_name=stored.name,
                         size_bytes=stored.size, sha256=stored.sha256,
                         checks_total=_checks_total(assignment.name))
        session.add(sub)
        bump_leaderboard(session, assignment.id, sub)
        session.commit()
    except IntegrityError:
        session.rollback()
        storage.delete(settings.upload_dir, stored.name)
        raise UploadRefused("Another upload of yours was being stored at the same moment; try again.", 409) from None
    except BaseException:
        session.rollback()
        storage.delete(settings.upload_dir, stored.name)
        raise
    send(session, dispatch, sub.id)
    return sub


def _checks_total(name: str) -> int:
    try:
        from grader.assignments import load_assignment

        return len(load_assignment(name).checks)
    except Exception:  # the count is cosmetic (progress bar)
        return 0


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


# ---------------------------------------------------------------- reading


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


def queue_position(session: Session, sub: Submission) -> int | None:
    """1 for the next submission to be graded; None unless queued."""
    if sub.status != Q:
        return None
    ahead = session.scalar(select(func.count(Submission.id)).where(
        Submission.status == Q,
        or_(Submission.queued_at < sub.queued_at, and_(Submission.queued_at == sub.queued_at, Submission.id < sub.id)),
    )) or 0
    return ahead + 1


def state_dict(session: Session, sub: Submission, *, for_instructor: bool = False) -> dict[str, Any]:
    """What the submission page and the API show (students never see the instructor-only reason)."""
    d: dict[str, Any] = {
        "id": sub.id, "assignment": sub.assignment.name, "upload_number": sub.upload_number,
        "uploaded_at": sub.created_at.isoformat(), "status": sub.status, "filename": sub.original_filename,
        "queue_position": queue_position(session, sub), "current_check": sub.current_check if sub.status == R else "",
        "checks_done": sub.checks_done, "checks_total": sub.checks_total, "score": sub.score,
        "max_score": sub.max_score, "passed": sub.passed, "message": sub.message, "result": sub.result,
        "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
    }
    if for_instructor:
        d.update(attempts=sub.attempts, worker=sub.worker, task_id=sub.task_id, error_reason=sub.error_reason,
                 user=sub.user.username)
    return d


# ---------------------------------------------------------------- worker side (internal endpoints)


@dataclass(frozen=True, slots=True)
class Claim:
    token: str
    submission: Submission


def _touch_worker(session: Session, hostname: str, submission_id: int | None) -> None:
    if not hostname:
        return
    w = session.get(WorkerSeen, hostname[:200])
    if w is None:
        session.add(WorkerSeen(hostname=hostname[:200], last_seen=utcnow(), submission_id=submission_id))
    else:
        w.last_seen = utcnow()
        w.submission_id = submission_id


def worker_heartbeat(session: Session, hostname: str) -> None:
    _touch_worker(session, hostname, None)
    session.commit()


def claim(session: Session, settings: ServerSettings, submission_id: int, *, hostname: str,
          exclusive: bool = False, task_id: str = "") -> Claim:
    """Start a grading attempt; Conflict when finished, held by a live worker, or out of attempts.

    `exclusive`: the claiming worker grades one submission at a time, so if it already holds this one,
    that attempt's process died (Celery redelivered the message: acks_late + reject_on_worker_lost) and
    the new attempt takes over at once instead of waiting for the lease to expire.
    """
    now = utcnow()
    sub = session.get(Submission, submission_id)
    if sub is None or sub.status in FINAL:
        raise Conflict("finished")
    if sub.status == R and sub.lease_expires_at is not None and sub.lease_expires_at > now:
        if not (exclusive and hostname and sub.worker == hostname[:200]):
            raise Conflict("busy")
        sub.error_reason = _append_reason(sub.error_reason, f"attempt {sub.attempts}: worker process on "
                                                            f"{hostname} died (message redelivered)")
    if sub.attempts >= settings.max_attempts:
        _give_up(session, sub, "")
        raise Conflict("out of attempts")
    token = new_token()
    res = session.execute(
        update(Submission)
        .where(Submission.id == sub.id, Submission.attempts == sub.attempts, Submission.status == sub.status,
               or_(Submission.claim.is_(None), Submission.claim == sub.claim))
        .values(status=R, claim=token, attempts=sub.attempts + 1, started_at=now, worker=hostname[:200],
                task_id=task_id[:64], error_reason=sub.error_reason,
                lease_expires_at=now + timedelta(seconds=settings.lease_seconds), current_check="", checks_done=0)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise Conflict("busy")
    _touch_worker(session, hostname, sub.id)
    session.commit()
    session.refresh(sub)
    return Claim(token, sub)


def _held(session: Session, submission_id: int, token: str) -> Submission:
    sub = session.get(Submission, submission_id)
    if sub is None or sub.status != R or not token or sub.claim != token:
        raise Conflict("stale claim")
    return sub


def zip_path_for_claim(session: Session, settings: ServerSettings, submission_id: int, token: str) -> Path:
    sub = _held(session, submission_id, token)
    return storage.path_of(settings.upload_dir, sub.stored_name)


def progress(session: Session, settings: ServerSettings, submission_id: int, token: str, *,
             check: str | None, hostname: str = "") -> None:
    """Record the check being run (or just renew the lease when `check` is None)."""
    sub = _held(session, submission_id, token)
    sub.lease_expires_at = utcnow() + timedelta(seconds=settings.lease_seconds)
    if check and check != sub.current_check:
        sub.current_check = check[:200]
        sub.checks_done += 1
    _touch_worker(session, hostname, sub.id)
    session.commit()


def bump_leaderboard(session: Session, assignment_id: int, changed: Submission | None = None) -> None:
    """Invalidate cached leaderboards of the assignment (part of the caller's transaction); `changed` is
    marked with the new version, so caches re-rank only its student."""
    version = session.execute(update(Assignment).where(Assignment.id == assignment_id)
                              .values(lb_version=Assignment.lb_version + 1)
                              .returning(Assignment.lb_version)).scalar_one()
    if changed is not None:
        changed.lb_changed = version


def _leaderboard_columns(name: str) -> set[str]:
    try:
        from grader.assignments import load_assignment

        return {c.metric for c in load_assignment(name).leaderboard_columns}
    except Exception:
        return set()


def _leaderboard_metric(name: str) -> str | None:
    try:
        from grader.assignments import load_assignment

        return load_assignment(name).leaderboard_metric
    except Exception:
        return None


def finish(session: Session, settings: ServerSettings, dispatch: Dispatch, submission_id: int, token: str,
           result: dict[str, Any], *, hostname: str = "") -> str:
    """Store a worker's result (validated as a GradeResult); an engine error is retried up to the bound."""
    from grader.result import GradeResult, Status

    sub = _held(session, submission_id, token)
    try:
        gr = GradeResult.from_dict(result)
    except (KeyError, TypeError, ValueError) as exc:
        return fail(session, settings, dispatch, submission_id, token, reason=f"malformed result: {exc}")
    if gr.status is Status.ERROR and gr.deterministic:  # another attempt would fail the same way (a bad spec)
        _give_up(session, sub, f"attempt {sub.attempts}: grader error (not retried): {gr.message}")
        return sub.status
    if gr.status is Status.ERROR:
        return fail(session, settings, dispatch, submission_id, token, reason=f"grader error: {gr.message}")
    metric = _leaderboard_metric(sub.assignment.name)
    now = utcnow()
    sub.status = gr.status.value
    sub.result_json = gr.to_json()
    sub.score = gr.score if gr.status is Status.GRADED else None
    sub.max_score = gr.max_score
    sub.passed = gr.passed if gr.status is Status.GRADED else False
    value = gr.metrics.get(metric) if metric else None
    sub.lb_value = float(value) if gr.status is Status.GRADED and value is not None and value == value else None
    wanted = _leaderboard_columns(sub.assignment.name)
    sub.lb_metrics = json.dumps({k: v for k, v in gr.to_dict()["metrics"].items() if k in wanted and v is not None}) \
        if sub.lb_value is not None else None
    bump_leaderboard(session, sub.assignment_id, sub)
    sub.message = gr.message
    sub.finished_at = now
    sub.claim = None
    sub.lease_expires_at = None
    sub.current_check = ""
    _touch_worker(session, hostname, None)
    session.commit()
    return sub.status


def fail(session: Session, settings: ServerSettings, dispatch: Dispatch, submission_id: int, token: str, *,
         reason: str) -> str:
    """A grading attempt failed for reasons not the student's: retry later, or end as error."""
    sub = _held(session, submission_id, token)
    sub.error_reason = _append_reason(sub.error_reason, f"attempt {sub.attempts}: {reason}")
    sub.claim = None
    sub.lease_expires_at = None
    sub.current_check = ""
    if sub.attempts >= settings.max_attempts:
        _give_up(session, sub, "")
        return sub.status
    sub.status = Q
    session.commit()
    send(session, dispatch, sub.id, delay=min(60.0, 5.0 * sub.attempts))
    return sub.status


def _append_reason(old: str, new: str) -> str:
    return (old + "\n" + new).strip()[-8000:]


def _give_up(session: Session, sub: Submission, reason: str) -> None:
    if reason:
        sub.error_reason = _append_reason(sub.error_reason, reason)
    sub.status = SubmissionStatus.ERROR.value
    sub.message = "The grader failed on this submission (not your fault); the instructors have been told."
    sub.finished_at = utcnow()
    sub.claim = None
    sub.lease_expires_at = None
    sub.current_check = ""
    session.commit()


def sweep(session: Session, settings: ServerSettings, dispatch: Dispatch, *, now: datetime | None = None) -> dict[str, int]:
    """Requeue running submissions whose worker went silent, and resend queued ones never picked up."""
    now = now or utcnow()
    counts = {"requeued": 0, "resent": 0, "errored": 0}
    stale = list(session.scalars(select(Submission).where(Submission.status == R, Submission.lease_expires_at < now)))
    for sub in stale:
        reason = f"attempt {sub.attempts}: worker {sub.worker or '?'} went silent (lease expired)"
        if sub.attempts >= settings.max_attempts:
            _give_up(session, sub, reason)
            counts["errored"] += 1
            continue
        res = session.execute(update(Submission).where(Submission.id == sub.id, Submission.claim == sub.claim)
                              .values(status=Q, claim=None, lease_expires_at=None, current_check="",
                                      error_reason=_append_reason(sub.error_reason, reason)))
        session.commit()
        if res.rowcount == 1:  # type: ignore[attr-defined]
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


# ---------------------------------------------------------------- instructors


def regrade(session: Session, dispatch: Dispatch, *, assignment: Assignment, requested_by: User,
            submission_ids: list[int], scope: str) -> Regrade:
    """Queue the given submissions again (results are kept until the new ones arrive)."""
    rg = Regrade(assignment_id=assignment.id, requested_by=requested_by.id, scope=scope[:200],
                 total=len(submission_ids))
    session.add(rg)
    session.flush()
    now = utcnow()
    for i in range(0, len(submission_ids), 500):
        chunk = submission_ids[i:i + 500]
        session.execute(update(Submission).where(Submission.id.in_(chunk)).values(
            status=Q, queued_at=now, enqueued_at=None, attempts=0, claim=None, lease_expires_at=None,
            current_check="", checks_done=0, regrade_id=rg.id))
    session.commit()
    for sid in submission_ids[:INLINE_SENDS]:
        send(session, dispatch, sid)
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
    rows = dict(session.execute(select(Submission.status, func.count(Submission.id))
                                .where(Submission.regrade_id == rg.id).group_by(Submission.status)).all())
    done = sum(v for k, v in rows.items() if k in FINAL)
    return {"id": rg.id, "scope": rg.scope, "total": rg.total, "done": done, "by_status": rows,
            "created_at": rg.created_at.isoformat()}


def latest_regrades(session: Session, limit: int = 5) -> list[Regrade]:
    return list(session.scalars(select(Regrade).order_by(Regrade.id.desc()).limit(limit)))


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
    counts = dict(session.execute(select(Submission.status, func.count(Submission.id))
                                  .where(Submission.status.in_([Q, R])).group_by(Submission.status)).all())
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
