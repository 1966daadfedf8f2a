"""Headless Chromium, issue 13: the submission page shows streamed verdicts (passed, failed with its message,
running, waiting) and the score so far while the grading runs, as text, before the report is final.

The web app runs in a thread of the test (no worker); the test plays the worker through the service functions
the internal progress endpoint calls."""

from __future__ import annotations

import io

import pytest

from grader.result import CheckResult, CheckStatus, GradeResult
from tests.server.browser import log_in

pytestmark = [pytest.mark.browser]

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b>'


def test_streamed_verdict_rows_appear_before_the_report_is_final(live_server, browser, db, h, settings):
    from playwright.sync_api import expect

    from server.services import submissions as svc

    alice, a = h.get_user(db, "alice"), h.get_assignment(db)
    noop = lambda sid, d, lane="quick": None  # noqa: E731
    mine = svc.submit_upload(db, settings, noop, user=alice, assignment=a, stream=io.BytesIO(h.tiny_zip()),
                             filename="a.zip")
    page = browser.new_page()
    log_in(page, live_server, "alice", h.PASSWORDS["alice"])
    page.goto(f"{live_server}/submissions/{mine.id}")
    expect(page.locator("#status")).to_have_text("queued")
    c = svc.claim(db, settings, mine.id, hostname="w1")
    ok = CheckResult(id="numpy_nn.Linear.forward", target="Linear", status=CheckStatus.PASSED, points=1.0,
                     max_points=1.0, seconds=0.01)
    bad = CheckResult(id="numpy_nn.ReLU.forward", target="ReLU", status=CheckStatus.FAILED, points=0.0,
                      max_points=2.0, message=HOSTILE)
    svc.progress(db, settings, mine.id, c.token, check="numpy_nn.Linear.forward", verdict=ok)
    svc.progress(db, settings, mine.id, c.token, check=None, verdict=bad)
    svc.progress(db, settings, mine.id, c.token, check="pytorch_cnn.MyNet.accuracy")
    rows = page.locator("#live-checks tbody tr")
    expect(rows.first).to_contain_text("numpy_nn.Linear.forward", timeout=10_000)
    expect(page.locator("#status")).to_have_text("running")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("passed")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("failed")
    expect(rows.nth(1).locator("td.msg")).to_have_text(HOSTILE)  # as text: no element made of it
    assert page.locator("#live-checks img, #live-checks b").count() == 0 and page.title() != "pwned"
    expect(rows.nth(2)).to_contain_text("pytorch_cnn.MyNet.accuracy")
    expect(rows.nth(2).locator("td").nth(2)).to_have_text("running")
    expect(page.locator("#score-so-far")).to_contain_text("Score so far 1 of 3")
    assert page.locator("#checks").count() == 0  # the final report is not there yet

    final = GradeResult.from_checks(assignment="rpz-cnn", checks=[ok, bad], metrics={}, timings={"total_s": 1.0},
                                    notices=[]).to_dict()
    svc.finish(db, settings, mine.id, c.token, final)
    expect(page.locator("#status")).to_have_text("graded", timeout=10_000)
    expect(page.locator("#checks")).to_contain_text("numpy_nn.ReLU.forward")
    assert page.locator("#live-checks").count() == 0
