"""Users, roster import, first-login tokens, login rate limiting and API tokens."""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.orm import Session

from server.models import ApiToken, LoginAttempt, Role, User, utcnow
from server.security import check_password, hash_password, new_token, token_digest

SETUP_TOKEN_DAYS = 14
MIN_PASSWORD = 8
_ADJ = ("amber", "brave", "calm", "deft", "eager", "fuzzy", "gentle", "happy", "icy", "jolly", "keen", "lucky",
        "mellow", "nimble", "odd", "plucky", "quiet", "rapid", "sunny", "tidy", "upbeat", "vivid", "witty", "zesty")
_NOUN = ("otter", "lynx", "heron", "badger", "falcon", "gecko", "ibex", "koala", "lemur", "marten", "newt",
         "ocelot", "panda", "quokka", "raven", "stoat", "tapir", "vole", "walrus", "yak", "zebu", "bison")


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message is for the user."""


class TooManyAttempts(AccountError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins. Try again in {max(1, math.ceil(retry_after / 60))} minute(s).")
        self.retry_after = retry_after
        """Seconds until the oldest failure that keeps the limit leaves the window (for Retry-After)."""


@dataclass(frozen=True, slots=True)
class ImportedUser:
    user: User
    setup_token: str | None
    """Token for the first-login link, None when the user already had a password."""
    created: bool


def _nickname(session: Session) -> str:
    rng = random.SystemRandom()
    while True:
        nick = f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}-{rng.randint(10, 99)}"
        if session.scalar(select(User.id).where(User.nickname == nick)) is None:
            return nick


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def add_user(session: Session, username: str, *, role: str = Role.STUDENT.value, name: str = "",
             email: str = "", password: str | None = None) -> tuple[User, str | None]:
    """Create a user; returns it with a first-login token when no password was given."""
    username = username.strip().lower()
    if not username or len(username) > 80 or any(c.isspace() for c in username):
        raise AccountError(f"invalid username {username!r}")
    if role not in (Role.STUDENT.value, Role.INSTRUCTOR.value):
        raise AccountError(f"invalid role {role!r} (student or instructor)")
    if find_user(session, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, role=role, name=name.strip(), email=email.strip(), nickname=_nickname(session))
    session.add(user)
    token = None
    if password is not None:
        set_password(user, password)
    else:
        token = issue_setup_token(user)
    session.flush()
    return user, token


def set_password(user: User, password: str) -> None:
    """A new password; every session the user had ends (the caller commits)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"The password must have at least {MIN_PASSWORD} characters.")
    user.password_hash = hash_password(password)
    user.setup_token_hash = None
    user.setup_token_expires_at = None
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every login session of `user`, on every device (the caller commits): sessions carry the user's
    session version (User.get_id), which no longer matches."""
    user.session_version = (user.session_version or 0) + 1


def issue_setup_token(user: User, *, now: datetime | None = None) -> str:
    token = new_token()
    user.setup_token_hash = token_digest(token)
    user.setup_token_expires_at = (now or utcnow()) + timedelta(days=SETUP_TOKEN_DAYS)
    return token


def user_for_setup_token(session: Session, token: str) -> User | None:
    user = session.scalar(select(User).where(User.setup_token_hash == token_digest(token)))
    if user is None or user.setup_token_expires_at is None or user.setup_token_expires_at < utcnow():
        return None
    return user


def complete_setup(session: Session, token: str, password: str) -> User:
    user = user_for_setup_token(session, token)
    if user is None:
        raise AccountError("This link is invalid or has expired. Ask your instructor for a new one.")
    set_password(user, password)
    session.commit()
    return user


def import_roster(session: Session, text: str) -> list[ImportedUser]:
    """Import a CSV roster with a header: username (required), name, email, role (default student).

    Existing users are updated (name, email), never deleted; new users get a first-login token.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or "username" not in [f.strip().lower() for f in reader.fieldnames]:
        raise AccountError("The roster CSV needs a header row with at least a 'username' column.")
    out: list[ImportedUser] = []
    for lineno, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if not row.get("username"):
            continue
        role = row.get("role") or Role.STUDENT.value
        existing = find_user(session, row["username"])
        if existing is not None:
            existing.name = row.get("name") or existing.name
            existing.email = row.get("email") or existing.email
            out.append(ImportedUser(existing, None, False))
            continue
        try:
            user, token = add_user(session, row["username"], role=role, name=row.get("name", ""),
                                   email=row.get("email", ""))
        except AccountError as exc:
            session.rollback()
            raise AccountError(f"line {lineno}: {exc}") from exc
        out.append(ImportedUser(user, token, True))
    session.commit()
    return out


