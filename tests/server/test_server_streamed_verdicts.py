"""Issue 13, streamed verdicts over the one progress channel: while a submission is running, its JSON shows the
verdicts judged so far and the score so far; the final result replaces them. Real redis-server, web app and
worker."""

from __future__ import annotations

import time

import pytest

from tests.server.stack import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_running_submission_shows_its_verdicts_before_it_finishes(tmp_path, h, procs):
    from grader.assignments.build import build_submission_zip

    stack = start_stack(tmp_path, h, procs)
    stack.start_worker()
    sid = stack.submit_no_wait(build_submission_zip("rpz-cnn", tmp_path / "reference.zip"))
    end, seen = time.monotonic() + 240, None
    while time.monotonic() < end and seen is None:
        d = stack.api(f"/api/v1/submissions/{sid}")
        if d["status"] != "queued" and d["status"] != "running":
            break
        if d["status"] == "running" and d["partial_checks"]:
            seen = d
        time.sleep(0.1)
    assert seen is not None, f"no verdict was shown while the submission ran\n{stack.logs()}"
    assert seen["result"] is None
    first = seen["partial_checks"][0]
    assert first["id"].startswith("numpy_nn.") and first["status"] == "passed", first
    assert seen["partial_score"] == pytest.approx(sum(c["points"] for c in seen["partial_checks"]))
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=300)
    assert final["status"] == "graded", stack.logs()
    assert final["partial_checks"] == [] and final["partial_score"] is None  # the final result is the truth
    by_id = {c["id"]: c for c in final["result"]["checks"]}
    for c in seen["partial_checks"]:
        assert by_id[c["id"]] == c  # the reference has no follow-up round: what was streamed stands
