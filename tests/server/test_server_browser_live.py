"""Headless Chromium: live updates without reload, driven step by step through the grading life cycle.

The web app runs in a thread of the test (no worker); the test plays the worker by calling the same
service functions the internal endpoints call, and watches the pages change by themselves.
"""

from __future__ import annotations

import io
import re

import pytest

from grader.result import CheckResult, CheckStatus, GradeResult
from tests.server.browser import log_in

pytestmark = [pytest.mark.browser]


def test_submission_and_leaderboard_update_without_reload(live_server, browser, db, h, settings):
    from playwright.sync_api import expect

    from server.services import submissions as svc

    base = live_server
    alice, bob, a = h.get_user(db, "alice"), h.get_user(db, "bob"), h.get_assignment(db)
    noop = lambda sid, d, lane="quick": None  # noqa: E731
    ahead = svc.submit_upload(db, settings, noop, user=bob, assignment=a, stream=io.BytesIO(h.tiny_zip()),
                              filename="b.zip")
    mine = svc.submit_upload(db, settings, noop, user=alice, assignment=a, stream=io.BytesIO(h.tiny_zip()),
                             filename="a.zip")
    page = browser.new_page()
    log_in(page, base, "alice", h.PASSWORDS["alice"])
    board = browser.new_page()
    board.context.add_cookies(page.context.cookies())
    board.goto(f"{base}/assignments/rpz-cnn/leaderboard")
    assert board.locator("#leaderboard-table tbody tr").count() == 0

    page.goto(f"{base}/submissions/{mine.id}")
    expect(page.locator("#status")).to_have_text("queued")
    expect(page.locator("#status-detail")).to_have_text(re.compile(r"^position 2 in the queue · about .+ to go$"))
    c_bob = svc.claim(db, settings, ahead.id, hostname="w1")
    expect(page.locator("#status-detail")).to_have_text(re.compile(r"^position 1 in the queue · about .+ to go$"), timeout=10_000)
    c = svc.claim(db, settings, mine.id, hostname="w2")
    svc.progress(db, settings, mine.id, c.token, check="numpy_nn.Linear.forward")
    expect(page.locator("#status")).to_have_text("running", timeout=10_000)
    expect(page.locator("#status-detail")).to_have_text(re.compile(r"running numpy_nn\.Linear\.forward"))

    def result(w: float) -> dict:
        metrics = {"finetune.weighted": w, "finetune.orig": w, "finetune.aug": w, "finetune.new": w,
                   "mynet.accuracy": 0.88}
        return GradeResult.from_checks(assignment="rpz-cnn", checks=[CheckResult(
            id="numpy_nn.Linear.forward", target="Linear", status=CheckStatus.PASSED, points=1.0,
            max_points=1.0)], metrics=metrics, timings={"total_s": 1.0}, notices=[]).to_dict()

    svc.finish(db, settings, mine.id, c.token, result(0.81))
    expect(page.locator("#status")).to_have_text("graded", timeout=10_000)
    expect(page.locator("#checks")).to_contain_text("numpy_nn.Linear.forward")

    me = board.locator("#leaderboard-table tbody tr.me")
    expect(me).to_be_visible(timeout=15_000)  # appeared without a reload
    expect(me.locator("td").nth(2)).to_have_text("81.00")
    svc.finish(db, settings, ahead.id, c_bob.token, result(0.9))
    expect(board.locator("#leaderboard-table tbody tr").first.locator("td").nth(1)).to_have_text(
        "Bob B", timeout=15_000)
    expect(me.locator("td").first).to_have_text("2")
