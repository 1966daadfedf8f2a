"""Student text printed by `autograder grade` cannot drive the terminal: a folder name and an exception message
full of escape sequences, carriage returns, backspaces and bidi overrides are shown escaped, and the report
shows the true score. The gradings run through the real CLI and the real sandbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.archive import ArchiveLimits, unpack_submission
from grader.report import render_text
from grader.result import CheckResult, CheckStatus, GradeResult, Status
from grader.terminal import visible, visible_lines
from tests.conftest import reference_file

PROJECT = Path(__file__).resolve().parent.parent
# Clear the screen, home the cursor, return to column 0, back up, reverse the text direction, set the title...
FOLDER = "hw\x1b[2J\x1b[H\r\b\b\u202e\u2066\x9b31m"
FORGED = ("\x1b[2J\x1b[HAssignment rpz-cnn: graded, 6 / 6 points, lab passed\x1b]0;owned\x07\r\b\b"
          "\u202edessap\u200b\x7f\x1b[8m")
ATTACK_CHARS = "\x1b\r\b\u202e\u2066\x9b\x07\x7f\u200b"
ESCAPED = ("\\x1b[2J", "\\r", "\\x08", "\\u202e", "\\u2066", "\\x9b", "\\x07", "\\x7f", "\\u200b")


def controls(text: str) -> list[str]:
    """Characters a terminal would act on or hide (newlines between lines are the report's own)."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def evil_zip(path: Path) -> Path:
    src = reference_file("numpy_nn.py").decode()
    forward = "        return x @ self.W + self.b"
    assert forward in src
    src = src.replace(forward, f"        raise RuntimeError({FORGED!r})\n{forward}", 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{FOLDER}/numpy_nn.py", src)
    return path


def cli_grade(zip_path: Path, fast_settings, *extra: str) -> subprocess.CompletedProcess[str]:
    """`autograder grade` as an instructor runs it (the console script, this checkout on PYTHONPATH)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT), "LANG": "C.UTF-8",
           "AUTOGRADER_WORK_DIR": str(fast_settings.work_dir), "AUTOGRADER_CGROUP_NAME": fast_settings.cgroup_name,
           "AUTOGRADER_LIMITS": ",".join(f"{k}={v}" for k, v in fast_settings.limit_overrides.items())}
    return subprocess.run([str(Path(sys.executable).parent / "autograder"), "grade", str(zip_path), *extra],
                          capture_output=True, text=True, env=env, timeout=900, cwd=zip_path.parent)


# ----------------------------------------------------------------------------------------------- units


def test_visible_escapes_every_control_and_invisible_format_character():
    for c in ("\x00", "\x1b", "\r", "\n", "\t", "\b", "\x7f", "\x85", "\x9b", "\u200b", "\u200d", "\u202a",
              "\u202e", "\u2066", "\u2069", "\u2028", "\ufeff", "\ud800", "\ue000", "\U000e0041"):
        shown = visible(f"a{c}b")
        assert controls(shown) == [] and "\n" not in shown, repr(c)
        assert shown == "a" + ascii(c)[1:-1] + "b"
    assert visible("Zoë 漢字 ok") == "Zoë 漢字 ok"  # printable text is left alone
    assert visible_lines("one\ntwo\x1b[2J") == ["one", "two\\x1b[2J"]


def test_every_field_of_a_report_is_shown_escaped():
    result = GradeResult.from_checks(
        assignment="rpz-cnn" + FORGED, notices=[f"folder {FOLDER}"], timings={"total_s" + FORGED: 1.0},
        metrics={"mynet.accuracy" + FORGED: 0.5, "sandbox.x": 1.0},
        checks=[CheckResult(id="numpy_nn.Linear.forward" + FORGED, target="Linear" + FORGED,
                            status=CheckStatus.ERROR, points=0.0, max_points=1.0, message="line1\n" + FORGED)])
    text = render_text(result)
    assert controls(text) == []
    assert text.splitlines()[0].endswith(": graded, 0 / 1 points, lab not passed")
    assert all(e in text for e in ESCAPED)
    assert "line1\\n" in text  # a student's newline cannot start a line of its own
    rejected = render_text(GradeResult.rejected(assignment="rpz-cnn", message=f"bad\n{FORGED}", max_score=6.0))
    assert controls(rejected) == [] and rejected.splitlines()[2].startswith("  \\x1b[2J")


def test_archive_notices_bound_and_escape_the_folder_name(tmp_path):
    folder = FOLDER + "x" * 5000 + "\u202e"
    z = tmp_path / "long.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"{folder}/numpy_nn.py", "x = 1\n")
    unpacked = unpack_submission(z, tmp_path / "out", expected=["numpy_nn.py", "model.pt"], limits=ArchiveLimits())
    assert unpacked.found == {"numpy_nn.py"}
    assert unpacked.folder is not None and len(unpacked.folder) <= 100 and controls(unpacked.folder) == []
    (notice,) = unpacked.notices
    assert len(notice) < 400 and controls(notice) == [] and "hw\\x1b[2J" in notice


# ------------------------------------------------------------------------------------- the real CLI


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.usefixtures("host_unharmed")
def test_grade_report_on_the_terminal_shows_escapes_and_the_true_score(tmp_path, fast_settings):
    proc = cli_grade(evil_zip(tmp_path / "evil.zip"), fast_settings)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert controls(out) == [], [ascii(c) for c in controls(out)]
    assert all(e in out for e in ESCAPED), out
    first = out.splitlines()[0]
    score = re.fullmatch(r"Assignment rpz-cnn: graded, ([\d.]+) / 6 points, lab not passed", first)
    assert score is not None, first
    assert float(score.group(1)) < 3.0  # numpy_nn.py alone, and its Linear.forward raises
    assert "note: Your files are inside the folder 'hw\\x1b[2J\\x1b[H\\r\\x08\\x08\\u202e" in out
    lines = out.splitlines()
    check = next(i for i, line in enumerate(lines) if re.match(r"\s+(FAIL|ERROR)\s+numpy_nn\.Linear\.forward\s", line))
    message = lines[check + 1]  # the student's exception message: on its own line, escaped, not interpreted
    assert "\\x1b[2J\\x1b[HAssignment rpz-cnn: graded, 6 / 6 points, lab passed\\x1b]0;owned\\x07\\r" in message
    assert controls(proc.stderr) == []


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.usefixtures("host_unharmed")
def test_grade_json_stays_exact_and_ascii(tmp_path, fast_settings):
    proc = cli_grade(evil_zip(tmp_path / "evil.zip"), fast_settings, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.isascii()  # bidi and control characters as JSON escapes, also when printed raw
    result = json.loads(proc.stdout)
    assert result["status"] == Status.GRADED and result["score"] < 3.0
    forward = next(c for c in result["checks"] if c["id"] == "numpy_nn.Linear.forward")
    assert forward["status"] in ("failed", "error") and "6 / 6 points, lab passed\x1b]0;owned\x07\r\b\b\u202e" in \
        forward["message"]  # the exact text, for programs
    assert proc.stdout.count("\n") == 1  # one JSON document, nothing else


def test_archive_notices_are_bounded_in_number(tmp_path):
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(500):
            zf.writestr(f"copy{i}/deeper/numpy_nn.py", "x = 1\n")
            zf.writestr(f"copy{i}/deeper/Model.PT", b"x")
        zf.writestr("pytorch_cnn.py", "x = 1\n")
    unpacked = unpack_submission(z, tmp_path / "out", expected=["numpy_nn.py", "pytorch_cnn.py", "model.pt"],
                                 limits=ArchiveLimits())
    assert unpacked.found == {"pytorch_cnn.py"}
    assert len(unpacked.notices) == 8, unpacked.notices  # 3 + "... and 497 more" for each of the two files
    assert "... and 497 more files named like numpy_nn.py" in unpacked.notices[3]
    assert sum(map(len, unpacked.notices)) < 2000
