"""The worker's HTTP client against the real web app served on a real port: its one retry layer (urllib3's Retry)
rides out a web app that is down or answers 502/503/504 with Retry-After, and retries nothing else.

The 503s and the 500 come from a small WSGI front put before the real app, as a reverse proxy answers while the
app restarts: the app itself never answers them on purpose (a fault we cannot cause for real on demand).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from server.security import MAX_SKEW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from server.worker_client import ClaimLost, InternalClient, WebUnavailable
from tests.server.ports import free_port, wait_port
from tests.server.test_server_lifecycle import graded


@dataclass
class Front:
    """Answers `status` (with Retry-After `retry_after` when set) to the first `times` requests, then passes
    every request to the real app; records when each request came and whether its signature was fresh."""

    app: Any
    secret: str
    status: int = 503
    times: int = 0
    retry_after: str | None = None
    seen: list[tuple[float, int, bool]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        path = environ["PATH_INFO"] + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
        fresh = verify(self.secret, environ["REQUEST_METHOD"], path, body,
                       environ.get("HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_")),
                       environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")))
        if len(self.seen) < self.times:
            self.seen.append((time.monotonic(), self.status, fresh))
            headers = [("Content-Type", "text/plain")] + ([("Retry-After", self.retry_after)] if self.retry_after else [])
            start_response(f"{self.status} Fault", headers)
            return [b"the app is restarting"]
        self.seen.append((time.monotonic(), 0, fresh))
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class Served:
    def __init__(self, wsgi: Any, port: int) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", port, wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any, int], Served]]:
    servers: list[Served] = []

    def start(wsgi: Any, port: int) -> Served:
        servers.append(Served(wsgi, port))
        wait_port(port)
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def sub_id(as_user, h) -> int:
    r = h.upload(as_user("alice"), h.tiny_zip())
    return int(r.headers["Location"].rsplit("/", 1)[1])


def _client(settings: Any, port: int, **kw: Any) -> InternalClient:
    return InternalClient(f"http://127.0.0.1:{port}", settings.internal_secret, hostname="w1@test", **kw)


@pytest.mark.slow
def test_the_result_gets_through_a_web_app_that_comes_back(app, settings, sub_id, serve, db):
    port = free_port()
    first = serve(app, port)
    client = _client(settings, port)
    claim = client.claim(sub_id)["claim"]
    first.stop()
    threading.Timer(3.0, serve, args=(app, port)).start()  # the web app restarts
    t0 = time.monotonic()
    out = client.result(sub_id, claim, graded(0.8))
    assert out["status"] == "graded" and time.monotonic() - t0 >= 2.9
    from server.models import Submission

    assert db.get(Submission, sub_id).status == "graded"


@pytest.mark.slow
def test_503_with_retry_after_is_waited_for_then_the_claim_is_made(app, settings, sub_id, serve):
    port = free_port()
    front = Front(app, settings.internal_secret, status=503, times=2, retry_after="3")
    serve(front, port)
    t0 = time.monotonic()
    info = _client(settings, port).claim(sub_id)
    assert info["assignment"] == "rpz-cnn" and info["claim"]
    assert [s for _, s, _ in front.seen] == [503, 503, 0]
    waits = [b - a for (a, *_), (b, *_) in zip(front.seen, front.seen[1:], strict=False)]
    assert all(w >= 2.9 for w in waits), waits  # Retry-After, not the backoff's 0 s and 2 s
    assert all(fresh for *_, fresh in front.seen) and time.monotonic() - t0 < 20


@pytest.mark.parametrize("status", [502, 504])
def test_502_and_504_are_retried(app, settings, sub_id, serve, status):
    port = free_port()
    front = Front(app, settings.internal_secret, status=status, times=1)
    serve(front, port)
    assert _client(settings, port).claim(sub_id)["claim"]
    assert [s for _, s, _ in front.seen] == [status, 0]


def test_500_409_and_4xx_are_answers_not_retried(app, settings, sub_id, serve):
    port = free_port()
    front = Front(app, settings.internal_secret, status=500, times=1)
    serve(front, port)
    client = _client(settings, port)
    with pytest.raises(WebUnavailable, match="HTTP 500"):
        client.claim(sub_id)
    assert len(front.seen) == 1
    client.claim(sub_id)
    with pytest.raises(ClaimLost):  # held by a live worker
        client.claim(sub_id)
    with pytest.raises(RuntimeError, match="HTTP 401"):
        InternalClient(f"http://127.0.0.1:{port}", "wrong secret").claim(sub_id)
    assert len(front.seen) == 4


def test_progress_and_heartbeats_are_best_effort_and_never_wait(app, settings, sub_id, serve):
    port = free_port()
    front = Front(app, settings.internal_secret, status=503, times=2, retry_after="30")
    serve(front, port)
    client = _client(settings, port)
    t0 = time.monotonic()
    with pytest.raises(WebUnavailable):
        client.progress(sub_id, "no-claim", None)
    with pytest.raises(WebUnavailable):
        client.heartbeat()
    assert len(front.seen) == 2 and time.monotonic() - t0 < 2


@pytest.mark.slow
def test_retries_end_while_the_signature_is_still_fresh(app, settings, sub_id, serve):
    port = free_port()
    front = Front(app, settings.internal_secret, status=503, times=1000, retry_after="1")
    serve(front, port)
    # The deadline is the signature's lifetime less a read timeout and 10 s: here 4 s after the first attempt.
    client = _client(settings, port, timeout=MAX_SKEW_SECONDS - 14)
    t0 = time.monotonic()
    with pytest.raises(WebUnavailable, match="HTTP 503"):
        client.claim(sub_id)
    took = time.monotonic() - t0
    assert 1.5 <= took <= 4.5 and len(front.seen) >= 3, (took, len(front.seen))  # retried, then gave up in time
    assert all(fresh for *_, fresh in front.seen)


def test_nothing_listening_is_web_unavailable_after_the_retries(settings):
    port = free_port()
    client = _client(settings, port, timeout=MAX_SKEW_SECONDS - 12)  # a 2 s deadline: backoff 0 s, 2 s
    t0 = time.monotonic()
    with pytest.raises(WebUnavailable, match="Connection refused|Max retries"):
        client.claim(1)
    assert time.monotonic() - t0 < 3
