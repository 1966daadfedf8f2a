"""`autograder similarity` against a real database and upload folder: seeded uploads, graded through the real
claim/finish services, read back with the grader's unpacker; the terminal output is escaped, the CSV safe."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import zipfile
from pathlib import Path

import pytest

from grader.result import CheckResult, CheckStatus, GradeResult
from server.services import accounts, claims, finishing
from server.services import similarity as svc
from server.services import submissions as subs
from tests.similarity_copies import disguised
from tests.similarity_honest import HONEST
from tests.tooling import import_tool

import_tool("copydetect")

ROOT = Path(__file__).resolve().parents[2]
EVIL = "=cmd|\x1b[2j"
"""A user name that is a spreadsheet formula and a terminal escape (user names are stored lowercased)."""
REFERENCE = (ROOT / "grader/assignments/rpz_cnn/reference/numpy_nn.py").read_text()


def noop(sid: int, delay: float = 0.0, lane: str = "quick") -> None:
    """No broker: the test claims the rows itself."""


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def graded_upload(db, settings, h, username: str, data: bytes, *, grade: bool = True):
    user = accounts.find_user(db, username) or accounts.add_user(db, username, password="pw-123456789")[0]
    db.commit()
    sub = subs.submit_upload(db, settings, noop, user=user, assignment=h.get_assignment(db),
                             stream=io.BytesIO(data), filename="a.zip")
    if grade:
        c = claims.claim(db, settings, sub.id, hostname="w1")
        check = CheckResult(id="numpy_nn.Linear.forward", target="Linear", status=CheckStatus.PASSED, points=1.0,
                            max_points=1.0, message="", seconds=0.1)
        result = GradeResult.from_checks(assignment="rpz-cnn", checks=[check], metrics={}, timings={}, notices=[])
        finishing.finish(db, settings, sub.id, c.token, result.to_dict(), kept=[])
    return sub


@pytest.fixture
def course(db, settings, h):
    copy = disguised(REFERENCE, 3)
    graded_upload(db, settings, h, "alice", zip_of({"numpy_nn.py": HONEST["verbose"]}))  # earlier, replaced
    graded_upload(db, settings, h, "alice", zip_of({"numpy_nn.py": REFERENCE, "notes.txt": "x"}))
    graded_upload(db, settings, h, "bob", zip_of({"numpy_nn.py": copy}))
    graded_upload(db, settings, h, EVIL, zip_of({"numpy_nn.py": disguised(REFERENCE, 4)}))
    graded_upload(db, settings, h, "carol", zip_of({"numpy_nn.py": HONEST["functional"]}))
    graded_upload(db, settings, h, "dave", zip_of({"numpy_nn.py": HONEST["base_class"]}))
    graded_upload(db, settings, h, "erin", zip_of({"numpy_nn.py": REFERENCE}), grade=False)  # not graded yet
    graded_upload(db, settings, h, "frank", b"PK\x05\x06" + b"\0" * 18)  # graded, but no usable zip
    return db


def test_each_students_latest_graded_submission_is_compared(course, settings, h):
    chosen = dict(svc.latest_graded(course, h.get_assignment(course)))
    assert sorted(chosen) == [EVIL, "alice", "bob", "carol", "dave", "frank"]
    assert chosen["alice"].upload_number == 2
    report = svc.run(course, settings, h.get_assignment(course))
    assert report.compared == 5 and [u for u, _ in report.skipped] == ["frank"]
    assert {frozenset((p.student_a, p.student_b)) for p in report.pairs} == {
        frozenset(("alice", "bob")), frozenset(("alice", EVIL)), frozenset(("bob", EVIL))}


def test_cli_prints_escaped_pairs_and_writes_a_safe_csv(course, settings, h, tmp_path):
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(settings.instance_dir))
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_UPLOAD_DIR", "AUTOGRADER_BROKER_URL"):
        env.pop(k, None)
    out_csv = tmp_path / "pairs.csv"
    proc = subprocess.run(h.cli("similarity", "rpz-cnn", "--csv", str(out_csv)), env=env, capture_output=True,
                          text=True, timeout=300, cwd=h.PROJECT)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\\x1b[2j" in proc.stdout
    assert "5 students compared, 3 pairs" in proc.stdout
    assert "skipped frank" in proc.stderr
    rows = list(csv.DictReader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert list(rows[0]) == ["student_a", "student_b", "score", "files", "lines"]
    assert len(rows) == 3
    names = {r["student_a"] for r in rows} | {r["student_b"] for r in rows}
    assert "'" + EVIL in names and EVIL not in names  # never a formula
    assert all(r["files"].startswith("numpy_nn.py ") and " a:" in r["lines"] for r in rows)
    bad = subprocess.run(h.cli("similarity", "no-such"), env=env, capture_output=True, text=True, timeout=120,
                         cwd=h.PROJECT)
    assert bad.returncode == 1 and "no assignment" in bad.stderr


def test_safe_cell():
    assert [svc.safe_cell(v) for v in ("=1+2", "+x", "-x", "@x", "alice", "")] == ["'=1+2", "'+x", "'-x", "'@x",
                                                                                  "alice", ""]
    rnd = random.Random(0)
    assert svc.safe_cell(str(rnd.random())) [0] != "'"
