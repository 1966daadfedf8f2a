"""Lanes and fair share: which queued submission a worker grades next. The database decides, Celery carries wake-ups.

A Celery message is a wake-up ("grade the best waiting submission"), not a fixed submission: the worker that takes
one claims the first row of `claim_order()` (a compare-and-swap, services.claims.claim_next).

The order (one worker's claim sequence):

1. Lanes: every quick row (students' uploads and the quick phase of their grading, an instructor's regrade of one
   submission) before any slow row (the slow phase of a student's grading: the hidden-set accuracy checks, after
   the quick verdicts are in), before any rerun row (an instructor's regrade of many): a regrade-all never delays
   students, and a student's accuracy checks never delay another student's first verdicts.
2. Within a lane, fair share per student: each student's candidate is their oldest waiting row (queued_at, id);
   students are ranked by
   - whether they have a submission running now (students with none first),
   - then the time since which they have waited for a verdict: the later of their candidate's queued_at and their
     last verdict in this lane (a student graded a moment ago has waited since that moment; in the quick lane a
     quick phase's verdicts count, i.e. a slow row's queued_at, which is when its quick phase ended),
   - then the candidate's queued_at and id.
   So a burst of 20 uploads by one student gets one slot per round: each of the other students is served
   before the burster's second.
3. Which lanes a wake-up may claim from (`CLAIMS_FROM`): a wake-up of the quick queue claims quick rows only, so a
   pool serving only `quick` never runs a slow phase or a regrade (its capacity stays with students' first
   verdicts); a wake-up of the slow or rerun queue claims from every lane in the order above (a quick row first).
   When such a wake-up takes a quick row, the web app sends its queue a replacement wake-up (services.claims), as
   the quick row's own wake-up is left in the quick queue, where it cannot claim slow or rerun rows.

Only due rows (retry_at over) whose wake-up was sent (enqueued_at set) are claimed: every claim consumes one
wake-up and one sent row, so the count of wake-ups in the broker never falls below the count of sent rows; a row
nobody has sent a wake-up for (regrade backlog, a due retry) waits for the sweeper (services.retries) to send it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from server.models import Submission, SubmissionStatus, WorkerSeen, utcnow

Q, R = SubmissionStatus.QUEUED, SubmissionStatus.RUNNING
FINAL = (SubmissionStatus.GRADED, SubmissionStatus.REJECTED, SubmissionStatus.ERROR)


class Lane(StrEnum):
    QUICK = "quick"
    """Students' uploads (their grading's quick phase, or the whole grading: services.phases) and an instructor's
    regrade of one submission."""
    SLOW = "slow"
    """The slow phase of a student's grading (hidden-set accuracy), queued when its quick phase ended: taken only
    when no quick row waits."""
    RERUN = "rerun"
    """An instructor's regrade of many: taken only when no quick or slow row waits."""


LANES: tuple[Lane, ...] = (Lane.QUICK, Lane.SLOW, Lane.RERUN)
"""In claim order."""

CLAIMS_FROM: dict[Lane, tuple[Lane, ...]] = {Lane.QUICK: (Lane.QUICK,), Lane.SLOW: LANES, Lane.RERUN: LANES}
"""The lanes a wake-up of each queue may claim from (in claim order)."""


def lane_of(value: str) -> Lane:
    try:
        return Lane(value)
    except ValueError:
        return Lane.QUICK


def claimable(now: datetime):  # type: ignore[no-untyped-def]
    """Queued rows a wake-up may claim: due (backoff over) and sent."""
    return and_(Submission.status == Q, or_(Submission.retry_at.is_(None), Submission.retry_at <= now),
                Submission.enqueued_at.is_not(None))


def _ranked(lane: Lane, where) -> Select:  # type: ignore[no-untyped-def,type-arg]
    """Each student's candidate row in `lane` among the rows matching `where`, with its fair-share sort key."""
    rows = (select(Submission.id, Submission.user_id, Submission.queued_at,
                   func.row_number().over(partition_by=Submission.user_id,
                                          order_by=(Submission.queued_at, Submission.id)).label("rn"))
            .where(where, Submission.lane == lane.value).subquery())
    other = aliased(Submission)
    busy = exists().where(other.user_id == rows.c.user_id, other.status == R)
    final = other.status.in_(FINAL)
    at: ColumnElement[datetime | None] | InstrumentedAttribute[datetime | None]
    if lane is Lane.QUICK:  # a quick phase's verdicts count: a slow row not yet final got them at its queued_at
        verdict = or_(and_(final, other.lane.in_([Lane.QUICK.value, Lane.SLOW.value])),
                      and_(~final, other.lane == Lane.SLOW.value))
        at = case((final, other.finished_at), else_=other.queued_at)
    else:
        verdict, at = and_(final, other.lane == lane.value), other.finished_at
    last_verdict = (select(func.max(at)).where(other.user_id == rows.c.user_id, verdict).scalar_subquery())
    since = case((last_verdict > rows.c.queued_at, last_verdict), else_=rows.c.queued_at)
    return (select(rows.c.id).where(rows.c.rn == 1)
            .order_by(case((busy, 1), else_=0), since, rows.c.queued_at, rows.c.id))


