"""Hostile input against the web app (issue 11, items 11-15): each test builds the attack (tests/server/attacks.py)
against the real app - Flask's test client on SQLite, `autograder web` (gunicorn), Debian's nginx with
docker/nginx.conf, a real PostgreSQL, headless Chromium - and checks the outcome. Loopback only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.models import LoginAttempt, User, utcnow
from server.security import local_redirect
from server.services import accounts
from tests.server import attacks
from tests.server.pg import PostgresUnavailable, init_cluster, wait_ready
from tests.tooling import import_tool, missing_tool

# ---------------------------------------------------------------- 11: open redirect after login


@pytest.mark.parametrize(("what", "target"), attacks.OPEN_REDIRECTS, ids=[w for w, _ in attacks.OPEN_REDIRECTS])
def test_redirect_target_off_site_refused(what, target):
    assert local_redirect(target) is None, what


@pytest.mark.parametrize("target", attacks.LOCAL_REDIRECTS)
def test_redirect_target_on_site_kept(target):
    assert local_redirect(target) == target


def login_with_next(client, h, target: str):
    token = h.csrf_of(client.get("/auth/login").text)
    return client.post("/auth/login?next=" + urllib.parse.quote(target, safe=""),
                       data={"username": "alice", "password": h.PASSWORDS["alice"], "csrf_token": token})


def location_after_login(app, h, target: str) -> str | None:
    try:
        return login_with_next(app.test_client(), h, target).headers.get("Location")
    except ValueError as exc:  # e.g. a newline in the Location header: a 500 in production
        return f"crash: {exc}"


def test_login_next_stays_on_the_app(app, h):
    led = {what: where for what, target in attacks.OPEN_REDIRECTS
           if (where := location_after_login(app, h, target)) != "/"}
    assert not led, f"these next= values were followed: {led}"


def test_login_next_to_an_app_page_is_followed(app, h):
    r = login_with_next(app.test_client(), h, "/assignments/rpz-cnn?tab=history")
    assert r.headers["Location"] == "/assignments/rpz-cnn?tab=history"


def test_regrade_back_field_stays_on_the_app(app, as_user, h):
    sid = int(h.upload(as_user("alice"), h.tiny_zip()).headers["Location"].rsplit("/", 1)[1])
    teacher = as_user("teacher")
    token = h.csrf_of(teacher.get("/instructor/submissions").text)
    for what, back in attacks.OPEN_REDIRECTS:
        r = teacher.post(f"/instructor/submissions/{sid}/regrade", data={"csrf_token": token, "back": back})
        assert r.status_code == 302 and r.headers["Location"] == f"/submissions/{sid}", what
    r = teacher.post(f"/instructor/submissions/{sid}/regrade",
                     data={"csrf_token": token, "back": "/instructor/submissions?status=queued"})
    assert r.headers["Location"] == "/instructor/submissions?status=queued"


class _Evil(BaseHTTPRequestHandler):
    visits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/favicon.ico":
            _Evil.visits.append(self.path)
        body = b"<h1 id='evil'>evil.example</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.slow
def test_chromium_stays_on_the_app_after_login(tmp_path, h, procs):
    """Chromium resolves evil.example to a loopback server of ours, so that following a redirect there would
    show; it logs in with each `next` and must end on the app's start page."""
    from tests.server.browser import ARGS, CHROMIUM

    sync_api = import_tool("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        missing_tool("Debian's chromium is not installed")
    evil = ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    _Evil.visits = []
    web = attacks.start_web(tmp_path, h, procs)
    rules = f"--host-resolver-rules=MAP evil.example 127.0.0.1:{evil.server_address[1]}"
    payloads = ["/\t/evil.example/", "/%09/evil.example/", "/\\evil.example/", "//evil.example/", "/%2F%2Fevil.example/",
                "/%5Cevil.example/", "\\\\evil.example/", "/\uff0f/evil.example/", "/\n/evil.example/"]
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
            page = browser.new_page()
            page.goto("http://evil.example/probe")  # the mapping works: a redirect there would land
            assert page.locator("#evil").count() == 1 and _Evil.visits == ["/probe"]
            for target in payloads:
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{web.base}/auth/login?next=" + urllib.parse.quote(target, safe=""))
                page.fill("#username", "alice")
                page.fill("#password", h.PASSWORDS["alice"])
                page.click("button[type=submit]")
                page.wait_for_load_state()
                assert page.url == f"{web.base}/", f"{target!r} led to {page.url}"
                assert "My submissions" in page.inner_text("header")
                context.close()
            browser.close()
    finally:
        evil.shutdown()
    assert _Evil.visits == ["/probe"], "Chromium went to evil.example"


# ---------------------------------------------------------------- 12: slowloris

PROBE_WORST_S = 2.0
"""A normal page must answer within this even during the attack (it takes ~10 ms idle, seconds when the
2-core machine is busy with other tests)."""


def compose_web_args() -> list[str]:
    """`autograder web`'s arguments in docker/compose.yaml, without --bind (the tests bind to loopback)."""
    import yaml

    cmd = yaml.safe_load(attacks.NGINX_CONF.with_name("compose.yaml").read_text())["services"]["web"]["command"]
    i = cmd.index("--bind")
    return cmd[1:i] + cmd[i + 2:]


def test_nginx_config_is_valid(tmp_path):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        missing_tool("nginx is not installed (apt-get install nginx-light)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(attacks.nginx_conf_for_test(tmp_path, listen=8080, upstream=8000))
    r = subprocess.run([exe, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf), "-g", f"pid {tmp_path}/p;"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = attacks.NGINX_CONF.read_text()
    from server.settings import ServerSettings

    limit = ServerSettings.model_fields["max_content_length"].default
    assert f"client_max_body_size {limit // 2**20}m;" in text, "nginx's body limit is the web app's"
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout", "proxy_request_buffering on"):
        assert directive in text


@pytest.mark.integration
@pytest.mark.slow
def test_slowloris_on_autograder_web_directly(tmp_path, h, procs):
    """What `autograder web` survives on its own, as compose runs it: the review's 12 slow bodies, plus 12
    slow headers. (More than 2 x threads slow clients would take it: that is what the proxy is for.)"""
    web = attacks.start_web(tmp_path, h, procs, web_args=compose_web_args())
    attacks.wait_ready(web.port)
    slow = [attacks.SlowClients(web.port, 12, kind="body").start(),
            attacks.SlowClients(web.port, 12, kind="headers").start()]
    try:
        seen = attacks.probe(web.port, seconds=16)
    finally:
        for s in slow:
            s.stop()
    print(f"\nautograder web {' '.join(compose_web_args())}, 12 slow bodies + 12 slow headers: {seen}")
    assert not seen.failures and seen.worst < PROBE_WORST_S, str(seen)


@pytest.mark.integration
@pytest.mark.slow
def test_slowloris_through_nginx(tmp_path, h, procs):
    """Through docker/nginx.conf: 10 x as many slow clients as gunicorn has threads, from 10 addresses; normal
    visitors are served as fast as ever; nginx drops slow headers after client_header_timeout (10 s) and
    refuses an address's requests over 64 at once."""
    web = attacks.start_web(tmp_path, h, procs, web_args=compose_web_args())
    proxy = attacks.start_nginx(tmp_path, h, procs, upstream=web.port)
    attacks.wait_ready(proxy)
    sources = [f"127.0.0.{i}" for i in range(2, 12)]
    bodies = attacks.SlowClients(proxy, 400, kind="body", sources=sources).start()
    headers = attacks.SlowClients(proxy, 200, kind="headers", sources=sources).start()
    greedy = attacks.SlowClients(proxy, 80, kind="body", sources=["127.0.0.99"]).start()
    try:
        seen = attacks.probe(proxy, seconds=16)
    finally:
        for s in (bodies, headers, greedy):
            s.stop()
    print(f"\nnginx + autograder web, 400 slow bodies + 200 slow headers (+80 from one address): {seen}")
    assert not seen.failures and seen.worst < PROBE_WORST_S, str(seen)
    assert not bodies.ended, "nginx waits for slow bodies (client_body_timeout is between two reads)"
    cut = sorted(t for t, _ in headers.ended)
    assert len(cut) == 200 and cut[0] > 9 and cut[-1] < 15, f"slow headers ended after {cut[:1]}..{cut[-1:]} s"
    refused = [how for _, how in greedy.ended]
    assert len(refused) == 80 - 64 and all("429" in how for how in refused), refused


# ---------------------------------------------------------------- 13: login rate limit races

GUESSES = 60


def check_guesses(out: attacks.GuessOutcome, settings_limit: int, window: int) -> None:
    assert out.checked == settings_limit, f"{out.checked} of {GUESSES} passwords were checked (limit {settings_limit})"
    assert out.limited == GUESSES - settings_limit
    assert len(out.retry_after) == out.limited
    assert all(v.isdigit() and 0 < int(v) <= window for v in out.retry_after), out.retry_after[:5]


@pytest.mark.integration
@pytest.mark.slow
def test_parallel_guesses_sqlite(tmp_path, h, procs, settings):
    web = attacks.start_web(tmp_path, h, procs, web_args=compose_web_args())
    attacks.wait_ready(web.port)
    out = attacks.parallel_guesses(web.port, "alice", [f"guess-{i:02d}" for i in range(GUESSES)])
    print(f"\nSQLite: {out.checked} of {GUESSES} parallel guesses checked, {out.limited} refused with 429")
    check_guesses(out, settings.login_max_failures, settings.login_window_seconds)
    assert attacks.LoginForm.fetch(web.port).post(web.port, "alice", h.PASSWORDS["alice"]).status == 429


@pytest.fixture
def pg_url(tmp_path, h, procs):
    import_tool("psycopg")
    root = Path(tempfile.mkdtemp(prefix="autograder-pg-"))  # not tmp_path: PostgreSQL must not run as root
    try:
        cluster = init_cluster(root, h.free_port())
    except PostgresUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing_tool(str(exc))
    procs.append(h.Proc("postgres", cluster.argv, dict(os.environ), tmp_path / "pg.log").start())
    h.wait_port(cluster.port, timeout=60)
    wait_ready(cluster.url)
    yield cluster.url
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.slow
def test_parallel_guesses_postgres(tmp_path, h, procs, settings, pg_url):
    web = attacks.start_web(tmp_path, h, procs, database_url=pg_url, web_args=compose_web_args())
    attacks.wait_ready(web.port)
    out = attacks.parallel_guesses(web.port, "alice", [f"guess-{i:02d}" for i in range(GUESSES)])
    print(f"\nPostgreSQL: {out.checked} of {GUESSES} parallel guesses checked, {out.limited} refused with 429")
    check_guesses(out, settings.login_max_failures, settings.login_window_seconds)
    assert attacks.LoginForm.fetch(web.port).post(web.port, "alice", h.PASSWORDS["alice"]).status == 429
    # Another account is not limited by alice's (the address limit is 4 x higher).
    web.manage("users", "add", "bob", "--password", h.PASSWORDS["bob"])
    assert attacks.LoginForm.fetch(web.port).post(web.port, "bob", h.PASSWORDS["bob"]).status == 302


def test_old_attempts_are_purged(app, db, h, settings):
    long_ago = utcnow() - timedelta(seconds=settings.login_window_seconds + 60)
    db.add_all([LoginAttempt(username=f"x{i}", ip="203.0.113.1", success=False, at=long_ago) for i in range(50)])
    db.commit()
    assert h.login(app.test_client(), "alice", "wrong-password").status_code == 401
    db.expire_all()
    assert db.scalar(select(func.count(LoginAttempt.id))) == 1  # only the new one


def test_429_says_when_to_retry(app, db, h, settings):
    window = settings.login_window_seconds
    now = utcnow()
    # Five failures, the oldest 600 s ago: the limit lifts when it leaves the window, in window - 600 s.
    db.add_all([LoginAttempt(username="alice", ip="203.0.113.1", success=False, at=now - timedelta(seconds=s))
                for s in (600, 500, 400, 300, 200)])
    db.commit()
    r = h.login(app.test_client(), "alice")
    assert r.status_code == 429
    assert window - 600 - 5 <= int(r.headers["Retry-After"]) <= window - 600
    assert f"Try again in {-(-(window - 600) // 60)} minute(s)" in r.text


# ---------------------------------------------------------------- 14: user enumeration by timing


@pytest.mark.slow
def test_login_timing_does_not_tell_users_apart(settings, h):
    from server import create_app
    from server.db import upgrade
    from server.web import runtime

    upgrade(settings.database_url)
    app = create_app(settings=settings.with_(login_max_failures=100_000), test_config={"TESTING": True})
    from sqlalchemy.orm import Session

    with Session(runtime(app).engine) as s:
        accounts.add_user(s, "alice", password=h.PASSWORDS["alice"])
        accounts.add_user(s, "carol")  # invited, no password yet
        dave, _ = accounts.add_user(s, "dave", password="dave-pass-1")
        dave.active = False
        s.commit()
    c = app.test_client()
    token = h.csrf_of(c.get("/auth/login").text)

    def post(username: str, password: str) -> None:
        r = c.post("/auth/login", data={"username": username, "password": password, "csrf_token": token})
        assert r.status_code == 401, r.status_code

    medians = attacks.login_timings(post, ["alice", "nobody-at-all", "carol", "dave"], rounds=15)
    print("\nmedian wrong-password login: " + ", ".join(f"{u} {t * 1000:.0f} ms" for u, t in medians.items()))
    for name in ("nobody-at-all", "carol", "dave"):
        assert abs(medians[name] - medians["alice"]) <= 0.2 * medians["alice"], medians
    runtime(app).engine.dispose()


def test_api_token_refusals_look_alike(app, db, h):
    """The other login-like path: a bearer token names no account (it is looked up by its SHA-256 digest), and
    every refusal - unknown, revoked, expired, a disabled user's - is the same 401."""
    from server.models import ApiToken

    alice, bob = h.get_user(db, "alice"), h.get_user(db, "bob")
    revoked, expired, disabled = (accounts.create_api_token(db, alice), accounts.create_api_token(db, alice),
                                  accounts.create_api_token(db, bob))
    rows = {t.token_hash: t for t in db.scalars(select(ApiToken))}
    from server.security import token_digest

    rows[token_digest(revoked)].revoked = True
    rows[token_digest(expired)].expires_at = utcnow() - timedelta(days=1)
    bob.active = False
    db.commit()
    c = app.test_client()
    answers = {(r.status_code, r.get_data(), r.headers.get("WWW-Authenticate"))
               for token in ("nag_" + "x" * 43, revoked, expired, disabled)
               if (r := c.get("/api/v1/assignments", headers={"Authorization": f"Bearer {token}"}))}
    assert len(answers) == 1 and next(iter(answers))[0] == 401, answers


# ---------------------------------------------------------------- 15: session survives logout


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(app, cookie: str):
    c = app.test_client()
    c.set_cookie("session", cookie)
    return c.get("/")


def test_logout_ends_every_session_of_the_user(app, as_user, h):
    laptop, phone = as_user("alice"), as_user("alice")
    copy = session_cookie(laptop)
    assert replay(app, copy).status_code == 200
    token = h.csrf_of(laptop.get("/").text)
    assert laptop.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    r = replay(app, copy)
    assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")
    assert phone.get("/").status_code == 302  # the other device too
    assert as_user("bob").get("/").status_code == 200  # other users keep theirs
    assert as_user("alice").get("/").status_code == 200  # logging in again works


def test_password_change_ends_every_session(app, as_user, db, h):
    copy = session_cookie(as_user("alice"))
    alice = db.scalar(select(User).where(User.username == "alice"))
    token = accounts.issue_setup_token(alice)
    db.commit()
    c = app.test_client()
    page = c.get(f"/auth/setup/{token}")
    r = c.post(f"/auth/setup/{token}", data={"password": "new-alice-pass", "confirm": "new-alice-pass",
                                             "csrf_token": h.csrf_of(page.text)})
    assert r.status_code == 302
    assert replay(app, copy).status_code == 302
    assert h.login(app.test_client(), "alice", "new-alice-pass").status_code == 302


def test_disabled_account_loses_its_sessions(app, as_user, db):
    copy = session_cookie(as_user("alice"))
    alice = db.scalar(select(User).where(User.username == "alice"))
    alice.active = False
    db.commit()
    assert replay(app, copy).status_code == 302


def test_session_of_another_version_or_forged_id_is_refused(app, as_user):
    """The session's user id carries the version: a pre-0004 session ("ID" alone) or junk is logged out."""
    c = as_user("alice")
    with c.session_transaction() as sess:
        uid = sess["_user_id"]
        assert re.fullmatch(r"\d+:\d+", uid)
        sess["_user_id"] = uid.split(":")[0]
    assert c.get("/").status_code == 302
