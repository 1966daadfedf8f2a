"""Grading metrics for Prometheus (/metrics/grading, same bearer token as /metrics) and the workers'
heartbeats for instructors (/instructor/workers and its JSON)."""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Response, current_app, render_template
from sqlalchemy import select

from server import web
from server.blueprints.metrics import refuse_without_token
from server.grading_metrics import KillCache, render
from server.models import Submission, WorkerSeen, utcnow

bp = Blueprint("observability", __name__)

ALIVE_SECONDS = 60.0
"""A worker heard from within this many seconds counts as alive (as on the queue overview)."""


@bp.get("/metrics/grading")
def grading_metrics() -> Any:
    if (refused := refuse_without_token()) is not None:
        return refused
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    cache = cast(KillCache, current_app.extensions.setdefault("autograder_kill_cache", KillCache()))
    return Response(render(web.db(), cache), mimetype=CONTENT_TYPE_LATEST)


def workers_state() -> list[dict[str, Any]]:
    """Every worker ever heard from: last heartbeat, age, alive or not, and what it grades now."""
    now = utcnow()
    s = web.db()
    out = []
    for w in s.scalars(select(WorkerSeen).order_by(WorkerSeen.last_seen.desc())):
        age = (now - w.last_seen).total_seconds()
        sub = s.get(Submission, w.submission_id) if w.submission_id else None
        grading = sub is not None and sub.status == "running" and sub.worker == w.hostname
        out.append({"hostname": w.hostname, "last_seen": w.last_seen.isoformat(), "age_s": round(age, 1),
                    "alive": age <= ALIVE_SECONDS, "submission": sub.id if grading and sub else None,
                    "check": sub.current_check if grading and sub else ""})
    return out


@bp.app_context_processor
def _heartbeats() -> dict[str, Any]:
    """Lets any page include instructor/_workers.html (the state is read only when it is rendered)."""
    return {"worker_heartbeats": workers_state, "alive_within": ALIVE_SECONDS}


@bp.get("/instructor/workers.json")
@web.instructor_required
def workers_json() -> Any:
    return {"workers": workers_state(), "alive_within_s": ALIVE_SECONDS,
            "generated_at": utcnow().isoformat()}


@bp.get("/instructor/workers")
@web.instructor_required
def workers_page() -> Any:
    page = render_template("instructor/workers.html", workers=workers_state(), alive_within=ALIVE_SECONDS)
    return page, 200, {"Refresh": "5"}