def authenticate(session: Session, username: str, password: str, *, ip: str, max_failures: int,
                 window_seconds: int) -> User | None:
    """Check a login; raises TooManyAttempts while the user or the address is rate limited.

    The attempt is counted (as a failure until the password proves right) before the password is checked,
    in one locked step with the count of recent failures (`_count_and_record`), so parallel guesses cannot
    all pass the count first. Unknown, disabled and not yet set-up accounts cost the same password hash.
    """
    username = username.strip().lower()[:80]
    attempt_id = _count_and_record(session, username, ip[:64], max_failures=max_failures,
                                   window_seconds=window_seconds)
    user = find_user(session, username)
    pw_hash = user.password_hash if user is not None and user.active else None
    session.commit()  # no database connection is held while the password is hashed
    if not check_password(pw_hash, password):
        return None
    session.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True))
    session.commit()
    return user


IP_FACTOR = 4
"""An address may fail IP_FACTOR x max_failures times per window (several users behind one NAT)."""


def _count_and_record(session: Session, username: str, ip: str, *, max_failures: int, window_seconds: int) -> int:
    """Record a login attempt on `username` from `ip` as failed unless the limits are reached (then raise
    TooManyAttempts, recording nothing); the new attempt's id. Purges attempts older than the window.

    One transaction that holds a lock on both keys while it counts and inserts: on PostgreSQL advisory
    locks on the keys (taken in a fixed order); on SQLite the database's write lock, which the purge, the
    transaction's first statement, takes.
    """
    session.commit()  # end whatever the request read before: the lock must come first in its transaction
    now = utcnow()
    since = now - timedelta(seconds=window_seconds)
    if session.get_bind().dialect.name == "postgresql":
        for key in sorted((f"ip:{ip}", f"user:{username}")):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    old = select(LoginAttempt.id).where(LoginAttempt.at < since).with_for_update(skip_locked=True)
    session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(old)), execution_options={"synchronize_session": False})
    wait = max(_blocked_for(session, LoginAttempt.username == username, max_failures, since, window_seconds),
               _blocked_for(session, LoginAttempt.ip == ip, IP_FACTOR * max_failures, since, window_seconds))
    if wait:
        session.commit()
        raise TooManyAttempts(wait)
    attempt = LoginAttempt(username=username, ip=ip, success=False, at=now)
    session.add(attempt)
    session.commit()
    return attempt.id


def _blocked_for(session: Session, key: ColumnElement[bool], limit: int, since: datetime, window_seconds: int) -> int:
    """Seconds until fewer than `limit` failures matching `key` remain in the window; 0 if fewer already."""
    failed = (LoginAttempt.success.is_(False), LoginAttempt.at >= since, key)
    count = session.scalar(select(func.count(LoginAttempt.id)).where(*failed)) or 0
    if count < limit:
        return 0
    # The limit lifts when the (count - limit + 1)-th oldest failure leaves the window.
    lifts = session.scalar(select(LoginAttempt.at).where(*failed).order_by(LoginAttempt.at, LoginAttempt.id)
                           .offset(count - limit).limit(1))
    left = (lifts + timedelta(seconds=window_seconds) - utcnow()).total_seconds() if lifts else window_seconds
    return max(1, math.ceil(left))


def create_api_token(session: Session, user: User, *, name: str = "", days: int | None = 180) -> str:
    """A new API token for `user` (only its digest is stored); returns the token itself."""
    token = new_token()
    expires = utcnow() + timedelta(days=days) if days else None
    session.add(ApiToken(user_id=user.id, name=name[:100], token_hash=token_digest(token), expires_at=expires))
    session.commit()
    return token


def user_for_api_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked or (row.expires_at is not None and row.expires_at < utcnow()):
        return None
    if not row.user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now
        session.commit()
    return row.user


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
                                .order_by(ApiToken.id.desc())))


def revoke_token(session: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if there is no such token of theirs."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        return False
    row.revoked = True
    session.commit()
    return True


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))
