"""Fixtures for the server tests: a real app on a temporary SQLite database and a real SQLAlchemy broker.

Unit tests use Flask's test client (CSRF on, as in production). Integration and browser tests start
real processes (redis-server, gunicorn web app, Celery worker) on free ports and stop them.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.tooling import import_tool, missing_tool  # noqa: E402

import_tool("flask")

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from server import create_app  # noqa: E402
from server.db import upgrade  # noqa: E402
from server.models import Assignment, User  # noqa: E402
from server.services import accounts  # noqa: E402
from server.services.assignments import ensure_assignment  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from server.web import runtime  # noqa: E402
from tests.server.browser import csrf_of  # noqa: E402
from tests.server.openapi_check import assert_valid, check_api_responses  # noqa: E402
from tests.server.ports import free_port, wait_port  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
PASSWORDS = {"teacher": "teacher-pass-1", "alice": "alice-pass-1", "bob": "bob-pass-1"}
def make_settings(root: Path, **changes: Any) -> ServerSettings:
    s = ServerSettings(
        instance_dir=root, database_url=f"sqlite:///{root / 'autograder.sqlite3'}",
        broker_url=f"sqla+sqlite:///{root / 'broker.sqlite3'}", secret_key="test-secret-key",
        internal_secret="test-internal-secret", internal_url="http://127.0.0.1:9", upload_dir=root / "uploads",
    )
    return s.with_(**changes)


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    return make_settings(tmp_path / "instance")


@pytest.fixture
def app(settings: ServerSettings) -> Iterator[Flask]:
    upgrade(settings.database_url)
    app = create_app(settings=settings, test_config={"TESTING": True})
    api_responses = check_api_responses(app)
    app.extensions["api_responses"] = api_responses
    with app.app_context():
        s = runtime().sessions()
        accounts.add_user(s, "teacher", role="instructor", name="Tea Cher", password=PASSWORDS["teacher"])
        accounts.add_user(s, "alice", name="Alice A", password=PASSWORDS["alice"])
        accounts.add_user(s, "bob", name="Bob B", password=PASSWORDS["bob"])
        s.commit()
        ensure_assignment(s, "rpz-cnn")
    yield app
    runtime(app).engine.dispose()
    assert_valid(api_responses)


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """A session of its own (no app context is kept pushed: requests must not share `g`)."""
    from sqlalchemy.orm import Session

    with Session(runtime(app).engine) as s:
        yield s


def login(client: FlaskClient, username: str, password: str | None = None) -> Any:
    token = csrf_of(client.get("/auth/login").text)
    return client.post("/auth/login", data={"username": username, "password": password or PASSWORDS[username],
                                            "csrf_token": token})


@pytest.fixture
def as_user(app: Flask) -> Callable[[str], FlaskClient]:
    def make(username: str) -> FlaskClient:
        c = app.test_client()
        r = login(c, username)
        assert r.status_code == 302, r.text
        return c

    return make


def user_id(db: Any, username: str) -> int:
    u = accounts.find_user(db, username)
    assert u is not None
    return u.id


def get_assignment(db: Any, name: str = "rpz-cnn") -> Assignment:
    from server.services.assignments import get_assignment as ga

    a = ga(db, name)
    assert a is not None
    return a


def get_user(db: Any, username: str) -> User:
    u = accounts.find_user(db, username)
    assert u is not None
    return u


def tiny_zip(name: str = "numpy_nn.py", content: bytes = b"# not much\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), content)
    return buf.getvalue()


def upload(client: FlaskClient, data: bytes, *, filename: str = "submission.zip", assignment: str = "rpz-cnn") -> Any:
    page = client.get(f"/assignments/{assignment}")
    token = csrf_of(page.text)
    return client.post(f"/assignments/{assignment}/upload", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename)})


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


# ---------------------------------------------------------------- real processes



@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = open(self.log, "ab")  # noqa: SIM115  (closed with the process)
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                      cwd=PROJECT, start_new_session=True)
        return self

    def kill9(self) -> None:
        """kill -9 the whole process group (e.g. a Celery worker and its pool children)."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes started by a test; all stopped at its end (by their own process group id)."""
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


def redis_proc(tmp: Path, port: int) -> Proc:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(exe).exists():
        missing_tool("redis-server is not installed")
    return Proc("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(tmp)], dict(os.environ), tmp / "redis.log")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


@pytest.fixture(scope="session")
def h() -> Any:
    """Helper functions for tests (test modules do not import conftest); session-wide, for module-wide stacks."""
    import types

    return types.SimpleNamespace(
        csrf_of=csrf_of, login=login, user_id=user_id, get_assignment=get_assignment, get_user=get_user,
        tiny_zip=tiny_zip, upload=upload, files_under=files_under, free_port=free_port, wait_port=wait_port,
        Proc=Proc, redis_proc=redis_proc, cli=cli, make_settings=make_settings, PASSWORDS=PASSWORDS,
        PROJECT=PROJECT,
    )


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (skipped where either is missing)."""
    from tests.server.browser import ARGS, CHROMIUM

    sync_api = import_tool("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        missing_tool("Debian's chromium is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live_server(app, h):
    """The app served over HTTP on a free localhost port in a thread (for the browser tests)."""
    from werkzeug.serving import make_server

    app.config["SESSION_COOKIE_SECURE"] = False  # plain http on localhost in this test
    port = h.free_port()
    srv = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()
    t.join(10)
