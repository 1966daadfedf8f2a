"""Prometheus metrics, computed from the database at scrape time (so every web process reports the same)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, abort, request

from server import web
from server.services import queue

bp = Blueprint("metrics", __name__)


def refuse_without_token() -> tuple[dict[str, str], int] | None:
    """The scrape endpoints' gate: 404 when no metrics token is configured, 401 without the right bearer token."""
    token = web.settings().metrics_token
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return {"error": "unauthorized"}, 401
    return None


@bp.get("/metrics")
def metrics() -> Any:
    if (refused := refuse_without_token()) is not None:
        return refused
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    q = queue.queue_overview(web.db())
    reg = CollectorRegistry()
    by_status = Gauge("autograder_submissions", "Submissions by status", ["status"], registry=reg)
    for status, n in queue.status_counts(web.db()).items():
        by_status.labels(status=status).set(n)
    Gauge("autograder_queue_oldest_waiting_seconds", "Age of the oldest queued submission",
          registry=reg).set(q["oldest_waiting_s"] or 0)
    Gauge("autograder_workers_alive", "Workers heard from in the last minute", registry=reg).set(q["workers_alive"])
    return Response(generate_latest(reg), mimetype=CONTENT_TYPE_LATEST)
