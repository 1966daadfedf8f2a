"""Progress has one channel: the internal API's progress call stores the running check on the submission (what
the pages and the API show); the Celery task state carries no progress, only the final one-line outcome.
Real redis-server, web app and worker."""

from __future__ import annotations

import time

import pytest

from tests.server.stack import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _slow_numpy_zip(tmp, seconds: float):
    from grader.assignments.build import build_submission_zip, reference_dir

    src = (reference_dir("rpz-cnn") / "numpy_nn.py").read_bytes() + f"\nimport time as _t\n_t.sleep({seconds})\n".encode()
    return build_submission_zip("rpz-cnn", tmp / "slow.zip", replace={"numpy_nn.py": src},
                                omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"])


def test_progress_is_on_the_submission_and_the_task_state_is_only_the_outcome(tmp_path, h, procs):
    from celery import Celery
    from celery.result import AsyncResult

    stack = start_stack(tmp_path, h, procs)
    stack.start_worker()
    sid = stack.submit_no_wait(_slow_numpy_zip(tmp_path, 6))
    stack.wait_status(sid, {"running"}, timeout=120)
    broker = stack.env["AUTOGRADER_BROKER_URL"]
    app = Celery("observer", broker=broker, backend=broker)
    try:
        end = time.monotonic() + 60
        seen, states, task_id = None, set(), ""
        while time.monotonic() < end and seen is None:
            d = stack.api(f"/api/v1/submissions/{sid}")
            task_id = task_id or _task_id(stack, sid)
            if task_id:
                states.add(AsyncResult(task_id, app=app).state)
            if d["status"] == "running" and d["current_check"]:
                seen = d
            time.sleep(0.2)
        assert seen is not None, f"the submission never showed its running check\n{stack.logs()}"
        assert seen["current_check"].startswith("numpy_nn.") and seen["checks_done"] >= 1
        assert task_id, "the submission does not record its task id"
        final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=240)
        assert final["status"] == "graded"
        end = time.monotonic() + 30
        while AsyncResult(task_id, app=app).state != "SUCCESS" and time.monotonic() < end:
            states.add(AsyncResult(task_id, app=app).state)
            time.sleep(0.2)
        done = AsyncResult(task_id, app=app)
        # the task read while the row ran is its quick phase's (the spec has accuracy checks: two phases), whose
        # outcome is the row queued again for the slow phase
        assert done.state == "SUCCESS" and done.result == f"submission {sid} (quick phase): queued"
        assert "PROGRESS" not in states, states
    finally:
        app.close()


def _task_id(stack, sid: int) -> str:
    from sqlalchemy.orm import Session

    from server.db import make_engine
    from server.models import Submission

    engine = make_engine(stack.web_env()["AUTOGRADER_DATABASE_URL"])
    try:
        with Session(engine) as s:
            return s.get(Submission, sid).task_id
    finally:
        engine.dispose()


def test_task_states_go_where_the_messages_go():
    from server.celery_app import result_backend_for

    assert result_backend_for("redis://:pw@redis:6379/0") == "redis://:pw@redis:6379/0"
    assert result_backend_for("sqla+sqlite:////srv/inst/broker.sqlite3") == "db+sqlite:////srv/inst/task-states.sqlite3"
    assert result_backend_for("sqla+sqlite:///broker.sqlite3") == "db+sqlite:///task-states.sqlite3"
    assert result_backend_for("sqla+postgresql://u@db/broker") == "db+postgresql://u@db/broker"
