"""Headless Chromium: drag and drop upload, live report, refusals shown in plain words (fast: numpy part only)."""

from __future__ import annotations

import re

import pytest

from tests.server.browser import log_in, serve_embedded

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def served(tmp_path, h, procs) -> str:
    return serve_embedded(tmp_path, h, procs, prepare=False)


def test_drag_and_drop_upload_and_live_report(served, browser, tmp_path):
    from playwright.sync_api import expect

    from grader.assignments.build import build_submission_zip

    data = build_submission_zip("rpz-cnn", tmp_path / "numpy.zip",
                                omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"]).read_bytes()
    base = served
    page = browser.new_page()
    page.goto(f"{base}/auth/login")
    page.fill("#username", "student")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.inner_text("#login-error")
    log_in(page, base, "student", "student-demo")

    page.goto(f"{base}/assignments/rpz-cnn")
    page.click("#upload-button")  # nothing chosen: refused in plain words
    assert "Choose a zip file" in page.inner_text("#upload-error")
    dt = page.evaluate_handle(
        "(bytes) => { const dt = new DataTransfer();"
        " dt.items.add(new File([new Uint8Array(bytes)], 'numpy.zip', {type: 'application/zip'})); return dt; }",
        list(data))
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dt})
    assert page.inner_text("#chosen") == "numpy.zip"
    page.click("#upload-button")
    page.wait_for_url(re.compile(r".*/submissions/\d+$"))
    expect(page.locator("#status")).to_have_text("graded", timeout=240_000)
    assert "numpy_nn.Linear.forward" in page.inner_text("#checks")
    assert "pytorch_cnn.py is missing from your zip" in page.inner_text("#checks")
    page.goto(f"{base}/assignments/rpz-cnn")
    assert page.inner_text("#uploads-used") == "1 of 100 uploads used"
    resp = page.goto(f"{base}/instructor/submissions")
    assert resp is not None and resp.status == 403
