"""Every instructor route and every route of another student's submission, tried as the wrong user."""

from __future__ import annotations

import io

import pytest

PUBLIC = {"/auth/login", "/auth/setup/<token>", "/static/<path:filename>", "/api/v1/openapi.json", "/metrics",
          "/metrics/grading", "/healthz"}


def _fill(rule: str, sid: int) -> str:
    return (rule.replace("<name>", "rpz-cnn").replace("<int:submission_id>", str(sid))
            .replace("<int:regrade_id>", "1").replace("<int:sid>", str(sid)).replace("<int:token_id>", "1"))


def _routes(app, prefix: str) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            out.append((method, rule.rule))
    return out


@pytest.fixture
def bob_submission(as_user, h) -> int:
    r = h.upload(as_user("bob"), h.tiny_zip())
    return int(r.headers["Location"].rsplit("/", 1)[1])


def test_student_gets_403_on_every_instructor_route(app, as_user, h, bob_submission):
    from sqlalchemy.orm import Session

    from server.models import Regrade
    from server.web import runtime

    with Session(runtime(app).engine) as s:  # so that /instructor/regrades/1.json exists
        s.add(Regrade(assignment_id=1, requested_by=1, scope="x", total=0))
        s.commit()
    routes = _routes(app, "/instructor")
    assert len(routes) >= 14
    c = as_user("alice")
    token = h.csrf_of(c.get("/").text)
    for method, rule in routes:
        url = _fill(rule, bob_submission)
        if method == "GET":
            r = c.get(url)
        else:
            r = c.post(url, data={"csrf_token": token, "student": "", "name": "rpz-cnn", "text": "username\nzed\n",
                                  "file": (io.BytesIO(b"username\nzed\n"), "r.csv")},
                       content_type="multipart/form-data")
        assert r.status_code == 403, (method, url, r.status_code)
    # and an instructor gets through
    t = as_user("teacher")
    for method, rule in routes:
        if method == "GET":
            assert t.get(_fill(rule, bob_submission)).status_code in (200, 302), rule


def test_student_gets_403_on_another_students_submission(app, as_user, h, bob_submission):
    c = as_user("alice")
    for rule in ("/submissions/<int:submission_id>", "/submissions/<int:submission_id>.json",
                 "/submissions/<int:submission_id>/download"):
        assert c.get(_fill(rule, bob_submission)).status_code == 403, rule
    assert as_user("bob").get(f"/submissions/{bob_submission}").status_code == 200
    assert as_user("teacher").get(f"/submissions/{bob_submission}/download").status_code == 200
    assert c.get("/submissions/99999").status_code == 404


def test_student_page_hides_other_students_zip_and_instructor_reason(as_user, h, bob_submission):
    bob = as_user("bob")
    state = bob.get(f"/submissions/{bob_submission}.json").json
    assert "error_reason" not in state and "worker" not in state
    teacher_state = as_user("teacher").get(f"/submissions/{bob_submission}.json").json
    assert "error_reason" in teacher_state


def test_anonymous_is_sent_to_login_everywhere(app, bob_submission):
    c = app.test_client()
    for method, rule in _routes(app, "/"):
        if rule in PUBLIC or rule.startswith(("/internal", "/api")):
            continue
        url = _fill(rule, bob_submission)
        r = c.get(url) if method == "GET" else c.post(url)
        assert r.status_code in (302, 400), (method, url, r.status_code)  # 400: POST refused by CSRF first
        if r.status_code == 302:
            assert "/auth/login" in r.headers["Location"], url


def test_api_refuses_other_students_submission(app, db, bob_submission):
    from server.services import accounts

    token = accounts.create_api_token(db, accounts.find_user(db, "alice"))
    r = app.test_client().get(f"/api/v1/submissions/{bob_submission}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_internal_endpoints_need_the_signature(app, bob_submission):
    c = app.test_client()
    for method, rule in _routes(app, "/internal"):
        url = _fill(rule, bob_submission)
        r = c.get(url) if method == "GET" else c.post(url, json={"hostname": "x", "claim": "y"})
        assert r.status_code == 401, (method, url)
