"""Server settings: read once from the environment (prefix ``AUTOGRADER_``) into one typed object.

The web app needs everything; a grading worker needs only ``broker_url``, ``internal_url`` and
``internal_secret`` (no database credentials, no shared disk).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from grader.settings import env_flag

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20


def _persistent_secret(path: Path) -> str:
    """A random secret kept in the instance folder so restarts keep sessions and worker auth valid."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


@dataclass(frozen=True, slots=True)
class ServerSettings:
    instance_dir: Path
    database_url: str
    broker_url: str
    secret_key: str
    internal_secret: str
    """Shared secret for the worker <-> web internal endpoints (HMAC-SHA256)."""
    internal_url: str
    """Base URL the workers use to reach the web app's internal endpoints."""
    upload_dir: Path
    secure_cookies: bool = True
    max_content_length: int = 100 * MiB + MiB
    """Hard cap on any request body; per-assignment upload limits are checked below this."""
    max_attempts: int = 3
    """Gradings started per submission before it ends as error."""
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
    task_soft_time_limit: float = 1200.0
    """Seconds a grading task may run before Celery stops it (soft; the hard limit is 2 minutes later); above the
    longest grading: 600 s of sandbox wall time (rpz-cnn), 120 s of follow-up round, the reference runs."""
    trusted_proxies: int = 0
    """Reverse proxies in front of the web app whose X-Forwarded-For/-Proto to trust (rate limits, https)."""
    metrics_token: str = ""
    """Bearer token for Prometheus to scrape /metrics; empty: the endpoint is off (404)."""
    flag_min_uploads: int = 20
    """A student is flagged for many uploads at or above max(this, 3 x the median of the class)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            return env.get(f"AUTOGRADER_{name}", default)

        instance = Path(get("INSTANCE_DIR") or str(PROJECT_ROOT / "instance")).resolve()
        values: dict[str, Any] = {
            "instance_dir": instance,
            "database_url": get("DATABASE_URL") or f"sqlite:///{instance / 'autograder.sqlite3'}",
            "broker_url": get("BROKER_URL") or f"sqla+sqlite:///{instance / 'broker.sqlite3'}",
            "secret_key": get("SECRET_KEY") or _persistent_secret(instance / "secret_key"),
            "internal_secret": get("INTERNAL_SECRET") or _persistent_secret(instance / "internal_secret"),
            "internal_url": (get("INTERNAL_URL") or "http://127.0.0.1:5000").rstrip("/"),
            "upload_dir": Path(get("UPLOAD_DIR") or str(instance / "uploads")).resolve(),
        }
        for f in fields(cls):
            if f.name in values:
                continue
            raw = get(f.name.upper())
            if raw is None:
                continue
            kind = type(f.default)
            values[f.name] = env_flag(raw, default=f.default) if kind is bool else kind(raw)
        return cls(**values)

    def with_(self, **changes: Any) -> ServerSettings:
        return replace(self, **changes)

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


@cache
def settings() -> ServerSettings:
    """The process-wide settings, read from the environment on first use."""
    return ServerSettings.from_env()
