"""`server.worker` is an importable Celery app: `celery -A server.worker inspect ping` answers from a real worker
(started by `autograder worker`, a thin wrapper over it) on a real Redis, the worker sends task events (Flower
sees the gradings), and the grading task has a time limit that ends an attempt with a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests.server.stack import Stack, start_stack
from tests.server.test_server_integration import _db_row, _numpy_zip


def _celery(stack: Stack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery", "-A", "server.worker", *args], env=stack.worker_env(9),
                          capture_output=True, text=True, timeout=timeout, cwd=stack.h.PROJECT)


def _ping_until_answered(stack: Stack, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    end = time.monotonic() + timeout
    while True:
        out = _celery(stack, "inspect", "ping", "--timeout", "3")
        if out.returncode == 0 or time.monotonic() > end:
            return out
        time.sleep(1)


def test_importing_the_worker_app_reads_no_settings(tmp_path):
    instance = tmp_path / "instance"
    code = ("import os, server.worker as w; print(w.app.configured, os.path.exists(os.environ['AUTOGRADER_INSTANCE_DIR']));"
            "print(w.app.main, w.app.conf.broker_url.endswith('broker.sqlite3'), w.app.conf.task_time_limit)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, AUTOGRADER_INSTANCE_DIR=str(instance)),
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False", "autograder", "True", "1320.0"], out.stdout + out.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_inspect_ping_and_task_events_from_a_real_worker(tmp_path, h, procs):
    from celery import Celery

    stack = start_stack(tmp_path, h, procs)
    stack.start_worker(1)
    out = _ping_until_answered(stack)
    assert out.returncode == 0 and "pong" in out.stdout and "w1@" in out.stdout, out.stdout + out.stderr + stack.logs()

    conf = _celery(stack, "inspect", "conf", "--json", "--timeout", "5")
    assert conf.returncode == 0, conf.stderr
    seen = next(iter(json.loads(conf.stdout).values()))
    assert seen["task_soft_time_limit"] == 1200.0 and seen["task_time_limit"] == 1320.0
    assert seen["worker_send_task_events"] is True and seen["task_send_sent_event"] is True
    assert stack.env["AUTOGRADER_INTERNAL_SECRET"] not in conf.stdout  # Celery censors it for Flower

    events: list[dict[str, Any]] = []
    monitor = Celery(broker=stack.env["AUTOGRADER_BROKER_URL"])
    conn = monitor.connection()
    receiver = monitor.events.Receiver(conn, handlers={"*": events.append})
    listening = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None, "wakeup": False},
                                 daemon=True)
    listening.start()
    time.sleep(1.0)
    try:
        sid = stack.submit_no_wait(_numpy_zip(tmp_path))
        assert stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=240)["status"] == "graded"
        task_id = _task_id(stack, sid)
        end = time.monotonic() + 20
        wanted = ["task-sent", "task-received", "task-started", "task-succeeded"]
        while time.monotonic() < end and not set(wanted) <= {e["type"] for e in events if e.get("uuid") == task_id}:
            time.sleep(0.3)
    finally:
        receiver.should_stop = True
        listening.join(timeout=10)
        conn.release()
    mine = [e["type"] for e in events if e.get("uuid") == task_id]
    assert [t for t in wanted if t in mine] == wanted, (mine, [e["type"] for e in events][:30])
    sent = next(e for e in events if e["type"] == "task-sent" and e.get("uuid") == task_id)
    # The row keeps its last attempt's task: the slow phase's (the spec has accuracy checks: two phases).
    assert sent["name"] == "autograder.grade" and sent["queue"] == "slow"


@pytest.mark.integration
@pytest.mark.slow
def test_a_grading_past_the_soft_time_limit_ends_its_attempt_with_the_reason(tmp_path, h, procs):
    stack = start_stack(tmp_path, h, procs, AUTOGRADER_TASK_SOFT_TIME_LIMIT="4", AUTOGRADER_MAX_ATTEMPTS="2")
    stack.start_worker(1)
    t0 = time.monotonic()
    sid = stack.submit_no_wait(_numpy_zip(tmp_path, sleep=60))
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=180)
    assert final["status"] == "error", final
    row = _db_row(stack, sid)
    attempts = row["error_reason"].split("attempt ")[1:]
    assert row["attempts"] == 2 and len(attempts) == 2, row
    assert all(a.rstrip().endswith("SoftTimeLimitExceeded: SoftTimeLimitExceeded()") for a in attempts), row
    assert time.monotonic() - t0 < 90


def _task_id(stack: Stack, sid: int) -> str:
    from sqlalchemy.orm import Session

    from server.db import make_engine
    from server.models import Submission

    engine = make_engine(stack.web_env()["AUTOGRADER_DATABASE_URL"])
    try:
        with Session(engine) as s:
            return s.get(Submission, sid).task_id
    finally:
        engine.dispose()


def test_the_time_limits_are_above_the_longest_grading():
    from grader.assignments import list_assignments, load_assignment
    from grader.engine import FOLLOW_UP_WALL_S
    from server.settings import ServerSettings

    default = ServerSettings.model_fields["task_soft_time_limit"].default
    longest = max(load_assignment(n).limits.wall_s for n in list_assignments()) + FOLLOW_UP_WALL_S
    assert default >= longest + 300, (default, longest)  # room for unpacking and the reference runs
