"""Builders of the web-app attacks of issue 11 (hostile input round 2, items 11-15), one per attack.

Each builder mounts its attack for real against a running web app (`autograder web` on loopback, or
the Flask test client) and returns what it measured; the tests in test_hostile_web.py decide what
is acceptable. Everything binds to 127.0.0.0/8 only.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.server.browser import csrf_of
from tests.server.stack import INTEGRATION_ENV

# ---------------------------------------------------------------- a web app of our own


@dataclass
class WebApp:
    """`autograder web` (gunicorn) on a free loopback port, with its own database and instance folder."""

    port: int
    env: dict[str, str]
    proc: Any
    h: Any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        import subprocess

        return subprocess.run(self.h.cli(*args), env=self.env, check=True, capture_output=True, text=True,
                              timeout=120, cwd=self.h.PROJECT).stdout


def start_web(tmp: Path, h: Any, procs: list, *, database_url: str | None = None,
              web_args: Sequence[str] = ("--workers", "2"), users: Sequence[str] = ("alice",),
              **env: str) -> WebApp:
    """Database (SQLite in `tmp` unless `database_url`), `users` with their test passwords, then
    `autograder web --bind 127.0.0.1:PORT *web_args`. No broker is running: pages only."""
    port = h.free_port()
    inst = tmp / "web"
    inst.mkdir(exist_ok=True)
    full = {**os.environ, **INTEGRATION_ENV, "AUTOGRADER_INSTANCE_DIR": str(inst),
            "AUTOGRADER_DATABASE_URL": database_url or f"sqlite:///{inst / 'autograder.sqlite3'}",
            "AUTOGRADER_BROKER_URL": f"sqla+sqlite:///{inst / 'broker.sqlite3'}",
            "AUTOGRADER_UPLOAD_DIR": str(inst / "uploads"), "AUTOGRADER_INTERNAL_URL": f"http://127.0.0.1:{port}",
            **env}
    app = WebApp(port=port, env=full, proc=None, h=h)
    app.manage("db", "upgrade")
    for name in users:
        app.manage("users", "add", name, "--password", h.PASSWORDS[name])
    app.proc = h.Proc("web", h.cli("web", "--bind", f"127.0.0.1:{port}", *web_args), full, tmp / "web.log").start()
    procs.append(app.proc)
    h.wait_port(port, timeout=60)
    return app


NGINX_CONF = Path(__file__).resolve().parents[2] / "docker" / "nginx.conf"


def nginx_conf_for_test(tmp: Path, *, listen: int, upstream: int) -> str:
    """docker/nginx.conf as it is, but listening on 127.0.0.1:`listen`, proxying to 127.0.0.1:`upstream`
    and keeping its temporary files in `tmp` (each replaced line must occur exactly once)."""
    text = NGINX_CONF.read_text()
    for old, new in (("listen 8080;", f"listen 127.0.0.1:{listen};"),
                     ("server web:8000;", f"server 127.0.0.1:{upstream};")):
        assert text.count(old) == 1, f"docker/nginx.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    assert text.count("/var/cache/nginx/") == 5
    return text.replace("/var/cache/nginx/", f"{tmp}/")


def start_nginx(tmp: Path, h: Any, procs: list, *, upstream: int) -> int:
    """Debian's nginx with the project's config in front of 127.0.0.1:`upstream`; its port."""
    import shutil

    from tests.tooling import missing_tool

    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        missing_tool("nginx is not installed (apt-get install nginx-light)")
    port = h.free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf_for_test(tmp, listen=port, upstream=upstream))
    user = "user root;" if os.geteuid() == 0 else ""  # as root nginx would drop to nobody, who cannot enter tmp
    procs.append(h.Proc("nginx", [exe, "-p", str(tmp), "-e", "stderr", "-c", str(conf),
                                  "-g", f"daemon off; pid {tmp / 'nginx.pid'}; {user}"],
                        dict(os.environ), tmp / "nginx.log").start())
    h.wait_port(port, timeout=30)
    return port


def wait_ready(port: int, path: str = "/auth/login", timeout: float = 120.0) -> None:
    """Until `path` answers 200 a few times (gunicorn loads the app in each process on first use)."""
    end = time.monotonic() + timeout
    ok = 0
    while ok < 8:
        try:
            ok += request(port, "GET", path, timeout=30).status == 200
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


# ---------------------------------------------------------------- plain HTTP, one connection per request


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str
    seconds: float


def request(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0, source: str = "127.0.0.1") -> Reply:
    """One request on a fresh connection (so that consecutive requests land on any gunicorn worker)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, text, time.monotonic() - t0)
    finally:
        conn.close()


