"""/healthz: is this web process able to serve, i.e. are the database and the broker reachable?

Unauthenticated (load balancers and container health checks call it); it names what is down but never
a URL, host name or credential. 200 when both answer, 503 otherwise.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint

from server import web

bp = Blueprint("health", __name__)

BROKER_TIMEOUT_S = 3.0


def database_ok() -> str:
    """"ok", or the kind of failure (e.g. "OperationalError")."""
    from sqlalchemy import text

    try:
        with web.runtime().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def broker_ok(url: str, timeout: float = BROKER_TIMEOUT_S) -> str:
    """"ok" when a connection to the broker at `url` can be established within `timeout` seconds."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=max(1, round(timeout)))
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


@bp.get("/healthz")
def healthz() -> Any:
    started = time.perf_counter()
    checks = {"database": database_ok(), "broker": broker_ok(web.settings().broker_url)}
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}
    return body, 200 if healthy else 503, {"Cache-Control": "no-store"}
