"""Headless Chromium (Debian's) against the embedded default started as the README does (`autograder serve`).

A student logs in, uploads the full reference zip, watches it go from queued to graded and sees their
leaderboard row; an instructor regrades it and downloads the CSV report; a student gets 403 on an
instructor page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.server.browser import log_in, serve_embedded
from tests.tooling import import_tool

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

GRADING_TIMEOUT_MS = 900_000  # one full grading: ~1 min on an idle 2-core box, minutes when shared


def reference_zip(dest: Path) -> Path:
    from grader.assignments.build import build_submission_zip, reference_dir, submission_names

    missing = [n for n in submission_names("rpz-cnn") if not (reference_dir("rpz-cnn") / n).is_file()]
    if missing:
        pytest.skip(f"reference checkpoints not built yet: {missing} (python -m grader.assignments.rpz_cnn.train)")
    return build_submission_zip("rpz-cnn", dest / "reference.zip")


@pytest.fixture
def served(tmp_path, h, procs) -> str:
    return serve_embedded(tmp_path, h, procs, timeout=600)  # prepares the hidden data on first start


def test_student_and_instructor_in_chromium(served, browser, tmp_path):
    base = served
    zip_path = reference_zip(tmp_path)

    # --- student: upload, watch queued -> graded, leaderboard row
    student = browser.new_context(accept_downloads=True).new_page()
    log_in(student, base, "student", "student-demo")
    student.goto(f"{base}/assignments/rpz-cnn")
    assert "0 of 100 uploads used" in student.inner_text("#uploads-used")
    student.set_input_files("#file", str(zip_path))
    student.click("#upload-button")
    student.wait_for_url(re.compile(r".*/submissions/\d+$"))
    sub_url = student.url
    reloads: list[str] = []
    student.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == student.main_frame else None)
    first = student.inner_text("#status")
    assert first in ("queued", "running"), first
    seen = {first}
    expect = import_tool("playwright.sync_api").expect
    # (locator waits, not wait_for_function: the pages' CSP forbids eval)
    expect(student.locator("#status")).to_have_text(re.compile("running|graded"), timeout=GRADING_TIMEOUT_MS)
    seen.add(student.inner_text("#status"))
    running_detail = student.inner_text("#status-detail")
    expect(student.locator("#status")).to_have_text("graded", timeout=GRADING_TIMEOUT_MS)
    # The page showed the grading live (a full grading runs for a minute or more, polled every 1.5 s) and
    # updated in place: no reload.
    # ("quick checks: running ..." / "accuracy checks: running ...": the grading's two phases)
    assert "running" in seen and re.search(r"(^|: )running ", running_detail), (seen, running_detail)
    assert reloads == [], reloads
    assert student.locator("#checks tbody tr").count() >= 10
    assert "passed" in student.inner_text("#checks")
    student.screenshot(path=str(tmp_path / "submission.png"), full_page=True)

    state = student.request.get(sub_url + ".json").json()
    failing = [(c["id"], c["message"][:200]) for c in state["result"]["checks"] if c["status"] != "passed"]
    assert "finetune.weighted" in state["result"]["metrics"], f"no leaderboard metric; failing checks: {failing}"

    student.goto(f"{base}/assignments/rpz-cnn/leaderboard")
    me = student.locator("#leaderboard-table tbody tr.me")
    me.wait_for(timeout=30_000)
    cells = me.locator("td").all_inner_texts()
    assert cells[0] == "1" and cells[1] == "Demo student" and float(cells[2]) > 50.0
    assert float(cells[3]) > 0 and float(cells[6]) > 0  # ORIG ... MyNet
    student.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

    # --- a student opening an instructor page gets 403
    resp = student.goto(f"{base}/instructor/")
    assert resp is not None and resp.status == 403 and "Forbidden" in student.inner_text("h1")
    resp = student.goto(f"{base}/instructor/assignments/rpz-cnn/report.csv")
    assert resp is not None and resp.status == 403

    # --- instructor: regrade, watch it finish, download the CSV report
    teacher = browser.new_context(accept_downloads=True).new_page()
    log_in(teacher, base, "instructor", "instructor-demo")
    teacher.goto(sub_url)
    teacher.click("#regrade")
    teacher.wait_for_url(sub_url)
    assert "Regrade #1 queued" in teacher.content()
    # The regrade runs live (we do not wait the minutes of a second full grading: the life cycle of
    # regrades is covered by tests/server/test_server_lifecycle.py).
    expect(teacher.locator("#status")).to_have_text(re.compile("running|graded"), timeout=GRADING_TIMEOUT_MS)
    teacher.goto(f"{base}/instructor/")
    assert re.search(r"[01] of 1 done", teacher.inner_text("body"))
    assert "submission " in teacher.inner_text("body")  # the regrade's scope
    teacher.goto(f"{base}/instructor/assignments/rpz-cnn/report")
    with teacher.expect_download() as dl:
        teacher.click("#download-csv")
    csv_path = tmp_path / "report.csv"
    dl.value.save_as(csv_path)
    text = csv_path.read_text()
    assert text.startswith("username,name,passed,points,bonus")
    assert re.search(r"^student,Demo student,yes,", text, re.M), text