@dataclass
class LoginForm:
    """A login page fetched by one client: its session cookie and the form's CSRF token."""

    cookie: str
    csrf: str

    @classmethod
    def fetch(cls, port: int, path: str = "/auth/login") -> LoginForm:
        r = request(port, "GET", path)
        jar: SimpleCookie = SimpleCookie()
        jar.load(r.headers.get("set-cookie", ""))
        return cls("; ".join(f"{k}={m.value}" for k, m in jar.items()), csrf_of(r.body))

    def post(self, port: int, username: str, password: str, *, path: str = "/auth/login") -> Reply:
        body = urllib.parse.urlencode({"csrf_token": self.csrf, "username": username, "password": password}).encode()
        return request(port, "POST", path, body=body, headers={
            "Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"})


# ---------------------------------------------------------------- 11: open redirect after login

OPEN_REDIRECTS = (
    # (what it is, the next= / back= value as the browser would send it, unencoded)
    ("scheme-relative", "//evil.example/"),
    ("scheme-relative, three slashes", "///evil.example/"),
    ("backslash after slash", "/\\evil.example/"),
    ("two backslashes", "\\\\evil.example/"),
    ("slash backslash slash", "/\\/evil.example/"),
    ("tab between slashes", "/\t/evil.example/"),
    ("newline between slashes", "/\n/evil.example/"),
    ("carriage return between slashes", "/\r/evil.example/"),
    ("NUL between slashes", "/\x00/evil.example/"),
    ("leading space", " //evil.example/"),
    ("leading tab", "\t//evil.example/"),
    ("absolute http", "http://evil.example/"),
    ("absolute https", "https://evil.example/"),
    ("scheme without slashes", "http:evil.example"),
    ("javascript scheme", "javascript:alert(1)"),
    ("data scheme", "data:text/html,<script>alert(1)</script>"),
    ("encoded slashes", "/%2F%2Fevil.example/"),
    ("encoded slash after slash", "/%2Fevil.example/"),
    ("encoded backslash", "/%5Cevil.example/"),
    ("encoded tab", "/%09/evil.example/"),
    ("double-encoded slashes", "/%252F%252Fevil.example/"),
    ("user info", "//user@evil.example/"),
    ("fullwidth solidus", "/\uff0fevil.example/"),
    ("fullwidth solidi", "\uff0f\uff0fevil.example/"),
    ("encoded fullwidth solidus", "/%EF%BC%8Fevil.example/"),
    ("division slash", "/\u2215evil.example/"),
    ("ideographic full stop host", "//evil\u3002example/"),
    ("right-to-left override", "/\u202e/evil.example/"),
    ("zero-width space", "/\u200b/evil.example/"),
    ("dot segment to double slash", "/.//evil.example/"),
    ("parent segment to double slash", "/..//evil.example/"),
    ("relative path", "evil.example/"),
    ("empty", ""),
    ("only a query", "?x=1"),
    ("over-long", "/" + "a" * 5000),
)
"""Values that must not be followed (each ends at the app's own start page instead)."""

LOCAL_REDIRECTS = (
    "/", "/assignments/rpz-cnn", "/submissions/12", "/instructor/submissions?assignment=rpz-cnn&status=error&page=2",
    "/instructor/submissions?student=j%C3%BCrgen", "/assignments/rpz-cnn/leaderboard#me",
)
"""Same-origin paths the app builds itself: these are followed as given."""


# ---------------------------------------------------------------- 12: slowloris