def claim_order(session: Session, *, now: datetime | None = None, limit: int = 5,
                lanes: tuple[Lane, ...] = LANES) -> list[int]:
    """The ids a wake-up should try to claim, best first (at most `limit`: the next ones if others win the race),
    from `lanes` (in claim order; see CLAIMS_FROM)."""
    now = now or utcnow()
    out: list[int] = []
    for lane in lanes:
        out += list(session.scalars(_ranked(lane, claimable(now)).limit(limit - len(out))))
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class Waiting:
    id: int
    user_id: int
    lane: Lane
    queued_at: datetime


def fair_sequence(waiting: list[Waiting], busy_users: set[int], last_verdict: dict[tuple[int, Lane], datetime]) \
        -> list[int]:
    """The order in which one worker would grade `waiting` if nothing else arrived: lane by lane, round by round
    (a student's k-th waiting row is in round k), and within a round by the fair-share key of `_ranked`."""
    out: list[int] = []
    for lane in LANES:
        per_user: dict[int, list[Waiting]] = {}
        for w in sorted((w for w in waiting if w.lane is lane), key=lambda w: (w.queued_at, w.id)):
            per_user.setdefault(w.user_id, []).append(w)

        def key(uid: int, lane: Lane = lane, per_user: dict[int, list[Waiting]] = per_user) \
                -> tuple[int, datetime, datetime, int]:
            first = per_user[uid][0]
            lv = last_verdict.get((uid, lane))
            since = lv if lv is not None and lv > first.queued_at else first.queued_at
            return (1 if uid in busy_users else 0, since, first.queued_at, first.id)

        users = sorted(per_user, key=key)
        rounds = max((len(v) for v in per_user.values()), default=0)
        for k in range(rounds):
            out += [per_user[u][k].id for u in users if len(per_user[u]) > k]
    return out


def positions(session: Session) -> dict[int, int]:
    """Every queued submission's fair-share position (1 = graded next)."""
    waiting = [Waiting(i, u, lane_of(lane), q) for i, u, lane, q in session.execute(
        select(Submission.id, Submission.user_id, Submission.lane, Submission.queued_at).where(Submission.status == Q))]
    if not waiting:
        return {}
    users = {w.user_id for w in waiting}
    busy = set(session.scalars(select(Submission.user_id).where(Submission.status == R,
                                                               Submission.user_id.in_(users)).distinct()))
    last = {(u, lane_of(lane)): t for u, lane, t in session.execute(
        select(Submission.user_id, Submission.lane, func.max(Submission.finished_at))
        .where(Submission.user_id.in_(users), Submission.status.in_(FINAL))
        .group_by(Submission.user_id, Submission.lane)) if t is not None}
    # In the quick lane, a quick phase's verdicts count too: the slow rows' last verdict, and the queued_at of a
    # slow row not yet final (when its quick phase ended), as in _ranked.
    pending = dict(session.execute(
        select(Submission.user_id, func.max(Submission.queued_at))
        .where(Submission.user_id.in_(users), Submission.lane == Lane.SLOW.value, Submission.status.in_([Q, R]))
        .group_by(Submission.user_id)).all())
    for u in users:
        times = [t for t in (last.get((u, Lane.QUICK)), last.get((u, Lane.SLOW)), pending.get(u)) if t is not None]
        if times:
            last[(u, Lane.QUICK)] = max(times)
    return {sid: i + 1 for i, sid in enumerate(fair_sequence(waiting, busy, last))}


RECENT_GRADINGS = 20
"""The ETA is learned from this many of the assignment's latest finished gradings."""
DEFAULT_GRADING_SECONDS = 30.0
"""Before any grading of the assignment has finished."""


def typical_grading_seconds(session: Session, assignment_id: int) -> float:
    """Median duration (started -> finished) of the assignment's last `RECENT_GRADINGS` finished gradings."""
    rows = session.execute(
        select(Submission.started_at, Submission.finished_at)
        .where(Submission.assignment_id == assignment_id, Submission.status.in_(FINAL[:2]),
               Submission.started_at.is_not(None), Submission.finished_at.is_not(None))
        .order_by(Submission.finished_at.desc()).limit(RECENT_GRADINGS)).all()
    durations = [(f - s).total_seconds() for s, f in rows if s is not None and f is not None and f >= s]
    return statistics.median(durations) if durations else DEFAULT_GRADING_SECONDS


def active_workers(session: Session, *, now: datetime | None = None) -> int:
    now = now or utcnow()
    return session.scalar(select(func.count()).select_from(WorkerSeen)
                          .where(WorkerSeen.last_seen > now - timedelta(seconds=60))) or 0


def eta_seconds(session: Session, sub: Submission, position: int | None) -> float | None:
    """Seconds until `sub`'s verdict: median recent grading time x position / active workers (at least 1)."""
    if position is None:
        return None
    return round(typical_grading_seconds(session, sub.assignment_id) * position / max(1, active_workers(session)), 1)
