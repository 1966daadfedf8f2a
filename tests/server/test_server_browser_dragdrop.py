"""Headless Chromium: drag and drop upload, live report, refusals shown in plain words (fast: numpy part only)."""

from __future__ import annotations

import os
import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def served(tmp_path, h, procs) -> str:
    port = h.free_port()
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_INTERNAL_URL"):
        env.pop(k, None)
    p = h.Proc("serve", h.cli("serve", "--port", str(port), "--no-prepare"), env, tmp_path / "serve.log").start()
    procs.append(p)
    h.wait_port(port, timeout=120)
    return f"http://127.0.0.1:{port}"


def test_drag_and_drop_upload_and_live_report(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from reference.build import build_submission_zip

    data = build_submission_zip("rpz-cnn", tmp_path / "numpy.zip",
                                omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"]).read_bytes()
    base = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{base}/auth/login")
        page.fill("#username", "student")
        page.fill("#password", "wrong-password")
        page.click("button[type=submit]")
        assert "Wrong username or password" in page.inner_text("#login-error")
        page.fill("#username", "student")
        page.fill("#password", "student-demo")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")

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
        sync_api.expect(page.locator("#status")).to_have_text("graded", timeout=240_000)
        assert "numpy_nn.Linear.forward" in page.inner_text("#checks")
        assert "pytorch_cnn.py is missing from your zip" in page.inner_text("#checks")
        page.goto(f"{base}/assignments/rpz-cnn")
        assert page.inner_text("#uploads-used") == "1 of 100 uploads used"
        resp = page.goto(f"{base}/instructor/submissions")
        assert resp is not None and resp.status == 403
        browser.close()
