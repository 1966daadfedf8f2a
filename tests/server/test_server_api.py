"""JSON API with token auth, OpenAPI description; migrations match the models."""

from __future__ import annotations

import io
from datetime import timedelta

from server.models import ApiToken, utcnow
from server.services import accounts


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_refuses_missing_wrong_expired_and_revoked_tokens(app, db):
    c = app.test_client()
    assert c.get("/api/v1/assignments").status_code == 401
    assert c.get("/api/v1/assignments", headers=auth("nope")).status_code == 401
    alice = accounts.find_user(db, "alice")
    token = accounts.create_api_token(db, alice)
    assert c.get("/api/v1/assignments", headers=auth(token)).status_code == 200
    row = db.query(ApiToken).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    r = c.get("/api/v1/assignments", headers=auth(token))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    row.expires_at, row.revoked = None, True
    db.commit()
    assert c.get("/api/v1/assignments", headers=auth(token)).status_code == 401


def test_api_upload_status_and_leaderboard(app, db, h, settings):
    token = accounts.create_api_token(db, accounts.find_user(db, "alice"))
    c = app.test_client()
    r = c.post("/api/v1/assignments/rpz-cnn/submissions", headers=auth(token),
               data={"file": (io.BytesIO(h.tiny_zip()), "s.zip")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.text
    assert r.json["status"] == "queued" and r.json["uploads_used"] == 1 and r.json["upload_limit"] == 100
    sid = r.json["id"]
    assert c.get(r.headers["Location"], headers=auth(token)).json["id"] == sid
    assert [s["id"] for s in c.get("/api/v1/submissions", headers=auth(token)).json["submissions"]] == [sid]
    lb = c.get("/api/v1/assignments/rpz-cnn/leaderboard", headers=auth(token))
    assert lb.status_code == 200 and lb.json["rows"] == []
    listed = c.get("/api/v1/assignments", headers=auth(token)).json["assignments"]
    assert listed[0]["name"] == "rpz-cnn" and listed[0]["uploads_used"] == 1


def test_api_refusals_store_nothing(app, db, h, settings):
    a = h.get_assignment(db)
    a.max_upload_bytes, a.upload_limit = 1000, 1
    db.commit()
    token = accounts.create_api_token(db, accounts.find_user(db, "alice"))
    c = app.test_client()
    r = c.post("/api/v1/assignments/rpz-cnn/submissions", headers=auth(token),
               data={"file": (io.BytesIO(b"x" * 100_000), "s.zip")}, content_type="multipart/form-data")
    assert r.status_code == 413 and "1000 bytes" in r.json["error"]
    assert c.post("/api/v1/assignments/rpz-cnn/submissions", headers=auth(token)).status_code == 400
    ok = c.post("/api/v1/assignments/rpz-cnn/submissions", headers=auth(token),
                data={"file": (io.BytesIO(h.tiny_zip()), "s.zip")}, content_type="multipart/form-data")
    assert ok.status_code == 201
    again = c.post("/api/v1/assignments/rpz-cnn/submissions", headers=auth(token),
                   data={"file": (io.BytesIO(h.tiny_zip()), "s.zip")}, content_type="multipart/form-data")
    assert again.status_code == 429 and "1 of 1" in again.json["error"]
    assert len(h.files_under(settings.upload_dir)) == 1


def test_api_does_not_use_session_cookies_or_need_csrf(app, as_user, h):
    c = as_user("alice")  # a logged-in browser session is not an API credential
    assert c.get("/api/v1/assignments").status_code == 401


def test_openapi_description(app):
    spec = app.test_client().get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/assignments/{name}/submissions" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_migrations_match_models_and_downgrade(tmp_path):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import server.models  # noqa: F401
    from server.db import Base, alembic_config, make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    command.downgrade(alembic_config(url), "base")
    upgrade(url)
    engine.dispose()


def test_metrics_off_by_default_and_token_protected(app, settings, h, as_user):
    from server.web import runtime

    c = app.test_client()
    assert c.get("/metrics").status_code == 404
    runtime(app).settings = settings.with_(metrics_token="scrape-me")
    h.upload(as_user("alice"), h.tiny_zip())
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = c.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert r.status_code == 200 and 'autograder_submissions{status="queued"} 1.0' in r.text
    assert "autograder_workers_alive 0.0" in r.text


def test_every_api_response_matches_the_generated_openapi(app, db, h, settings):
    """Each operation and answer the API has, student and instructor; the `app` fixture validates every API
    response of every test against /api/v1/openapi.json (tests/server/openapi_check.py), this one included."""
    from tests.server.test_server_lifecycle import Worker, graded

    spec = app.test_client().get("/api/v1/openapi.json").json
    sub = spec["components"]["schemas"]["Submission"]
    assert {"uploaded_at", "filename", "finished_at", "queue_position", "result"} <= set(sub["required"])
    assert sub["additionalProperties"] is False and "error_reason" in sub["properties"]
    assert sorted(spec["paths"]) == ["/api/v1/assignments", "/api/v1/assignments/{name}/leaderboard",
                                     "/api/v1/assignments/{name}/submissions", "/api/v1/submissions",
                                     "/api/v1/submissions/{submission_id}"]

    alice = auth(accounts.create_api_token(db, accounts.find_user(db, "alice")))
    bob = auth(accounts.create_api_token(db, accounts.find_user(db, "bob")))
    teacher = auth(accounts.create_api_token(db, accounts.find_user(db, "teacher")))
    c = app.test_client()
    zip_file = {"file": (io.BytesIO(h.tiny_zip()), "s.zip")}
    sid = c.post("/api/v1/assignments/rpz-cnn/submissions", headers=alice, data=zip_file,
                 content_type="multipart/form-data").json["id"]
    c.get(f"/api/v1/submissions/{sid}", headers=alice)  # queued
    worker = Worker(app.test_client(), settings.internal_secret)
    claim = worker.claim(sid).json["claim"]
    c.get(f"/api/v1/submissions/{sid}", headers=alice)  # running
    worker.result(sid, claim, graded(0.8))
    for who in (alice, bob, teacher):
        c.get("/api/v1/assignments", headers=who)
        c.get("/api/v1/submissions", headers=who)
        c.get(f"/api/v1/submissions/{sid}", headers=who)
        c.get("/api/v1/assignments/rpz-cnn/leaderboard", headers=who)
    c.get("/api/v1/submissions/999999", headers=alice)
    c.get("/api/v1/assignments/nope/leaderboard", headers=alice)
    c.post("/api/v1/assignments/nope/submissions", headers=alice)
    c.post("/api/v1/assignments/rpz-cnn/submissions", headers=alice)
    c.get("/api/v1/submissions", headers=auth("wrong"))
    a = h.get_assignment(db)
    a.leaderboard_visibility, a.max_upload_bytes = "hidden", 1000
    db.commit()
    c.get("/api/v1/assignments/rpz-cnn/leaderboard", headers=alice)
    c.post("/api/v1/assignments/rpz-cnn/submissions", headers=alice,
           data={"file": (io.BytesIO(b"x" * 100_000), "s.zip")}, content_type="multipart/form-data")

    seen = app.extensions["api_responses"]
    assert not seen.problems, seen.problems
    statuses = {(m, p, s) for m, p, s in seen.checked}
    assert {("GET", "/api/v1/submissions/{submission_id}", s) for s in (200, 403, 404)} <= statuses
    assert {("POST", "/api/v1/assignments/{name}/submissions", s) for s in (201, 400, 404, 413)} <= statuses
    assert {("GET", "/api/v1/assignments/{name}/leaderboard", s) for s in (200, 404)} <= statuses
    assert ("GET", "/api/v1/submissions", 401) in statuses and ("GET", "/api/v1/assignments", 200) in statuses
