"""Assignments: created from the grader's specs, with course settings kept in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Assignment, Counts, Visibility


class AssignmentError(ValueError):
    pass


def spec_for(name: str):  # type: ignore[no-untyped-def]
    """The grader's AssignmentSpec for `name` (imported lazily: the grader may not be needed here)."""
    from grader.assignments import load_assignment

    return load_assignment(name)


def available_specs() -> list[str]:
    from grader.assignments import list_assignments

    return list_assignments()


def get_assignment(session: Session, name: str) -> Assignment | None:
    return session.scalar(select(Assignment).where(Assignment.name == name))


def list_assignment_rows(session: Session) -> list[Assignment]:
    return list(session.scalars(select(Assignment).order_by(Assignment.created_at)))


def ensure_assignment(session: Session, name: str, **overrides: object) -> Assignment:
    """Create the assignment from its grader spec unless it exists; returns it."""
    existing = get_assignment(session, name)
    if existing is not None:
        return existing
    try:
        spec = spec_for(name)
    except LookupError as exc:
        raise AssignmentError(str(exc)) from exc
    a = Assignment(name=spec.name, title=spec.title, max_upload_bytes=int(spec.limits.upload_bytes))
    for k, v in overrides.items():
        setattr(a, k, v)
    session.add(a)
    session.commit()
    return a


@dataclass(frozen=True, slots=True)
class AssignmentUpdate:
    opens_at: datetime | None
    closes_at: datetime | None
    challenge_deadline: datetime | None
    upload_limit: int
    max_upload_bytes: int
    leaderboard_visibility: str
    leaderboard_counts: str
    bonus_points: str


def update_assignment(session: Session, a: Assignment, u: AssignmentUpdate) -> None:
    if u.leaderboard_visibility not in {v.value for v in Visibility}:
        raise AssignmentError("unknown leaderboard visibility")
    if u.leaderboard_counts not in {c.value for c in Counts}:
        raise AssignmentError("unknown counting rule")
    if u.upload_limit < 1 or u.max_upload_bytes < 1:
        raise AssignmentError("limits must be positive")
    try:
        [float(x) for x in u.bonus_points.split(",") if x.strip()]
    except ValueError as exc:
        raise AssignmentError("bonus points must be numbers separated by commas") from exc
    if u.opens_at and u.closes_at and u.closes_at <= u.opens_at:
        raise AssignmentError("the closing time must be after the opening time")
    for k in AssignmentUpdate.__slots__:
        setattr(a, k, getattr(u, k))
    session.commit()