@dataclass
class SlowClients:
    """Connections that each send a request one byte every `interval` seconds, in one thread.

    kind "body": complete headers of a form POST announcing `content_length` bytes, then the body byte by
    byte (what held gunicorn's threads in the review); kind "headers": the request line, then headers byte
    by byte. `sources` are loopback addresses the connections come from, round robin.
    """

    port: int
    count: int
    kind: str = "body"
    interval: float = 2.0
    content_length: int = 100_000
    sources: Sequence[str] = ("127.0.0.1",)
    opened: int = 0
    ended: list[tuple[float, str]] = field(default_factory=list)
    """(seconds after opening, how) for each connection the server ended: its answer's status line
    (e.g. 408, 429) or "closed"."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _head(self) -> bytes:
        if self.kind == "body":
            return (f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                    f"\r\nContent-Length: {self.content_length}\r\n\r\n").encode()
        return b"GET /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"

    def start(self) -> SlowClients:
        socks: list[tuple[socket.socket, float]] = []
        for i in range(self.count):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                         source_address=(self.sources[i % len(self.sources)], 0))
            s.sendall(self._head())
            s.setblocking(False)
            socks.append((s, time.monotonic()))
        self.opened = len(socks)
        self._thread = threading.Thread(target=self._drip, args=(socks,), daemon=True)
        self._thread.start()
        return self

    def _drip(self, socks: list[tuple[socket.socket, float]]) -> None:
        alive = list(socks)
        byte = b"a" if self.kind == "body" else b"X"
        while alive and not self._stop.wait(self.interval):
            for s, t0 in list(alive):
                how = ""
                try:
                    answer = s.recv(4096, socket.MSG_PEEK)
                    how = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "closed"
                except BlockingIOError:
                    try:
                        s.send(byte)  # nothing from the server yet: it still waits for our request
                    except OSError:
                        how = "closed"
                except OSError:
                    how = "closed"
                if how:
                    self.ended.append((time.monotonic() - t0, how))
                    alive.remove((s, t0))
                    s.close()
        for s, _ in alive:
            s.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


@dataclass(frozen=True, slots=True)
class Latencies:
    seconds: list[float]
    failures: list[str]

    @property
    def worst(self) -> float:
        return max(self.seconds, default=float("inf"))

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("inf")

    def __str__(self) -> str:
        return (f"{len(self.seconds)} answered, median {self.median * 1000:.0f} ms, worst {self.worst * 1000:.0f} ms, "
                f"{len(self.failures)} failed {self.failures[:3]}")


def probe(port: int, *, seconds: float, every: float = 0.25, timeout: float = 10.0, path: str = "/auth/login",
          parallel: int = 4) -> Latencies:
    """Normal visitors during an attack: `parallel` threads each GET `path` on a fresh connection every
    `every` seconds for `seconds`; the latency of each answer (a timeout counts as a failure)."""
    out: list[float] = []
    failures: list[str] = []
    end = time.monotonic() + seconds

    def visitor() -> None:
        while time.monotonic() < end:
            try:
                r = request(port, "GET", path, timeout=timeout)
                if r.status == 200:
                    out.append(r.seconds)
                else:
                    failures.append(f"HTTP {r.status}")
            except OSError as exc:
                failures.append(type(exc).__name__)
            time.sleep(every)

    threads = [threading.Thread(target=visitor) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Latencies(out, failures)


# ---------------------------------------------------------------- 13: parallel password guesses


@dataclass(frozen=True, slots=True)
class GuessOutcome:
    statuses: list[int]
    retry_after: list[str]

    @property
    def checked(self) -> int:
        """Guesses whose password was checked: refused as wrong (401) or let in (302)."""
        return sum(s in (401, 302) for s in self.statuses)

    @property
    def limited(self) -> int:
        return self.statuses.count(429)


def parallel_guesses(port: int, username: str, passwords: Sequence[str]) -> GuessOutcome:
    """One client per password, each with its own session and CSRF token fetched beforehand, then all
    POST /auth/login at the same instant (released by a barrier)."""
    forms = [LoginForm.fetch(port) for _ in passwords]
    barrier = threading.Barrier(len(passwords))
    replies: list[Reply | None] = [None] * len(passwords)

    def guess(i: int) -> None:
        barrier.wait()
        replies[i] = forms[i].post(port, username, passwords[i])

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(len(passwords))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    done = [r for r in replies if r is not None]
    assert len(done) == len(passwords), "some guesses never got an answer"
    return GuessOutcome([r.status for r in done], [r.headers["retry-after"] for r in done if "retry-after" in r.headers])


# ---------------------------------------------------------------- 14: user enumeration by timing


def login_timings(post: Callable[[str, str], Any], usernames: Sequence[str], *, rounds: int = 25,
                  password: str = "wrong-password-1") -> dict[str, float]:
    """Median seconds of a wrong-password login per username, the usernames interleaved round by round so
    that the machine's load affects each alike."""
    times: dict[str, list[float]] = {u: [] for u in usernames}
    for name in usernames:  # warm-up: caches, the first scrypt, the dummy hash
        post(name, password)
    for _ in range(rounds):
        for name in usernames:
            t0 = time.perf_counter()
            post(name, password)
            times[name].append(time.perf_counter() - t0)
    return {u: statistics.median(t) for u, t in times.items()}
