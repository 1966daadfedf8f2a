"""Typed SQLAlchemy 2.0 models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(StrEnum):
    STUDENT = "student"
    INSTRUCTOR = "instructor"


class SubmissionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    GRADED = "graded"
    REJECTED = "rejected"
    ERROR = "error"

    @property
    def final(self) -> bool:
        return self in (SubmissionStatus.GRADED, SubmissionStatus.REJECTED, SubmissionStatus.ERROR)


STATUS_CHECK = "submission_status"
STATUS_TYPE = Enum(SubmissionStatus, name=STATUS_CHECK, native_enum=False, create_constraint=True, length=20,
                   values_callable=lambda e: [m.value for m in e], validate_strings=True)
"""VARCHAR(20) with a CHECK constraint on every backend (no PostgreSQL enum type to migrate when a state is added);
rows read back as SubmissionStatus members, which compare equal to their strings."""


class Visibility(StrEnum):
    PUBLIC = "public"
    ANONYMOUS = "anonymous"
    HIDDEN = "hidden"
    """Hidden from students until the challenge deadline."""


class Counts(StrEnum):
    BEST = "best"
    LATEST = "latest"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default=Role.STUDENT.value)
    nickname: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    setup_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Part of the id every login session carries (get_id); bumped at logout and password change, which
    ends every session of the user: a copy of an old session cookie no longer names a user."""

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """What the session stores ("ID:VERSION"); web's user loader accepts only the current version."""
        return f"{self.id}:{self.session_version or 0}"

    @property
    def is_instructor(self) -> bool:
        return self.role == Role.INSTRUCTOR.value

    @property
    def display_name(self) -> str:
        return self.name or self.username


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """One checked (or being checked) password; rows older than the rate-limit window are purged."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"), Index("ix_login_attempts_ip_at", "ip", "at"),
                      Index("ix_login_attempts_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    """The grader's assignment spec name (e.g. "rpz-cnn")."""
    title: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    challenge_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    upload_limit: Mapped[int] = mapped_column(Integer, default=100)
    max_upload_bytes: Mapped[int] = mapped_column(Integer, default=100 * 2**20)
    leaderboard_visibility: Mapped[str] = mapped_column(String(20), default=Visibility.PUBLIC.value)
    leaderboard_counts: Mapped[str] = mapped_column(String(20), default=Counts.BEST.value)
    bonus_points: Mapped[str] = mapped_column(String(100), default="6,5,4,3,2,1")
    lb_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped with every change that can alter the leaderboard (new upload, new result): a cache key."""
    """Bonus by rank at the challenge deadline, comma separated (1st place first)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def bonus_list(self) -> list[float]:
        return [float(x) for x in self.bonus_points.split(",") if x.strip()]

    def is_open(self, now: datetime) -> bool:
        return (self.opens_at is None or now >= self.opens_at) and (self.closes_at is None or now < self.closes_at)


class Regrade(Base):
    __tablename__ = "regrades"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scope: Mapped[str] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("user_id", "assignment_id", "upload_number", name="uq_submission_upload_number"),
        Index("ix_submissions_assignment_status", "assignment_id", "status"),
        Index("ix_submissions_status_queued_at", "status", "queued_at"),
        Index("ix_submissions_assignment_user", "assignment_id", "user_id"),
        Index("ix_submissions_assignment_lb_changed", "assignment_id", "lb_changed"),
        Index("ix_submissions_user_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    upload_number: Mapped[int] = mapped_column(Integer)
    """1 for a student's first upload to this assignment; the upload limit counts these."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    via: Mapped[str] = mapped_column(String(10), default="web")
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    stored_name: Mapped[str] = mapped_column(String(100))
    """Generated file name under the upload folder; never derived from user input."""
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")

    status: Mapped[SubmissionStatus] = mapped_column(STATUS_TYPE, default=SubmissionStatus.QUEUED)
    """Moved only by server.services.lifecycle (its transition table says which moves are legal)."""
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """When the grading message was last handed to the broker (None: to be sent by the sweeper)."""
    lane: Mapped[str] = mapped_column(String(10), default="quick", server_default="quick")
    """Which lane grades it (server.services.lanes): "quick" (students' uploads: their quick phase or whole grading),
    "slow" (the slow phase of a two-phase grading, server.services.phases; its result_json holds the quick phase's
    result until the merge), "rerun" (an instructor's regrade of many); claimed in that order."""
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """A queued retry is not sent (nor claimed) before this time: the backoff after a failed attempt."""
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[str | None] = mapped_column(String(64), default=None)
    """Token of the grading attempt that currently holds this submission."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    worker: Mapped[str] = mapped_column(String(200), default="")
    task_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The Celery task of the current or last attempt."""
    lb_changed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The assignment's `lb_version` when this row last changed what the leaderboard shows (upload, result),
    so a cached leaderboard re-ranks only the students whose rows changed since its version."""
    current_check: Mapped[str] = mapped_column(String(200), default="")
    checks_done: Mapped[int] = mapped_column(Integer, default=0)
    checks_total: Mapped[int] = mapped_column(Integer, default=0)
    partial_checks: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON list of the running attempt's verdicts so far (grader.result.CheckResult), as the worker streams them;
    cleared when an attempt starts or ends (the final result is the truth)."""

    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    passed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    lb_value: Mapped[float | None] = mapped_column(Float, default=None)
    """The assignment's leaderboard metric (rpz-cnn: finetune.weighted), None if not available."""
    lb_metrics: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON of the leaderboard columns' metrics only (small, so the leaderboard never parses full reports)."""
    result_json: Mapped[str | None] = mapped_column(Text, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    """Student-facing message (why rejected, or that the grader failed)."""
    error_reason: Mapped[str] = mapped_column(Text, default="")
    """Instructor-only: why grading failed (engine or infrastructure), kept across retries."""
    regrade_id: Mapped[int | None] = mapped_column(ForeignKey("regrades.id"), default=None)

    user: Mapped[User] = relationship()
    assignment: Mapped[Assignment] = relationship()

    @property
    def state(self) -> SubmissionStatus:
        return SubmissionStatus(self.status)  # a plain string before the row is flushed

    @property
    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_json) if self.result_json else None

    @property
    def partial(self) -> list[dict[str, Any]]:
        """The running attempt's verdicts so far, in the order they came."""
        return json.loads(self.partial_checks) if self.partial_checks else []

    @property
    def metrics(self) -> dict[str, float]:
        r = self.result
        return {k: v for k, v in (r or {}).get("metrics", {}).items() if v is not None}


class CheckVerdict(Base):
    """A check's verdict that a later upload of the same student may reuse (server.services.reuse): the check's
    input key (grader.reuse.keys) and the verdict as its grading's result shows it."""

    __tablename__ = "check_verdicts"
    __table_args__ = (
        UniqueConstraint("submission_id", "check_id", name="uq_check_verdict_submission_check"),
        Index("ix_check_verdicts_user_assignment_key", "user_id", "assignment_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    check_id: Mapped[str] = mapped_column(String(200))
    origin_upload: Mapped[int] = mapped_column(Integer)
    """The student's upload number whose grading judged it (a reused verdict kept again keeps its origin)."""
    result_json: Mapped[str] = mapped_column(Text)
    """grader.result.CheckResult, without `reused_from`."""
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkerSeen(Base):
    __tablename__ = "workers"

    hostname: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submission_id: Mapped[int | None] = mapped_column(Integer, default=None)
