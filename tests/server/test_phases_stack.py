"""Issue 13, two lanes, on a real stack (redis-server, the gunicorn web app, Celery workers, the sandbox): an upload
is graded in a quick and a slow phase whose merged result equals a one-phase grading; a grading process killed in
the slow phase is retried for the slow checks only; a regrade-all in the rerun lane never comes before a student's
first verdicts. The fast cmu-16720-hw5 assignment (7 quick checks, 1 hidden-set accuracy check)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server.stack import Stack, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "cmu-16720-hw5"


def _zip(tmp: Path, *, slow_forward: float = 0.0) -> Path:
    """The reference; with `slow_forward`, its forward() sleeps that long on the hidden set (1,800 images) only,
    so the slow phase takes a while and the quick one does not."""
    from grader.assignments.build import build_submission_zip, reference_dir

    src = (reference_dir(NAME) / "nn.py").read_bytes()
    if slow_forward:
        src = src.replace(b"    W = params['W' + name]\n",
                          b"    W = params['W' + name]\n    if len(X) >= 1000:\n        import time as _t\n"
                          + f"        _t.sleep({slow_forward})\n".encode(), 1)
        assert b"_t.sleep" in src
    return build_submission_zip(NAME, tmp / f"{NAME}-{slow_forward}.zip", replace={"nn.py": src})


def _submit(stack: Stack, z: Path) -> int:
    out = subprocess.run(stack.h.cli("submit", str(z), "--assignment", NAME, "--server", stack.base, "--token",
                                     stack.token, "--no-wait"), capture_output=True, text=True, timeout=60,
                         cwd=stack.h.PROJECT)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def _rows(stack: Stack, *ids: int) -> dict[int, dict[str, Any]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from server.db import make_engine
    from server.models import Submission

    engine = make_engine(stack.web_env()["AUTOGRADER_DATABASE_URL"])
    with Session(engine) as s:
        out = {r.id: {"status": str(r.status), "lane": r.lane, "attempts": r.attempts, "error_reason": r.error_reason,
                      "queued_at": r.queued_at, "finished_at": r.finished_at, "result": r.result}
               for r in s.scalars(select(Submission).where(Submission.id.in_(ids)))}
    engine.dispose()
    return out


def _watch(stack: Stack, sid: int, until, timeout: float) -> dict[str, Any]:
    end, d = time.monotonic() + timeout, {}
    while time.monotonic() < end:
        try:
            d = stack.api(f"/api/v1/submissions/{sid}")
        except OSError:  # not uploaded yet, or the web app is busy
            time.sleep(0.2)
            continue
        if until(d):
            return d
        if d["status"] in ("graded", "rejected", "error"):
            break
        time.sleep(0.1)
    raise AssertionError(f"submission {sid} never reached the state looked for: {d}\n{stack.logs()}")


def test_an_upload_is_graded_in_two_phases_and_equals_a_one_phase_grading(tmp_path, h, procs):
    from grader.api import grade_submission

    stack = start_stack(tmp_path, h, procs, assignments=(NAME,))
    stack.start_worker()
    z = _zip(tmp_path, slow_forward=3.0)
    out = subprocess.Popen(h.cli("submit", str(z), "--assignment", NAME, "--server", stack.base, "--token", stack.token,
                                 "--json"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=h.PROJECT)
    sid = 1  # the first upload of a fresh database
    _watch(stack, sid, lambda d: d["phase"] == "slow" and d["partial_checks"], timeout=240)
    between = stack.api(f"/api/v1/submissions/{sid}")
    assert between["status"] in ("queued", "running") and between["result"] is None, between
    assert len(between["partial_checks"]) >= 7 and between["partial_checks"][0]["id"] == "nn.initialize_weights"
    stdout, stderr = out.communicate(timeout=300)
    assert out.returncode == 0, stderr + stack.logs()
    streamed = json.loads(stdout)  # `autograder submit` ends with the full report
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=60)
    assert final["status"] == "graded" and streamed["checks"] == final["result"]["checks"]

    one = grade_submission(zip_path=z, assignment=NAME).to_dict()  # the same zip in one phase
    def key(r):
        return [(c["id"], c["status"], c["points"]) for c in r["checks"]]
    assert key(final["result"]) == key(one) and final["score"] == one["score"] == 28.0
    assert set(final["result"]["metrics"]) == set(one["metrics"])  # the quick phase's and the slow one's
    assert final["result"]["metrics"]["sandbox.starts"] == 2.0  # a sandbox per phase
    assert [c["id"] for c in between["partial_checks"][:7]] == [c["id"] for c in one["checks"][:7]]
    log = stack.workers[0].output()
    assert f"submission {sid} (quick phase): queued" in log and f"submission {sid} (slow phase): graded" in log


def test_a_grading_process_killed_in_the_slow_phase_retries_the_slow_checks_only(tmp_path, h, procs):
    stack = start_stack(tmp_path, h, procs, assignments=(NAME,))
    w = stack.start_worker()
    sid = _submit(stack, _zip(tmp_path, slow_forward=8.0))
    slow = _watch(stack, sid, lambda d: d["status"] == "running" and d["phase"] == "slow"
                  and d["current_check"] == "q3.accuracy", timeout=240)
    quick = {c["id"]: c for c in slow["partial_checks"]}
    assert len(quick) == 7
    time.sleep(1.0)
    children = subprocess.run(["pgrep", "-P", str(w.popen.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the prefork pool child was not found"
    for pid in children:
        os.kill(int(pid), 9)
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=240)
    assert final["status"] == "graded", final
    row = _rows(stack, sid)[sid]
    assert row["lane"] == "slow" and row["attempts"] == 3, row  # the quick phase's, then the slow phase's two
    (reason,) = row["error_reason"].splitlines()
    assert reason.startswith("attempt 2: worker ") and reason.endswith(" went silent (lease expired)")
    checks = {c["id"]: c for c in final["result"]["checks"]}
    assert len(checks) == 8 and checks["q3.accuracy"]["status"] == "passed"
    for cid, c in quick.items():
        assert checks[cid] == c  # the quick phase's verdicts, seconds and all: not graded again
    log = w.output()
    ended = re.findall(rf"grading ended \(SUCCESS\) after [0-9.]+ s: submission {sid} \((\w+) phase\)", log)
    assert ended == ["quick", "slow"], ended  # one quick phase; of the slow phase the attempt that was not killed
    assert "WorkerLostError" in log


def test_a_students_first_verdicts_come_before_a_regrade_all_ends(tmp_path, h, procs):
    from tests.server.browser import HttpSession

    stack = start_stack(tmp_path, h, procs, assignments=(NAME,))
    stack.manage("users", "add", "teacher", "--role", "instructor", "--password", h.PASSWORDS["teacher"])
    stack.manage("users", "add", "bob", "--password", h.PASSWORDS["bob"])
    course = [_submit(stack, _zip(tmp_path, slow_forward=1.5)) for _ in range(6)]  # no worker yet
    teacher = HttpSession(stack.base).login("teacher", h.PASSWORDS["teacher"])
    teacher.submit_form("/instructor/", f"/instructor/assignments/{NAME}/regrade", {})
    assert {r["lane"] for r in _rows(stack, *course).values()} == {"rerun"}
    stack.start_worker()
    _watch(stack, course[0], lambda d: d["status"] == "running", timeout=240)  # the regrade-all is under way

    bob = HttpSession(stack.base).login("bob", h.PASSWORDS["bob"])
    mine = bob.upload(NAME, _zip(tmp_path).read_bytes(), "nn.zip")
    for sid in course:
        stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=300)
    rows = _rows(stack, mine, *course)
    me = rows.pop(mine)
    assert me["status"] == "graded" and me["lane"] == "slow", me
    assert {r["status"] for r in rows.values()} == {"graded"} and {r["lane"] for r in rows.values()} == {"rerun"}
    first_verdicts = me["queued_at"]  # when its quick phase ended (its slow phase was queued)
    regraded_before = sorted(r["finished_at"] for r in rows.values() if r["finished_at"] < first_verdicts)
    assert len(regraded_before) <= 2, (first_verdicts, rows)  # the one running when bob uploaded (and a race)
    assert me["finished_at"] < max(r["finished_at"] for r in rows.values())  # the full report too
