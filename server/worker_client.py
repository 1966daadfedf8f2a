"""The worker's side of grading: claim, fetch the zip, run the engine, post progress and the result.

Stdlib HTTP only; every request carries an HMAC of method, path, time and body with the shared secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.security import signed_headers

log = logging.getLogger(__name__)


class WebUnavailable(Exception):
    """The web app could not be reached (the task is retried later)."""


class ClaimLost(Exception):
    """The web app no longer expects this attempt (finished, regraded or taken over)."""


class InternalClient:
    def __init__(self, base_url: str, secret: str, *, hostname: str = "", timeout: float = 30.0,
                 exclusive: bool = False) -> None:
        self.base = base_url.rstrip("/")
        self.exclusive = exclusive
        self.secret = secret
        self.hostname = hostname or socket.gethostname()
        self.timeout = timeout

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None,
                 *, dest: Path | None = None) -> dict[str, Any]:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = signed_headers(self.secret, method, path, body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=body if payload is not None else None,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                if dest is not None:
                    with open(dest, "wb") as out:
                        while chunk := resp.read(1 << 20):
                            out.write(chunk)
                    return {}
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                raise ClaimLost(exc.read().decode(errors="replace")) from None
            if exc.code >= 500:
                raise WebUnavailable(f"{method} {path}: HTTP {exc.code}") from None
            raise RuntimeError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise WebUnavailable(f"{method} {path}: {exc}") from None

    def _retrying(self, method: str, path: str, payload: dict[str, Any], tries: int = 10) -> dict[str, Any]:
        """Results survive a restart or deploy of the web app: about three minutes of retries."""
        for i in range(tries):
            try:
                return self._request(method, path, payload)
            except WebUnavailable:
                if i == tries - 1:
                    raise
                time.sleep(min(30.0, 2.0 * 2**i))
        raise AssertionError("unreachable")

    def claim(self, sid: int, task_id: str = "") -> dict[str, Any]:
        return self._request("POST", f"/internal/submissions/{sid}/claim",
                             {"hostname": self.hostname, "exclusive": self.exclusive, "task_id": task_id})

    def download(self, sid: int, claim: str, dest: Path) -> None:
        self._request("GET", f"/internal/submissions/{sid}/zip?claim={claim}", dest=dest)

    def progress(self, sid: int, claim: str, check: str | None) -> None:
        self._request("POST", f"/internal/submissions/{sid}/progress",
                      {"claim": claim, "check": check, "hostname": self.hostname})

    def result(self, sid: int, claim: str, result: dict[str, Any]) -> dict[str, Any]:
        return self._retrying("POST", f"/internal/submissions/{sid}/result",
                              {"claim": claim, "result": result, "hostname": self.hostname})

    def fail(self, sid: int, claim: str, reason: str) -> dict[str, Any]:
        return self._retrying("POST", f"/internal/submissions/{sid}/fail",
                              {"claim": claim, "reason": reason[-4000:], "hostname": self.hostname})

    def heartbeat(self) -> None:
        self._request("POST", "/internal/workers/heartbeat", {"hostname": self.hostname})


class _Heartbeat(threading.Thread):
    """Renews the claim's lease while a long check runs."""

    def __init__(self, client: InternalClient, sid: int, claim: str, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{sid}")
        self.client, self.sid, self.claim, self.every = client, sid, claim, every
        self.stop = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.client.progress(self.sid, self.claim, None)
            except ClaimLost:
                self.lost = True
                return
            except Exception as exc:  # the web app may be restarting; keep trying
                log.warning("heartbeat for submission %s failed: %s", self.sid, exc)


def run_grading_job(client: InternalClient, sid: int, *, heartbeat_seconds: float, task_id: str = "",
                    on_check: Callable[[str, int], None] | None = None) -> str:
    """One grading attempt for submission `sid`; returns a short outcome for the worker log.

    `on_check(check_id, checks_started)` is called as each check starts (the task reports it as its
    Celery state); the same progress is posted to the web app, which stores it on the submission.
    """
    try:
        info = client.claim(sid, task_id)
    except ClaimLost as exc:
        return f"submission {sid}: nothing to do ({exc})"
    claim = info["claim"]
    beat = _Heartbeat(client, sid, claim, heartbeat_seconds)
    beat.start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"autograder-{sid}-") as tmp:
            zip_path = Path(tmp) / "submission.zip"
            client.download(sid, claim, zip_path)
            digest = _sha256(zip_path)
            if digest != info.get("sha256", digest):
                client.fail(sid, claim, "downloaded zip does not match its checksum")
                return f"submission {sid}: checksum mismatch"

            started = 0

            def on_progress(check_id: str) -> None:
                nonlocal started
                started += 1
                try:
                    client.progress(sid, claim, check_id)
                except Exception as exc:  # progress is best effort; the result is what counts
                    log.warning("progress for submission %s: %s", sid, exc)
                if on_check is not None:
                    try:
                        on_check(check_id, started)
                    except Exception as exc:  # e.g. the result backend is down: the grading goes on
                        log.warning("task state for submission %s: %s", sid, exc)

            from grader.api import grade_submission

            try:
                result = grade_submission(zip_path=zip_path, assignment=info["assignment"], progress=on_progress)
            except Exception:
                client.fail(sid, claim, "engine raised:\n" + traceback.format_exc())
                return f"submission {sid}: engine raised"
            out = client.result(sid, claim, result.to_dict())
            return f"submission {sid}: {out.get('status')}"
    except ClaimLost as exc:
        return f"submission {sid}: claim lost ({exc})"
    finally:
        beat.stop.set()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def worker_heartbeat_loop(client: InternalClient, every: float, stop: threading.Event) -> None:
    """Tells the web app this worker is alive (for the instructors' queue view)."""
    while True:
        try:
            client.heartbeat()
        except Exception as exc:
            log.debug("worker heartbeat failed: %s", exc)
        if stop.wait(every):
            return
