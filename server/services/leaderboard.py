"""Leaderboard: one counted submission per student (best or latest), ranked by the assignment's metric.

Ties go to the earlier submission. One SQL query with a window function, so it stays fast with thousands
of students and tens of thousands of submissions.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, true, update
from sqlalchemy.orm import Session

from server.models import Assignment, Counts, Role, Submission, User, Visibility, utcnow


@dataclass(frozen=True, slots=True)
class Row:
    rank: int
    user_id: int
    username: str
    name: str
    nickname: str
    submission_id: int
    value: float
    metrics: dict[str, float]
    score: float | None
    passed: bool | None
    uploads: int
    at: datetime


def _database(session: Session) -> str:
    """The URL of the session's database (part of cache keys)."""
    bind = session.get_bind()
    return str(bind.engine.url)


def bump_leaderboard(session: Session, assignment_id: int, changed: Submission | None = None) -> None:
    """Invalidate cached leaderboards of the assignment (part of the caller's transaction); `changed` is
    marked with the new version, so caches re-rank only its student."""
    version = session.execute(update(Assignment).where(Assignment.id == assignment_id)
                              .values(lb_version=Assignment.lb_version + 1)
                              .returning(Assignment.lb_version)).scalar_one()
    if changed is not None:
        changed.lb_changed = version


def columns(assignment: Assignment) -> list[tuple[str, str]]:
    """(metric, label) pairs from the grader spec, e.g. ("finetune.orig", "ORIG")."""
    try:
        from grader.assignments import load_assignment

        spec = load_assignment(assignment.name)
        return [(c.metric, c.label) for c in spec.leaderboard_columns]
    except Exception:
        return []


def metric_of(assignment: Assignment) -> str | None:
    try:
        from grader.assignments import load_assignment

        return load_assignment(assignment.name).leaderboard_metric
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class _Cached:
    version: int
    rows: list[Row]
    full_at: float  # time.monotonic() of the last full ranking


_CACHE: dict[tuple[str, int, str, str, bool], _Cached] = {}
_CACHE_LOCK = threading.Lock()
FULL_EVERY_S = 60.0
"""A full re-ranking at least this often, for changes that carry no row mark (a renamed student, a role)."""
MAX_PATCH_STUDENTS = 200
"""Beyond this many changed students one full ranking is cheaper than patching."""


def ranked(session: Session, assignment: Assignment, *, counts: str | None = None,
           cutoff: datetime | None = None, passed_only: bool = False) -> list[Row]:
    """Students' rows in rank order (instructors' test uploads never rank); `cutoff` keeps only submissions uploaded at or before it (challenge deadline).

    Cached per process, keyed on the database and the assignment's `lb_version` (one primary-key read per
    request); the database is part of the key because ids and versions repeat across databases. When the
    version moved on, only the students with submissions marked since (`Submission.lb_changed`) are
    ranked again and merged in, so a deadline burst of results costs a small query per change instead of
    ranking every submission of the course.
    """
    counts = counts or assignment.leaderboard_counts
    database = _database(session)
    key = (database, assignment.id, counts, cutoff.isoformat() if cutoff else "", passed_only)
    version = _version(session, assignment)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit.version == version:
        return hit.rows
    now = time.monotonic()
    rows: list[Row] | None = None
    full_at = now
    if hit is not None and hit.version < version and now - hit.full_at < FULL_EVERY_S:
        changed = set(session.scalars(select(Submission.user_id).distinct().where(
            Submission.assignment_id == assignment.id, Submission.lb_changed > hit.version)))
        if len(changed) <= MAX_PATCH_STUDENTS:
            fresh = _ranked(session, assignment, counts=counts, cutoff=cutoff, passed_only=passed_only,
                            users=changed) if changed else []
            rows = _merge(hit.rows, changed, fresh)
            full_at = hit.full_at
    if rows is None:
        rows = _ranked(session, assignment, counts=counts, cutoff=cutoff, passed_only=passed_only)
    with _CACHE_LOCK:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = _Cached(version, rows, full_at)
    return rows


def _version(session: Session, assignment: Assignment) -> int:
    """The assignment's leaderboard version as committed now (not as loaded with `assignment`)."""
    return session.scalar(select(Assignment.lb_version).where(Assignment.id == assignment.id)) or 0


def _order(r: Row) -> tuple[float, datetime, int]:
    return -r.value, r.at, r.submission_id


def _merge(old: list[Row], changed: set[int], fresh: list[Row]) -> list[Row]:
    """`old` with the rows of the `changed` students replaced by `fresh` ones, ranked again."""
    merged = sorted([r for r in old if r.user_id not in changed] + fresh, key=_order)
    return [r if r.rank == i else replace(r, rank=i) for i, r in enumerate(merged, start=1)]


