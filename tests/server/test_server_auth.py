"""Auth: hashed passwords, login, rate limiting, CSRF, secure cookies, first-login tokens, roster import."""

from __future__ import annotations

from sqlalchemy import select

from server.models import User
from server.services import accounts


def test_passwords_are_hashed(db, h):
    alice = h.get_user(db, "alice")
    assert alice.password_hash and h.PASSWORDS["alice"] not in alice.password_hash
    assert alice.password_hash.startswith("scrypt:")


def test_login_and_logout(app, h):
    c = app.test_client()
    assert c.get("/").status_code == 302  # to the login page
    r = h.login(c, "alice")
    assert r.status_code == 302
    assert c.get("/").status_code == 200
    token = h.csrf_of(c.get("/").text)
    assert c.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert c.get("/").status_code == 302


def test_wrong_password_refused(app, h):
    c = app.test_client()
    r = h.login(c, "alice", "nope-nope")
    assert r.status_code == 401 and "Wrong username or password" in r.text
    assert c.get("/").status_code == 302


def test_login_rate_limited(app, h, settings):
    c = app.test_client()
    for _ in range(settings.login_max_failures):
        assert h.login(c, "alice", "wrong-password").status_code == 401
    r = h.login(c, "alice")  # even the right password is refused while limited
    assert r.status_code == 429 and "Too many failed logins" in r.text
    assert h.login(app.test_client(), "bob").status_code == 302  # other users are not affected


def test_forms_need_csrf(app, h):
    c = app.test_client()
    r = c.post("/auth/login", data={"username": "alice", "password": h.PASSWORDS["alice"]})
    assert r.status_code == 400
    h.login(c, "alice")
    r = c.post("/assignments/rpz-cnn/upload", data={"file": (__import__("io").BytesIO(b"x"), "a.zip")},
               content_type="multipart/form-data")
    assert r.status_code == 400
    assert c.post("/auth/tokens", data={"name": "x"}).status_code == 400


def test_session_cookie_is_secure(app, h):
    r = h.login(app.test_client(), "alice")
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_open_redirect_refused(app, h):
    c = app.test_client()
    token = h.csrf_of(c.get("/auth/login").text)
    r = c.post("/auth/login?next=//evil.example/x", data={"username": "alice", "password": h.PASSWORDS["alice"],
                                                          "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_roster_import_and_first_login(app, db, h):
    out = accounts.import_roster(db, "username,name,email\ncarol,Carol C,c@example.org\nalice,Alice New,\n")
    assert [(i.user.username, i.created, bool(i.setup_token)) for i in out] == [("carol", True, True),
                                                                              ("alice", False, False)]
    assert h.get_user(db, "alice").name == "Alice New"
    carol = h.get_user(db, "carol")
    assert carol.password_hash is None
    c = app.test_client()
    assert h.login(c, "carol", "anything-at-all").status_code == 401
    link = f"/auth/setup/{out[0].setup_token}"
    page = c.get(link)
    assert page.status_code == 200 and "carol" in page.text
    r = c.post(link, data={"password": "short", "confirm": "short", "csrf_token": h.csrf_of(page.text)})
    assert r.status_code == 200  # refused: too short, form shown again
    r = c.post(link, data={"password": "carol-pass-1", "confirm": "carol-pass-1", "csrf_token": h.csrf_of(page.text)})
    assert r.status_code == 302
    assert c.get(link).status_code == 404  # the token is used up
    assert h.login(app.test_client(), "carol", "carol-pass-1").status_code == 302


def test_roster_import_web_form(as_user, db, h):
    c = as_user("teacher")
    page = c.get("/instructor/roster")
    r = c.post("/instructor/roster", data={"csrf_token": h.csrf_of(page.text),
                                           "text": "username,name,role\ndave,Dave D,student\neve,Eve E,instructor\n"})
    assert r.status_code == 200 and "/auth/setup/" in r.text
    roles = dict(db.execute(select(User.username, User.role)).all())
    assert roles["dave"] == "student" and roles["eve"] == "instructor"


def test_roster_without_username_column_refused(db):
    import pytest

    with pytest.raises(accounts.AccountError):
        accounts.import_roster(db, "name,email\nX,x@y\n")


def test_expired_setup_token(app, db, h):
    from datetime import timedelta

    user, token = accounts.add_user(db, "frank")
    user.setup_token_expires_at = user.setup_token_expires_at - timedelta(days=30)
    db.commit()
    assert app.test_client().get(f"/auth/setup/{token}").status_code == 404


def test_token_page_creates_token(as_user, db, h):
    c = as_user("alice")
    page = c.get("/auth/tokens")
    r = c.post("/auth/tokens", data={"csrf_token": h.csrf_of(page.text), "name": "laptop"})
    assert r.status_code == 200 and 'id="new-token"' in r.text


def test_revoke_own_token_only(app, as_user, db, h):
    alice_token = accounts.create_api_token(db, h.get_user(db, "alice"), name="laptop")
    from server.models import ApiToken

    accounts.create_api_token(db, h.get_user(db, "bob"))
    bob_token_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == h.get_user(db, "bob").id))
    c = as_user("alice")
    page = c.get("/auth/tokens")
    assert "laptop" in page.text
    token = h.csrf_of(page.text)
    assert c.post(f"/auth/tokens/{bob_token_id}/revoke", data={"csrf_token": token}).status_code == 404
    alice_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == h.get_user(db, "alice").id))
    assert c.post(f"/auth/tokens/{alice_id}/revoke", data={"csrf_token": token}).status_code == 302
    r = app.test_client().get("/api/v1/assignments", headers={"Authorization": f"Bearer {alice_token}"})
    assert r.status_code == 401


def test_rate_limit_uses_the_client_address_behind_a_trusted_proxy(settings, h):
    from server import create_app
    from server.db import upgrade

    upgrade(settings.database_url)
    app = create_app(settings=settings.with_(trusted_proxies=1))
    from sqlalchemy.orm import Session

    from server.web import runtime

    with Session(runtime(app).engine) as s:
        accounts.add_user(s, "alice", password=h.PASSWORDS["alice"])
        s.commit()
    for i in range(4 * settings.login_max_failures):
        c = app.test_client()
        token = h.csrf_of(c.get("/auth/login").text)
        c.post("/auth/login", data={"username": f"nobody{i}", "password": "x", "csrf_token": token},
               headers={"X-Forwarded-For": "203.0.113.9"})
    c = app.test_client()
    token = h.csrf_of(c.get("/auth/login").text)
    other = c.post("/auth/login", data={"username": "alice", "password": h.PASSWORDS["alice"], "csrf_token": token},
                   headers={"X-Forwarded-For": "198.51.100.7"})
    assert other.status_code == 302  # another client behind the same proxy is not locked out
    c = app.test_client()
    token = h.csrf_of(c.get("/auth/login").text)
    same = c.post("/auth/login", data={"username": "alice", "password": h.PASSWORDS["alice"], "csrf_token": token},
                  headers={"X-Forwarded-For": "203.0.113.9"})
    assert same.status_code == 429
