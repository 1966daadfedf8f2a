"""Health and metrics: /healthz, /metrics/grading (Prometheus), the workers' heartbeats for instructors, and
structured worker logs with the submission id on every line of a grading (real redis, web and worker)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server import create_app
from server.db import upgrade
from server.models import Submission, utcnow
from server.services import submissions as svc
from tests.tooling import missing_tool


def _families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fam: Any, suffix: str = "", **labels: str) -> float:
    for s in fam.samples:
        if s.name == fam.name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise KeyError((fam.name, suffix, labels))


def test_healthz_reports_database_and_broker(app, h, tmp_path):
    r = app.test_client().get("/healthz")
    assert r.status_code == 200 and r.json["database"] == "ok" and r.json["broker"] == "ok"
    settings = h.make_settings(tmp_path / "down", broker_url=f"redis://127.0.0.1:{h.free_port()}/0")
    upgrade(settings.database_url)
    r = create_app(settings=settings).test_client().get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    assert r.json["database"] == "ok" and r.json["broker"].startswith("unreachable")
    assert "127.0.0.1" not in r.text  # names what is down, never where


def test_grading_metrics_need_the_token_and_count_from_the_database(h, tmp_path):
    settings = h.make_settings(tmp_path / "inst", metrics_token="scrape-me")
    upgrade(settings.database_url)
    app = create_app(settings=settings)
    c = app.test_client()
    assert c.get("/metrics/grading").status_code == 401
    assert c.get("/metrics/grading", headers={"Authorization": "Bearer nope"}).status_code == 401
    off = create_app(settings=h.make_settings(tmp_path / "off")).test_client()
    assert off.get("/metrics/grading").status_code == 404

    from sqlalchemy.orm import Session

    from server.services import accounts
    from server.services.assignments import ensure_assignment
    from server.web import runtime

    now = utcnow()
    with Session(runtime(app).engine) as s:
        user, _ = accounts.add_user(s, "alice", password="alice-pass-1")
        s.commit()
        a = ensure_assignment(s, "rpz-cnn")

        def add(n: int, status: str, *, took: float | None = None, ago: float = 0.0,
                kills: dict[str, float] | None = None) -> None:
            finished = now - timedelta(seconds=ago) if took is not None else None
            result = {"metrics": {f"sandbox.kills.{k}": v for k, v in (kills or {}).items()}}
            s.add(Submission(user_id=user.id, assignment_id=a.id, upload_number=n, stored_name=f"x{n}",
                             status=status, started_at=finished - timedelta(seconds=took) if finished else None,
                             finished_at=finished, result_json=json.dumps(result) if finished else None))

        add(1, "graded", took=3.0, ago=30, kills={"timeout": 2.0})
        add(2, "graded", took=45.0, ago=60, kills={"memory": 1.0, "timeout": 1.0})
        add(3, "rejected", took=0.5, ago=3600)
        add(4, "error", took=700.0, ago=7200)
        add(5, "queued")
        add(6, "queued")
        add(7, "running")
        s.commit()

    auth = {"Authorization": "Bearer scrape-me"}
    r = c.get("/metrics/grading", headers=auth)
    assert r.status_code == 200 and r.mimetype == "text/plain"
    fams = _families(r.text)
    assert _value(fams["autograder_queue_length"]) == 2
    assert _value(fams["autograder_gradings_running"]) == 1
    assert _value(fams["autograder_gradings_per_minute"]) == pytest.approx(2 / 5)  # 2 finished in 5 minutes
    outcomes = fams["autograder_gradings"]
    assert [_value(outcomes, "_total", status=x) for x in ("graded", "rejected", "error")] == [2, 1, 1]
    hist = fams["autograder_grading_duration_seconds"]
    assert _value(hist, "_count") == 4 and _value(hist, "_sum") == pytest.approx(748.5)
    assert _value(hist, "_bucket", le="1.0") == 1 and _value(hist, "_bucket", le="5.0") == 2
    assert _value(hist, "_bucket", le="60.0") == 3 and _value(hist, "_bucket", le="+Inf") == 4
    kills = fams["autograder_sandbox_kills"]
    assert _value(kills, "_total", cause="timeout") == 3 and _value(kills, "_total", cause="memory") == 1
    # A second scrape uses the parsed-results cache and agrees; a regrade replaces a row's kills.
    with Session(runtime(app).engine) as s:
        sub = s.get(Submission, 1)
        sub.result_json = json.dumps({"metrics": {"sandbox.kills.crash": 1.0}})
        sub.finished_at = utcnow()
        s.commit()
    kills = _families(c.get("/metrics/grading", headers=auth).text)["autograder_sandbox_kills"]
    assert _value(kills, "_total", cause="timeout") == 1 and _value(kills, "_total", cause="crash") == 1


def test_workers_page_shows_each_heartbeat_to_instructors_only(app, db, as_user, h):
    svc.worker_heartbeat(db, "w1@grader-a")
    svc.worker_heartbeat(db, "w2@grader-b")
    teacher = as_user("teacher")
    r = teacher.get("/instructor/workers")
    assert r.status_code == 200 and r.headers["Refresh"] == "5"
    assert "w1@grader-a" in r.text and "w2@grader-b" in r.text and "alive" in r.text
    data = teacher.get("/instructor/workers.json").json
    assert {w["hostname"] for w in data["workers"]} == {"w1@grader-a", "w2@grader-b"}
    assert all(w["alive"] and w["age_s"] < 60 and w["submission"] is None for w in data["workers"])
    assert as_user("alice").get("/instructor/workers").status_code == 403
    assert as_user("alice").get("/instructor/workers.json").status_code == 403
    assert app.test_client().get("/instructor/workers.json").status_code in (302, 401)


@pytest.mark.integration
@pytest.mark.slow
def test_worker_logs_are_json_with_the_submission_id_on_every_line_of_a_grading(h, procs, tmp_path):
    if shutil.which("redis-server") is None:
        missing_tool("redis-server is not installed")
    redis_port, web_port = h.free_port(), h.free_port()
    web_dir = tmp_path / "web"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(AUTOGRADER_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0", AUTOGRADER_INTERNAL_SECRET="log-secret",
               AUTOGRADER_INTERNAL_URL=f"http://127.0.0.1:{web_port}", PYTHONUNBUFFERED="1",
               AUTOGRADER_HEARTBEAT_SECONDS="1")
    web_env = dict(env, AUTOGRADER_DATABASE_URL=f"sqlite:///{web_dir / 'db.sqlite3'}",
                   AUTOGRADER_INSTANCE_DIR=str(web_dir), AUTOGRADER_SECRET_KEY="k", AUTOGRADER_SECURE_COOKIES="false")
    for argv in (h.cli("db", "upgrade"), h.cli("users", "add", "alice", "--password", "alice-pass-1")):
        subprocess.run(argv, env=web_env, check=True, capture_output=True, timeout=60, cwd=h.PROJECT)
    subprocess.run([sys.executable, "-c", "import sys; from sqlalchemy.orm import Session; "
                    "from server.db import make_engine; from server.services.assignments import ensure_assignment; "
                    "ensure_assignment(Session(make_engine(sys.argv[1])), 'rpz-cnn')",
                    web_env["AUTOGRADER_DATABASE_URL"]], check=True, timeout=60, cwd=h.PROJECT)
    token = subprocess.run(h.cli("token", "create", "alice"), env=web_env, check=True, capture_output=True,
                           text=True, timeout=60, cwd=h.PROJECT).stdout.strip()
    procs.append(h.redis_proc(tmp_path, redis_port).start())
    h.wait_port(redis_port)
    procs.append(h.Proc("web", h.cli("web", "--bind", f"127.0.0.1:{web_port}", "--workers", "1"), web_env,
                        tmp_path / "web.log").start())
    h.wait_port(web_port, timeout=60)
    worker = h.Proc("worker", h.cli("worker", "--hostname", "logs@%h"),
                    dict(env, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "worker")), tmp_path / "worker.log").start()
    procs.append(worker)

    from grader.assignments.build import build_submission_zip, reference_dir

    src = (reference_dir("rpz-cnn") / "numpy_nn.py").read_bytes() + b"\nimport time as _t\n_t.sleep(2.5)\n"
    data = build_submission_zip("rpz-cnn", tmp_path / "s.zip", replace={"numpy_nn.py": src},
                                omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"]).read_bytes()
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.zip"\r\n\r\n').encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{web_port}/api/v1/assignments/rpz-cnn/submissions", data=body,
                                 method="POST", headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        sid = int(json.loads(r.read())["id"])

    end = time.monotonic() + 240
    while not re.search(rf"submission {sid}( \(\w+ phase\))?: graded", worker.output()):  # the last phase
        assert time.monotonic() < end, worker.output()
        time.sleep(0.5)
    worker.stop()
    lines = [ln for ln in Path(worker.log).read_text(errors="replace").splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]
    assert records and all({"ts", "level", "logger", "submission_id", "message"} <= set(r) for r in records)
    start = next(i for i, r in enumerate(records) if r["message"] == "grading started")
    stop = next(i for i, r in enumerate(records) if r["message"].startswith("grading ended")
                and r["message"].endswith(": graded"))
    pool = records[start]["process"]
    during = [r for r in records[start:stop + 1] if r["process"] == pool]
    assert len(during) >= 2 and all(r["submission_id"] == sid for r in during), during
    assert "SUCCESS" in records[stop]["message"] and f"submission {sid}" in records[stop]["message"]
    assert any(r["submission_id"] is None for r in records[:start]), "lines outside a grading carry no id"


def test_the_workers_partial_renders_on_any_page(app, db):
    from flask import render_template_string

    svc.worker_heartbeat(db, "w9@grader-z")
    with app.test_request_context("/instructor/"):
        html = render_template_string('{% include "instructor/_workers.html" %}')
    assert "w9@grader-z" in html and "idle" in html


def test_queue_page_shows_the_workers_heartbeats(db, as_user):
    svc.worker_heartbeat(db, "w7@grader-q")
    page = as_user("teacher").get("/instructor/")
    assert page.status_code == 200
    assert 'id="queue"' in page.text and 'id="workers"' in page.text
    assert "w7@grader-q" in page.text and "alive" in page.text