def _ranked(session: Session, assignment: Assignment, *, counts: str, cutoff: datetime | None,
            passed_only: bool, users: set[int] | None = None) -> list[Row]:
    """The ranking computed from the submissions (of `users` only when given: ranks then count from 1
    among them and are only meaningful after `_merge`)."""
    eligible: ColumnElement[bool] = Submission.lb_value.is_not(None)
    if cutoff is not None:
        eligible = and_(eligible, Submission.created_at <= cutoff)
    if passed_only:
        eligible = and_(eligible, Submission.passed.is_(True))
    first = case((eligible, 0), else_=1)
    order = ((first, Submission.lb_value.desc(), Submission.created_at.asc(), Submission.id.asc())
             if counts == Counts.BEST.value else (first, Submission.created_at.desc(), Submission.id.desc()))
    inner = (select(Submission.id.label("sid"), Submission.user_id.label("uid"),
                    eligible.label("ok"),
                    func.row_number().over(partition_by=Submission.user_id, order_by=order).label("rn"),
                    func.count(Submission.id).over(partition_by=Submission.user_id).label("n"))
             .where(Submission.assignment_id == assignment.id,
                    Submission.user_id.in_(users) if users is not None else true())
             .subquery())
    q = (select(Submission.id, Submission.user_id, Submission.lb_value, Submission.lb_metrics, Submission.score,
                Submission.passed, Submission.created_at, User.username, User.name, User.nickname, inner.c.n)
         .join(inner, inner.c.sid == Submission.id).join(User, User.id == Submission.user_id)
         .where(inner.c.rn == 1, inner.c.ok.is_(True), User.role == Role.STUDENT.value)
         .order_by(Submission.lb_value.desc(), Submission.created_at.asc(), Submission.id.asc()))
    rows: list[Row] = []
    for i, r in enumerate(session.execute(q).all(), start=1):
        metrics = {k: float(v) for k, v in json.loads(r.lb_metrics or "{}").items() if v is not None}
        rows.append(Row(rank=i, user_id=r.user_id, username=r.username, name=r.name, nickname=r.nickname,
                        submission_id=r.id, value=float(r.lb_value), metrics=metrics, score=r.score,
                        passed=r.passed, uploads=int(r.n), at=r.created_at))
    return rows


def hidden_for(assignment: Assignment, viewer: User, *, now: datetime | None = None) -> bool:
    if viewer.is_instructor or assignment.leaderboard_visibility != Visibility.HIDDEN.value:
        return False
    deadline = assignment.challenge_deadline
    return deadline is None or (now or utcnow()) < deadline


def etag(session: Session, assignment: Assignment, viewer: User, *, now: float | None = None) -> str:
    """Changes whenever `board` for this viewer may: a new version, other settings, the deadline passing,
    and at least once a minute (the full re-ranking that picks up renamed students)."""
    parts = (_database(session), assignment.id, _version(session, assignment), viewer.id, viewer.role,
             assignment.title, assignment.leaderboard_visibility, assignment.leaderboard_counts, assignment.challenge_deadline,
             hidden_for(assignment, viewer), int((time.time() if now is None else now) // FULL_EVERY_S))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def board(session: Session, assignment: Assignment, viewer: User) -> dict[str, Any]:
    """The leaderboard as the viewer may see it (JSON-ready)."""
    cols = columns(assignment)
    out: dict[str, Any] = {
        "assignment": assignment.name, "title": assignment.title, "counts": assignment.leaderboard_counts,
        "visibility": assignment.leaderboard_visibility, "metric": metric_of(assignment),
        "columns": [{"metric": m, "label": label} for m, label in cols],
        "challenge_deadline": assignment.challenge_deadline.isoformat() if assignment.challenge_deadline else None,
        "hidden": hidden_for(assignment, viewer), "rows": [], "generated_at": utcnow().isoformat(),
    }
    if out["hidden"]:
        return out
    anonymous = assignment.leaderboard_visibility != Visibility.PUBLIC.value and not viewer.is_instructor
    for r in ranked(session, assignment):
        me = r.user_id == viewer.id
        who = r.nickname if anonymous else (r.name or r.username)
        out["rows"].append({
            "rank": r.rank, "name": who, "me": me, "value": round(r.value, 6),
            "metrics": {m: round(r.metrics[m], 6) if m in r.metrics else None for m, _ in cols},
            "uploads": r.uploads, "at": r.at.isoformat(),
            "submission_id": r.submission_id if (me or viewer.is_instructor) else None,
        })
    return out
