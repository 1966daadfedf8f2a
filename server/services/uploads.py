"""Upload policy (open, closed, limit, size) and storing an upload as a queued submission."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import storage
from server.models import Assignment, Submission, User, utcnow
from server.services.dispatch import Dispatch, send
from server.services.leaderboard import bump_leaderboard
from server.settings import ServerSettings


class UploadRefused(Exception):
    """An upload refused before anything is stored; `message` is for the student."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = status

    @property
    def status(self) -> int:
        """The HTTP status of the refusal (not a submission's status: none was stored)."""
        return self.http_status


def fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} bytes"


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
                  assignment: Assignment, stream: IO[bytes], filename: str, via: str = "web") -> Submission:
    """Store an upload and queue it; on any refusal or failure nothing is kept (no row, no file)."""
    used = check_can_upload(session, user, assignment)
    if not filename:
        raise UploadRefused("Choose a zip file to upload.")
    try:
        stored = storage.save_stream(settings.upload_dir, cast(BinaryIO, stream), limit=assignment.max_upload_bytes)
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
