"""Hostile submissions of round 2 through the real stack (redis, gunicorn web app, Celery worker): the grading
ends in one attempt with a stored, readable result; nothing is retried for the student's doing."""

from __future__ import annotations

import json
import time

import pytest

from tests import attacks
from tests.conftest import make_zip
from tests.server.stack import Stack, start_stack
from tests.server.test_server_integration import _db_row

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.sandbox]


@pytest.fixture
def stack(tmp_path, h, procs) -> Stack:
    return start_stack(tmp_path, h, procs)


def test_nan_clock_result_is_stored_in_one_attempt(stack, tmp_path):
    """The review's NaN timings made the web app answer 500 to the result; the worker retried for 571 s."""
    stack.start_worker()
    t0 = time.monotonic()
    sid = stack.submit_no_wait(make_zip(tmp_path / "nan.zip", attacks.nan_clock()))
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=300)
    took = time.monotonic() - t0
    assert final["status"] == "graded", final
    row = _db_row(stack, sid)
    assert row["attempts"] == 2 and not row["error_reason"], row  # one attempt per phase (quick, slow), none lost
    result = stack.api(f"/api/v1/submissions/{sid}")
    text = json.dumps(result)
    assert "NaN" not in text and "Infinity" not in text
    assert took < 120, took


def test_progress_flood_is_graded_in_one_attempt(stack, tmp_path):
    stack.start_worker()
    sid = stack.submit_no_wait(make_zip(tmp_path / "flood.zip", attacks.forged_progress_flood()))
    final = stack.wait_status(sid, {"graded", "error", "rejected"}, timeout=300)
    assert final["status"] == "graded", final
    row = _db_row(stack, sid)
    assert row["attempts"] == 2 and not row["error_reason"], row  # one attempt per phase (quick, slow), none lost
    assert final["checks_done"] <= 24, final
