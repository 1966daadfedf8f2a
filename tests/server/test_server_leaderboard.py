"""Leaderboard (best/latest, ties to the earlier upload, own row, nicknames, hidden) and the grading report."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import Submission, utcnow
from server.services import submissions as svc

T0 = utcnow() - timedelta(days=10)


def result(weighted: float, passed: bool = True) -> dict:
    checks = [CheckResult(id="c", target="Linear", status=CheckStatus.PASSED if passed else CheckStatus.FAILED,
                          points=6.0 if passed else 0.0, max_points=6.0)]
    metrics = {"finetune.weighted": weighted, "finetune.orig": weighted + 0.01, "finetune.aug": weighted - 0.01,
               "finetune.new": weighted - 0.02, "mynet.accuracy": 0.9}
    return GradeResult.from_checks(assignment="rpz-cnn", checks=checks, metrics=metrics, timings={},
                                   notices=[]).to_dict()


@pytest.fixture
def grade(db, h, settings):
    """Add a graded submission for `username` uploaded at T0 + minutes."""

    def add(username: str, weighted: float, minutes: float, passed: bool = True) -> int:
        user, a = h.get_user(db, username), h.get_assignment(db)
        n = svc.uploads_used(db, user, a) + 1
        sub = Submission(user_id=user.id, assignment_id=a.id, upload_number=n, stored_name=f"00/{username}{n}.zip",
                         created_at=T0 + timedelta(minutes=minutes))
        db.add(sub)
        db.commit()
        c = svc.claim(db, settings, sub.id, hostname="w")
        svc.finish(db, settings, sub.id, c.token, result(weighted, passed))
        return sub.id

    return add


def names(board) -> list[tuple[int, str, float]]:
    return [(r["rank"], r["name"], r["value"]) for r in board["rows"]]


def test_best_counts_and_ties_go_to_the_earlier(as_user, grade):
    grade("alice", 0.80, 5)
    grade("alice", 0.70, 6)
    grade("bob", 0.80, 3)  # same value, earlier: ranks first
    grade("teacher", 0.99, 1)  # an instructor trying the reference: never ranked, never takes a bonus
    board = as_user("alice").get("/assignments/rpz-cnn/leaderboard.json").json
    assert names(board) == [(1, "Bob B", 0.8), (2, "Alice A", 0.8)]
    mine = [r for r in board["rows"] if r["me"]]
    assert len(mine) == 1 and mine[0]["name"] == "Alice A" and mine[0]["uploads"] == 2
    assert mine[0]["metrics"]["finetune.orig"] == pytest.approx(0.81)
    assert mine[0]["metrics"]["mynet.accuracy"] == pytest.approx(0.9)
    page = as_user("alice").get("/assignments/rpz-cnn/leaderboard")
    assert '<tr class="me">' in page.text and "ORIG" in page.text and "NEW" in page.text


def test_latest_counts(as_user, grade, db, h):
    a = h.get_assignment(db)
    a.leaderboard_counts = "latest"
    db.commit()
    grade("alice", 0.90, 1)
    grade("alice", 0.60, 2)
    grade("bob", 0.70, 1)
    assert names(as_user("bob").get("/assignments/rpz-cnn/leaderboard.json").json) == [
        (1, "Bob B", 0.7), (2, "Alice A", 0.6)]


def test_anonymous_and_hidden(as_user, grade, db, h):
    grade("alice", 0.9, 1)
    grade("bob", 0.8, 1)
    a = h.get_assignment(db)
    a.leaderboard_visibility = "anonymous"
    db.commit()
    board = as_user("bob").get("/assignments/rpz-cnn/leaderboard.json").json
    nick = h.get_user(db, "alice").nickname
    assert [r["name"] for r in board["rows"]] == [nick, h.get_user(db, "bob").nickname]
    assert board["rows"][0]["submission_id"] is None  # no link into another student's submission
    assert f'id="my-nickname">{h.get_user(db, "bob").nickname}<' in as_user("bob").get("/assignments/rpz-cnn/leaderboard").text
    assert "Alice" in json.dumps(as_user("teacher").get("/assignments/rpz-cnn/leaderboard.json").json)
    a.leaderboard_visibility = "hidden"
    a.challenge_deadline = utcnow() + timedelta(days=1)
    db.commit()
    hidden = as_user("bob").get("/assignments/rpz-cnn/leaderboard.json").json
    assert hidden["hidden"] and hidden["rows"] == []
    assert len(as_user("teacher").get("/assignments/rpz-cnn/leaderboard.json").json["rows"]) == 2
    a.challenge_deadline = utcnow() - timedelta(minutes=1)
    db.commit()
    assert len(as_user("bob").get("/assignments/rpz-cnn/leaderboard.json").json["rows"]) == 2


def test_report_bonus_by_rank_at_deadline(as_user, grade, db, h):
    from server.services import accounts

    for i in range(7):
        accounts.add_user(db, f"s{i}", name=f"S{i}", password="password-123")
    db.commit()
    for i in range(7):
        grade(f"s{i}", 0.90 - i * 0.01, 10)  # s0 best ... s6
    grade("teacher", 0.999, 1)  # instructors do not take a place
    grade("alice", 0.99, 30)  # after the deadline: not eligible for bonus
    grade("bob", 0.95, 5, passed=False)  # did not pass the lab: no bonus
    a = h.get_assignment(db)
    a.challenge_deadline = T0 + timedelta(minutes=20)
    db.commit()
    t = as_user("teacher")
    r = t.get("/instructor/assignments/rpz-cnn/report.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert [rows[f"s{i}"]["bonus"] for i in range(7)] == ["6", "5", "4", "3", "2", "1", "0"]
    assert rows["alice"]["bonus"] == "0" and rows["alice"]["passed"] == "yes" and rows["alice"]["counted"] == "0.99"
    assert rows["bob"]["bonus"] == "0" and rows["bob"]["passed"] == "no"
    assert "teacher" not in rows  # the report lists students only
    page = t.get("/instructor/assignments/rpz-cnn/report")
    assert page.status_code == 200 and "<svg" in page.text


def test_many_uploads_flagged(as_user, grade, db, h, settings):
    for i in range(settings.flag_min_uploads):
        grade("alice", 0.5 + i / 1000, i)
    from server.services import accounts

    for i in range(4):  # a class where most students upload a few times
        accounts.add_user(db, f"s{i}", password="password-123")
        db.commit()
        grade(f"s{i}", 0.6, 1)
    grade("bob", 0.6, 1)
    r = as_user("teacher").get("/instructor/assignments/rpz-cnn/report.csv")
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows["alice"]["flagged_many_uploads"] == "yes" and rows["bob"]["flagged_many_uploads"] == "no"


def test_instructor_submissions_filters(as_user, grade, h):
    grade("alice", 0.5, 1)
    grade("bob", 0.6, 2)
    t = as_user("teacher")
    assert t.get("/instructor/submissions?student=ali").text.count("<td>alice</td>") == 1
    assert "<td>bob</td>" not in t.get("/instructor/submissions?student=ali").text
    assert "No submissions match" in t.get("/instructor/submissions?status=queued").text
    since = (T0 + timedelta(days=1)).strftime("%Y-%m-%d")
    assert "No submissions match" in t.get(f"/instructor/submissions?since={since}").text


def test_assignment_settings_form(as_user, db, h):
    t = as_user("teacher")
    page = t.get("/instructor/assignments/rpz-cnn/settings")
    data = {"csrf_token": h.csrf_of(page.text), "opens_at": "", "closes_at": "2030-01-01T10:00",
            "challenge_deadline": "2025-01-12T23:59", "upload_limit": "50", "max_upload_mb": "20",
            "leaderboard_visibility": "anonymous", "leaderboard_counts": "latest", "bonus_points": "6,5,4,3,2,1"}
    assert t.post("/instructor/assignments/rpz-cnn/settings", data=data).status_code == 302
    db.expire_all()
    a = h.get_assignment(db)
    assert a.upload_limit == 50 and a.max_upload_bytes == 20 * 2**20 and a.leaderboard_counts == "latest"
    assert a.challenge_deadline.strftime("%Y-%m-%d %H:%M") == "2025-01-12 23:59"
    assert "0 of 50 uploads used" in as_user("alice").get("/assignments/rpz-cnn").text


def test_live_polls_get_304_until_the_board_changes(as_user, grade):
    grade("alice", 0.60, 1)
    c = as_user("alice")
    first = c.get("/assignments/rpz-cnn/leaderboard.json")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag and "no-cache" in first.headers["Cache-Control"]
    same = c.get("/assignments/rpz-cnn/leaderboard.json", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    other = as_user("bob").get("/assignments/rpz-cnn/leaderboard.json", headers={"If-None-Match": etag})
    assert other.status_code == 200  # another viewer's own row differs: never their cached copy
    grade("bob", 0.70, 2)
    changed = c.get("/assignments/rpz-cnn/leaderboard.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert [r["name"] for r in changed.json["rows"]] == ["Bob B", "Alice A"]


def test_page_rows_match_the_json_and_escape_names(as_user, grade, db, h):
    h.get_user(db, "bob").name = "<script>alert(1)</script>"
    db.commit()
    grade("bob", 0.75, 1)
    grade("alice", 0.5, 2)
    c = as_user("alice")
    page = c.get("/assignments/rpz-cnn/leaderboard").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = [r for r in body.split("<tr")[1:]]
    assert len(rows) == 2 and rows[1].startswith(' class="me"') and not rows[0].startswith(' class="me"')
    board = c.get("/assignments/rpz-cnn/leaderboard.json").json
    cells = rows[0].split("<td>")[1:]
    assert cells[0].startswith("1<") and cells[2].startswith(f"{100 * board['rows'][0]['value']:.2f}<")
    assert len(cells) == 3 + len([col for col in board["columns"] if col["metric"] != board["metric"]]) + 2
