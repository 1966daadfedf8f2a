"""`autograder submit` against a real HTTP server on loopback: transport failures are retried (a server that starts
listening late is reached), an upload that reached the server is never sent twice, the zip goes as multipart."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.server.ports import free_port

ZIP = b"PK\x05\x06" + b"\0" * 18  # an empty zip


class Api(ThreadingHTTPServer):
    """The two API routes `submit` uses; records every request. `drop_posts`: close that many uploads' connections
    without an answer (after reading them)."""

    daemon_threads = True

    def __init__(self, port: int, statuses: list[dict[str, Any]], drop_posts: int = 0) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.statuses, self.drop_posts = statuses, drop_posts
        super().__init__(("127.0.0.1", port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Api

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(("POST", self.path, dict(self.headers), body))
        if self.server.drop_posts:
            self.server.drop_posts -= 1
            self.close_connection = True
            return  # no answer: the client sees the connection closed after its request went out
        self._answer(201, {"id": 42, "uploads_used": 1, "upload_limit": 10})

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers), b""))
        status = self.server.statuses.pop(0) if len(self.server.statuses) > 1 else self.server.statuses[0]
        self._answer(200, status)


@pytest.fixture
def serve_later() -> Iterator[Any]:
    servers: list[Api] = []

    def start(delay: float, **kw: Any) -> tuple[int, list[Api]]:
        port = free_port()

        def run() -> None:
            time.sleep(delay)
            api = Api(port, **kw)
            servers.append(api)
            api.serve_forever(poll_interval=0.05)

        threading.Thread(target=run, daemon=True).start()
        return port, servers

    yield start
    for api in servers:
        api.shutdown()
        api.server_close()


def submit(h: Any, tmp_path: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    z = tmp_path / "hw.zip"
    z.write_bytes(ZIP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    return subprocess.run(h.cli("submit", str(z), "--server", f"http://127.0.0.1:{port}/", *args), env=env,
                          capture_output=True, text=True, timeout=120, cwd=h.PROJECT)


def test_submit_reaches_a_server_that_starts_listening_late(h, tmp_path, serve_later):
    port, servers = serve_later(2.5, statuses=[{"status": "queued"}])
    started = time.monotonic()
    out = submit(h, tmp_path, port, "--token", "tok-1", "--no-wait")
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started >= 2.5  # it did wait for the server
    assert out.stdout.strip() == "42"
    assert "uploaded as submission 42 (1 of 10 uploads used)" in out.stderr
    (method, path, headers, body), = servers[0].seen  # one upload, as multipart with the zip's name and bytes
    assert (method, path) == ("POST", "/api/v1/assignments/rpz-cnn/submissions")
    assert headers["Authorization"] == "Bearer tok-1" and headers["Accept"] == "application/json"
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="hw.zip"' in body and b"Content-Type: application/zip" in body and ZIP in body


def test_submit_waits_for_the_final_status_with_the_token_from_the_environment(h, tmp_path, serve_later):
    port, servers = serve_later(0, statuses=[{"status": "queued", "queue_position": 2},
                                             {"status": "running", "current_check": "numpy_nn.Linear"},
                                             {"status": "error", "message": "the grader broke"}])
    z = tmp_path / "hw.zip"
    z.write_bytes(ZIP)
    (tmp_path / "token").write_text("tok-from-file\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env["AUTOGRADER_TOKEN_FILE"] = str(tmp_path / "token")
    while not servers:
        time.sleep(0.05)
    out = subprocess.run(h.cli("submit", str(z), "--server", f"http://127.0.0.1:{port}", "-a", "a4-digits"),
                         env=env, capture_output=True, text=True, timeout=120, cwd=h.PROJECT)
    assert out.returncode == 1, out.stderr
    assert out.stdout.strip() == "error: the grader broke"
    assert "queued (position 2)\nrunning numpy_nn.Linear\nerror" in out.stderr
    assert [(m, p) for m, p, _, _ in servers[0].seen][:2] == [("POST", "/api/v1/assignments/a4-digits/submissions"),
                                                             ("GET", "/api/v1/submissions/42")]
    assert {hd["Authorization"] for _, _, hd, _ in servers[0].seen} == {"Bearer tok-from-file"}


def test_an_upload_that_reached_the_server_is_not_sent_again(h, tmp_path, serve_later):
    port, servers = serve_later(0, statuses=[{"status": "queued"}], drop_posts=1)
    while not servers:
        time.sleep(0.05)
    out = submit(h, tmp_path, port, "--token", "t", "--no-wait")
    assert out.returncode == 1 and f"cannot reach http://127.0.0.1:{port}:" in out.stderr, out.stderr
    assert [m for m, *_ in servers[0].seen] == ["POST"]


def test_submit_to_nothing_names_the_reason(h, tmp_path):
    started = time.monotonic()
    out = submit(h, tmp_path, free_port(), "--token", "t")
    assert out.returncode == 1
    assert out.stderr.strip().endswith("[Errno 111] Connection refused"), out.stderr
    assert time.monotonic() - started >= 7  # the retries' backoff (0, 1, 2, 4, 8 s) before giving up


def test_submit_shows_each_streamed_verdict_once_as_it_comes(h, tmp_path, serve_later):
    ok = {"id": "numpy_nn.Linear.forward", "target": "Linear", "status": "passed", "points": 1.0, "max_points": 1.0}
    bad = {"id": "numpy_nn.ReLU.forward", "target": "ReLU", "status": "failed", "points": 0.0, "max_points": 2.0,
           "message": "wrong values\x1b[2J"}
    port, servers = serve_later(0, statuses=[
        {"status": "running", "current_check": "numpy_nn.Linear.forward", "partial_checks": [ok], "partial_score": 1.0},
        {"status": "running", "current_check": "numpy_nn.ReLU.forward", "partial_checks": [ok, bad],
         "partial_score": 1.0},
        {"status": "error", "message": "the grader broke"}])
    out = submit(h, tmp_path, port, "--token", "tok-1")
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("passed numpy_nn.Linear.forward 1.0/1.0 (score so far 1.0)") == 1, out.stderr
    assert "failed numpy_nn.ReLU.forward 0.0/2.0: wrong values" in out.stderr
    assert "\x1b" not in out.stderr  # student text made safe for the terminal
