"""Shared pieces of the web tests and bench/load.py: Debian's chromium, the embedded server, logging in,
and a plain HTTP session that fills the app's forms (cookies, CSRF tokens) without a browser."""

from __future__ import annotations

import os
import re
import secrets
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
SUBMISSION_URL = re.compile(r"/submissions/(\d+)$")


def multipart(data: bytes, filename: str = "submission.zip", fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body: the text `fields`, then `data` as the zip in field "file"; (body, content type)."""
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
              "Content-Type: application/zip\r\n\r\n".encode(), data, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1) or m.group(2)


class HttpSession:
    """One user's session against the web app: cookies, CSRF tokens from the forms, redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str) -> tuple[str, str]:
        """The page's text and its final URL."""
        with self.opener.open(self.base + path, timeout=60) as r:
            return r.read().decode(), r.geturl()

    def post(self, path: str, body: bytes, content_type: str) -> tuple[str, str]:
        req = urllib.request.Request(self.base + path, data=body, headers={"Content-Type": content_type})
        with self.opener.open(req, timeout=120) as r:
            return r.read().decode(), r.geturl()

    def submit_form(self, page: str, path: str, fields: dict[str, str]) -> tuple[str, str]:
        """POST a urlencoded form from `page` (whose CSRF token it sends along)."""
        token = csrf_of(self.get(page)[0])
        body = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        return self.post(path, body, "application/x-www-form-urlencoded")

    def login(self, username: str, password: str) -> HttpSession:
        _, url = self.submit_form("/auth/login", "/auth/login", {"username": username, "password": password})
        assert not url.endswith("/auth/login"), f"{username} could not log in"
        return self

    def upload(self, assignment: str, data: bytes, filename: str) -> int:
        """Upload a zip with the assignment page's form; the new submission's id."""
        token = csrf_of(self.get(f"/assignments/{assignment}")[0])
        body, content_type = multipart(data, filename, {"csrf_token": token})
        text, url = self.post(f"/assignments/{assignment}/upload", body, content_type)
        m = SUBMISSION_URL.search(url)
        assert m, f"the upload did not lead to a submission page ({url}): {text[:2000]}"
        return int(m.group(1))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve_embedded(tmp_path: Path, h: Any, procs: list, *, prepare: bool = True, timeout: float = 120.0) -> str:
    """`autograder serve` as the README runs it, on a free port with its own instance folder; its base URL."""
    port = h.free_port()
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_INTERNAL_URL"):
        env.pop(k, None)
    argv = h.cli("serve", "--port", str(port), *(() if prepare else ("--no-prepare",)))
    p = h.Proc("serve", argv, env, tmp_path / "serve.log").start()
    procs.append(p)
    try:
        h.wait_port(port, timeout=timeout)
    except TimeoutError:
        pytest.fail("autograder serve did not start:\n" + p.output())
    return f"http://127.0.0.1:{port}"


def log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/auth/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
