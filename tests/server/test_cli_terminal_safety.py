"""The server's CLI prints what users and students control (user names from a roster, the grading report the
server returns) with control characters and bidi overrides escaped; run as the README runs it."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.server.stack import start_stack
from tests.test_terminal_safety import ESCAPED, controls, evil_zip

EVIL_NAME = "mallory\x1b[2j\x1b[h\x08\u202enimda"  # user names are lower case and have no white space


@pytest.fixture
def run(tmp_path, h):
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "inst"))
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_INTERNAL_SECRET", "AUTOGRADER_BROKER_URL"):
        env.pop(k, None)

    def go(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(h.cli(*args), env=env, capture_output=True, text=True, timeout=120, cwd=h.PROJECT)

    return go


def test_user_names_from_a_roster_are_printed_escaped(run, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"username,name,email,role\n{EVIL_NAME},M,m@x.org,student\n", encoding="utf-8")
    out = run("users", "import", str(roster))
    assert out.returncode == 0, out.stderr
    assert controls(out.stdout) == []
    assert out.stdout.splitlines()[1].startswith("mallory\\x1b[2j\\x1b[h\\x08\\u202enimda,student,created,")
    add = run("users", "add", "eve\x1b]0;title\x07\u2066")
    assert add.returncode == 0 and controls(add.stdout) == [] and "eve\\x1b]0;title\\x07\\u2066" in add.stdout
    again = run("users", "add", EVIL_NAME)  # exists: the error names it
    assert again.returncode == 1 and controls(again.stderr) == [] and "mallory\\x1b[2j" in again.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_submit_prints_the_servers_report_escaped_with_the_true_score(tmp_path, h, procs):
    stack = start_stack(tmp_path, h, procs)
    stack.start_worker()
    z = evil_zip(tmp_path / "evil.zip")
    out = subprocess.run(h.cli("submit", str(z), "--server", stack.base, "--token", stack.token),
                         capture_output=True, text=True, timeout=600, cwd=h.PROJECT)
    assert out.returncode == 0, out.stderr + "\n" + stack.logs()
    assert controls(out.stdout) == [] and controls(out.stderr) == []
    assert all(e in out.stdout for e in ESCAPED), out.stdout
    first = out.stdout.splitlines()[0]
    score = re.fullmatch(r"Assignment rpz-cnn: graded, ([\d.]+) / 6 points, lab not passed", first)
    assert score is not None and float(score.group(1)) < 3.0, first
    assert "the folder 'hw\\x1b[2J\\x1b[H\\r\\x08\\x08\\u202e" in out.stdout


def test_worker_log_lines_carry_student_text_as_json_escapes():
    """A worker log line that quotes student text (an outcome, an exception) is one ASCII line of JSON."""
    import json
    import logging

    from server.worker_logging import JsonFormatter
    from tests.test_terminal_safety import FORGED

    record = logging.LogRecord("autograder.grading", logging.WARNING, __file__, 1, "progress for %s: %s",
                               ("submission 7", FORGED + "\nsecond line"), None)
    line = JsonFormatter().format(record)
    assert line.isascii() and "\n" not in line and controls(line) == []
    assert json.loads(line)["message"] == f"progress for submission 7: {FORGED}\nsecond line"
