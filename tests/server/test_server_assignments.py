"""Every discovered assignment but the flagship rpz-cnn (which tests/server/test_server_integration.py and the
browser tests cover) through the web app, on one real deployment (redis-server, gunicorn,
one Celery worker grading in the real sandbox).

For each, the instructor creates the assignment from its spec on the instructor page, a student reads the
assignment's page and uploads the reference submission (the course notebooks as .ipynb) with the upload
form, and the worker grades it: full marks. A mutant of the nd-hw04 notebook uploaded the same way loses
the points of its check, with a message that names the method.
"""

from __future__ import annotations

import html
import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from grader.assignments import list_assignments, load_assignment
from grader.selftest import load_mutants, mutate, reference_files
from tests.server.browser import HttpSession
from tests.server.stack import Stack, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENTS = tuple(a for a in list_assignments() if a != "rpz-cnn")
FINAL = {"graded", "rejected", "error"}


class Browser(HttpSession):
    """A user of this file's stack (see HttpSession), who can wait for a submission's final state."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack.base)
        self.stack = stack

    def wait_final(self, sid: int, timeout: float = 300.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < end:
            state = json.loads(self.get(f"/submissions/{sid}.json")[0])
            if state["status"] in FINAL:
                return state
            time.sleep(0.5)
        raise AssertionError(f"submission {sid} not final after {timeout}s: {state}\n{self.stack.logs()}")


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Iterator[Stack]:
    """No assignment yet (the instructor creates them), an instructor `teacher`, one worker."""
    procs: list = []
    try:
        # Gradings take longer than the kill tests' 10 s: a long visibility timeout, no redelivery mid-grading.
        st = start_stack(tmp_path_factory.mktemp("assignments"), h, procs, assignments=(),
                         AUTOGRADER_VISIBILITY_TIMEOUT="3600", AUTOGRADER_LEASE_SECONDS="60")
        st.manage("users", "add", "teacher", "--role", "instructor", "--password", h.PASSWORDS["teacher"])
        st.start_worker()
        yield st
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="module")
def teacher(stack: Stack) -> Browser:
    return Browser(stack).login("teacher", stack.h.PASSWORDS["teacher"])


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Browser:
    return Browser(stack).login("alice", stack.h.PASSWORDS["alice"])


def create_assignment(teacher: Browser, name: str) -> None:
    """As the instructor: pick the spec on the dashboard's form and create the assignment."""
    dashboard, _ = teacher.get("/instructor/")
    if f"({name})" in dashboard:
        return
    assert f'<option value="{name}">' in dashboard, f"{name} is not offered on the instructor dashboard"
    page, url = teacher.submit_form("/instructor/", "/instructor/assignments", {"name": name})
    assert url.endswith("/instructor/") and f"({name})" in page, f"{name} was not created"
    assert f'<option value="{name}">' not in page  # created once: no longer offered


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_reference_submission_gets_full_marks_through_the_web(stack: Stack, teacher: Browser, alice: Browser,
                                                              name: str) -> None:
    spec = load_assignment(name)
    create_assignment(teacher, name)

    page, _ = alice.get(f"/assignments/{name}")
    assert html.escape(spec.title) in page
    section = page[page.index('id="assignment-page"'):]
    assert "What to submit" in section and "What is checked" in section and "Limits" in section
    for f in spec.files:
        assert f"<code>{f}</code>" in section, f"the page does not name {f}"
    assert "Conventions (taken from the handout)" in section  # the table of the spec's [[conventions]]
    for c in spec.conventions:
        assert html.escape(" ".join(c.topic.split()), quote=False) in section, f"the page lacks the {c.topic} row"

    files = reference_files(name)
    notebooks = [f for f in files if f.endswith(".ipynb")]
    if any(f.endswith(".ipynb") for f in spec.files):
        assert notebooks, "the course hands in a Colab notebook: upload the .ipynb"
    sid = alice.upload(name, zip_of(files), f"{name}.zip")
    state = alice.wait_final(sid)
    result = state["result"]
    not_passed = {c["id"]: c["message"] for c in result["checks"] if c["status"] != "passed"}
    assert state["status"] == "graded", (state["message"], stack.logs())
    assert not_passed == {}
    assert state["score"] == state["max_score"] == spec.max_score
    assert state["passed"] is True
    assert {c["id"] for c in result["checks"]} == {c.id for c in spec.checks}
    shown, _ = alice.get(f"/submissions/{sid}")
    assert spec.title in html.unescape(shown) and f"{name}.zip" in shown


def test_a_broken_notebook_loses_the_points_of_the_method(stack: Stack, teacher: Browser, alice: Browser) -> None:
    name = "nd-hw04"
    create_assignment(teacher, name)
    mutant = next(m for m in load_mutants(name) if m.name == "ReLU.backward forgets the mask")
    files = mutate(reference_files(name), mutant)
    notebook_only = {k: v for k, v in files.items() if k.endswith(".ipynb")}  # fast: no checkpoint checks
    state = alice.wait_final(alice.upload(name, zip_of(notebook_only), "broken.zip"))
    assert state["status"] == "graded"
    checks = {c["id"]: c for c in state["result"]["checks"]}
    relu = checks["hw04.ReLU"]
    assert relu["status"] == "failed" and relu["points"] == 0 and relu["target"] == "ReLU"
    assert mutant.message in relu["message"]  # "ReLU().backward(dA) ... is wrong at ..."
    assert checks["hw04.LinearLayer"]["status"] == "passed"
    assert "scratch_ffn.pt is missing" in checks["hw04.scratch_ffn.accuracy"]["message"]
    assert state["score"] < state["max_score"]
