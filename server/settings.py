"""Server settings: read once from the environment (prefix ``AUTOGRADER_``) into one typed object.

The web app needs everything; a grading worker needs only ``broker_url``, ``internal_url`` and
``internal_secret`` (no database credentials, no shared disk). The machinery (variable names, ``*_FILE``
secrets, errors naming the variable) is grader.settings.SettingsBase's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from grader.settings import Flag, SettingsBase, SettingsError, reading

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20
SECRET_FIELDS = frozenset({"secret_key", "internal_secret", "database_url", "broker_url", "metrics_token"})
"""Settings that may hold a password or a token: each may come from AUTOGRADER_<NAME>_FILE instead."""

_GENERATE: ContextVar[bool] = ContextVar("autograder_generate_secrets", default=True)


def _persistent_secret(path: Path, *, generate: bool = True) -> str:
    """A random secret kept in the instance folder so restarts keep sessions and worker auth valid
    ("" if there is none yet and `generate` is off)."""
    if path.is_file():
        return path.read_text().strip()
    if not generate:
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


class ServerSettings(SettingsBase):
    SECRETS: ClassVar[frozenset[str]] = SECRET_FIELDS

    instance_dir: Path = PROJECT_ROOT / "instance"
    database_url: str = Field(default="", repr=False)
    """Default: SQLite in the instance folder."""
    broker_url: str = Field(default="", repr=False)
    """Default: Kombu's SQLAlchemy transport on a second SQLite file in the instance folder."""
    secret_key: str = Field(default="", repr=False)
    """Default: generated once into <instance>/secret_key."""
    internal_secret: str = Field(default="", repr=False)
    """Shared secret for the worker <-> web internal endpoints (HMAC-SHA256); default: generated once into
    <instance>/internal_secret."""
    internal_url: str = "http://127.0.0.1:5000"
    """Base URL the workers use to reach the web app's internal endpoints."""
    upload_dir: Path = Path("")
    """Default: <instance>/uploads."""
    secure_cookies: Flag = True
    max_content_length: int = 100 * MiB + MiB
    """Hard cap on any request body; per-assignment upload limits are checked below this."""
    max_attempts: int = 3
    """Gradings started per submission before it ends as error."""
    reuse_verdicts: bool = True
    """A student's upload reuses the verdicts of their own earlier uploads for checks whose inputs are
    byte-identical (grader.reuse; AUTOGRADER_REUSE_VERDICTS=0 judges every check of every upload)."""
    lease_seconds: float = 90.0
    """A running submission whose worker has not been heard from for this long is requeued."""
    heartbeat_seconds: float = 10.0
    requeue_after_seconds: float = 3600.0
    """A queued submission whose message was sent this long ago without a claim is sent again."""
    sweep_interval_seconds: float = 15.0
    visibility_timeout: int = 7200
    """Redis: unacknowledged messages are redelivered after this; above the longest grading."""
    login_max_failures: int = 5
    login_window_seconds: int = 900
    worker_concurrency: int = 1
    worker_queues: str = "quick,slow,rerun"
    """`autograder worker`: the lanes' queues this worker takes wake-ups from (comma separated; quick, slow, rerun).
    A wake-up of the quick queue grades quick rows only (a pool serving only "quick" keeps its capacity for students'
    first verdicts); one of the slow or rerun queue grades a quick row first, then a slow one, then a rerun one."""
    task_soft_time_limit: float = 1200.0
    """Seconds a grading task may run before Celery stops it (soft; the hard limit is 2 minutes later); above the
    longest grading: 600 s of sandbox wall time (rpz-cnn), 120 s of follow-up round, the reference runs."""
    trusted_proxies: int = 0
    """Reverse proxies in front of the web app whose X-Forwarded-For/-Proto to trust (rate limits, https)."""
    metrics_token: str = Field(default="", repr=False)
    """Bearer token for Prometheus to scrape /metrics; empty: the endpoint is off (404)."""
    flag_min_uploads: int = 20
    """A student is flagged for many uploads at or above max(this, 3 x the median of the class)."""
    bind: str = "127.0.0.1:8000"
    """`autograder web`: the address gunicorn listens on (its --bind; AUTOGRADER_BIND)."""
    web_workers: int = 2
    """`autograder web`: gunicorn processes (its --workers; AUTOGRADER_WEB_WORKERS)."""

    @model_validator(mode="before")
    @classmethod
    def _instance_defaults(cls, data: Any) -> Any:
        """Unset database, broker, secrets and upload folder: in (or generated into) the instance folder."""
        if not isinstance(data, dict):
            return data
        data = cls.by_field_name(data)
        instance = Path(data.get("instance_dir") or PROJECT_ROOT / "instance").resolve()
        data["instance_dir"] = instance
        generate = _GENERATE.get()
        defaults: dict[str, Callable[[], object]] = {
            "database_url": lambda: f"sqlite:///{instance / 'autograder.sqlite3'}",
            "broker_url": lambda: f"sqla+sqlite:///{instance / 'broker.sqlite3'}",
            "secret_key": lambda: _persistent_secret(instance / "secret_key", generate=generate),
            "internal_secret": lambda: _persistent_secret(instance / "internal_secret", generate=generate),
            "upload_dir": lambda: instance / "uploads",
        }
        for name, make in defaults.items():
            if not data.get(name):
                data[name] = make()
        return data

    @field_validator("upload_dir")
    @classmethod
    def _resolved(cls, value: Path) -> Path:
        return value.resolve()

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        names = [q.strip() for q in value.split(",") if q.strip()]
        bad = [q for q in names if q not in ("quick", "slow", "rerun")]
        if bad or not names:
            raise ValueError(f"queues are quick, slow and/or rerun, comma separated (not {value!r})")
        return ",".join(dict.fromkeys(names))

    @field_validator("internal_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def load(cls, *, generate_secrets: bool = True) -> ServerSettings:
        """The settings from the environment; without `generate_secrets`, an unset secret with no file in the
        instance folder stays "" (a worker's preflight asks whether it has the internal secret)."""
        token = _GENERATE.set(generate_secrets)
        try:
            with reading(None):
                return cls()
        finally:
            _GENERATE.reset(token)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def flask_config(self) -> dict[str, Any]:
        """The Flask config mapping derived from these settings."""
        return {
            "SECRET_KEY": self.secret_key,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "SESSION_COOKIE_SECURE": self.secure_cookies,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": self.secure_cookies,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "WTF_CSRF_TIME_LIMIT": None,
        }


class ClientSettings(SettingsBase):
    """`autograder submit` (a student's machine: no instance folder, no server secrets)."""

    SECRETS: ClassVar[frozenset[str]] = frozenset({"token"})

    token: str = Field(default="", repr=False)
    """The API token (AUTOGRADER_TOKEN, or a file named by AUTOGRADER_TOKEN_FILE)."""


@cache
def settings() -> ServerSettings:
    """The process-wide settings, read from the environment on first use."""
    return ServerSettings()


@cache
def client_settings() -> ClientSettings:
    return ClientSettings()


__all__ = ["MiB", "PROJECT_ROOT", "SECRET_FIELDS", "ClientSettings", "ServerSettings", "SettingsError",
           "client_settings", "settings"]
