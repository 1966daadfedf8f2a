"""The worker's side of grading: claim, fetch the zip, run the engine, post progress and the result.

HTTP through requests. Transient faults (connection refused or reset, a read timeout, 502/503/504 with their
Retry-After) are retried by urllib3's Retry in the session: retries of one request (transport), never of a
grading, which only the web app's sweeper starts again (server/services/retries.py). Every request
carries an HMAC of method, path, time and body with the shared secret; the retries of a request stop while its
signature is still fresh (`MAX_SKEW_SECONDS`), so none of them is refused as stale.
"""

from __future__ import annotations

import json
import logging
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from grader.result import CheckResult
from grader.reuse import Kept, Reused
from grader.reuse.keys import file_digest
from server.security import MAX_SKEW_SECONDS, signed_headers

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
"""What a proxy or a restarting web app answers; any other status is the app's real answer."""
CONNECT_TIMEOUT = 5.0


class WebUnavailable(Exception):
    """The web app could not be reached, even after the retries."""


class ClaimLost(Exception):
    """The web app no longer expects this attempt (finished, regraded or taken over)."""


class DeadlineRetry(Retry):
    """urllib3's Retry that also ends at a deadline (time.monotonic()), and waits at most `backoff_max` for a
    Retry-After."""

    deadline: float = float("inf")

    def new(self, **kw: Any) -> DeadlineRetry:
        out = super().new(**kw)
        out.deadline = self.deadline
        return out

    def until(self, deadline: float) -> DeadlineRetry:
        out = self.new()
        out.deadline = deadline
        return out

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or time.monotonic() + self.get_backoff_time() >= self.deadline

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.backoff_max)


def retry_policy(total: int = 12, backoff_factor: float = 1.0, backoff_max: float = 30.0) -> DeadlineRetry:
    """Retries for about four minutes (0, 2, 4, 8, 16, 30, 30, ... s): results survive a restart or deploy of the
    web app. Every method is retried: a repeated claim, result or failure for an attempt is answered 409, which
    ends the attempt cleanly."""
    return DeadlineRetry(total=total, connect=total, read=3, status=total, other=0, redirect=0,
                         allowed_methods=None, status_forcelist=RETRY_STATUSES, backoff_factor=backoff_factor,
                         backoff_max=backoff_max, respect_retry_after_header=True, raise_on_status=False)


class InternalClient:
    def __init__(self, base_url: str, secret: str, *, hostname: str = "", timeout: float = 30.0,
                 retry: DeadlineRetry | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.secret = secret
        self.hostname = hostname or socket.gethostname()
        self.timeout = timeout
        self.retry = retry or retry_policy()
        self._local = threading.local()  # a session per thread: the lease heartbeat posts beside the grading

    def _adapter(self) -> HTTPAdapter:
        adapter = getattr(self._local, "adapter", None)
        if adapter is None:
            adapter = self._local.adapter = HTTPAdapter()
            self._local.session = requests.Session()
            for prefix in ("http://", "https://"):
                self._local.session.mount(prefix, adapter)
        return adapter

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None,
                 *, dest: Path | None = None, retry: bool = True) -> dict[str, Any]:
        """One call; `retry=False` for what is best effort and sent again soon anyway (progress, heartbeats),
        so that a web app that is down never holds up a grading."""
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = signed_headers(self.secret, method, path, body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        # The last attempt must reach the web app while the signature is fresh: leave a read timeout to spare.
        deadline = time.monotonic() + (MAX_SKEW_SECONDS - self.timeout - 10 if retry else 0)
        self._adapter().max_retries = self.retry.until(deadline)
        try:
            with self._local.session.request(method, self.base + path, data=body if payload is not None else None,
                                             headers=headers, timeout=(CONNECT_TIMEOUT, self.timeout),
                                             stream=dest is not None, allow_redirects=False) as resp:
                if resp.status_code == 409:
                    raise ClaimLost(resp.text)
                if resp.status_code >= 500:
                    raise WebUnavailable(f"{method} {path}: HTTP {resp.status_code}")
                if resp.status_code >= 300:
                    raise RuntimeError(f"{method} {path}: HTTP {resp.status_code} {resp.content[:300]!r}")
                if dest is not None:
                    with open(dest, "wb") as out:
                        for chunk in resp.iter_content(1 << 20):
                            out.write(chunk)
                    return {}
                answer: dict[str, Any] = json.loads(resp.content or b"{}")
                return answer
        except requests.RequestException as exc:
            raise WebUnavailable(f"{method} {path}: {exc}") from None

    def claim(self, sid: int, task_id: str = "") -> dict[str, Any]:
        return self._request("POST", f"/internal/submissions/{sid}/claim",
                             {"hostname": self.hostname, "task_id": task_id})

    def claim_next(self, task_id: str = "", lane: str = "") -> dict[str, Any]:
        """A wake-up's claim: the web app picks the submission (the lanes the wake-up's queue `lane` may take, fair
        share) and says which phase and checks to grade; 409 (ClaimLost) if none waits."""
        return self._request("POST", "/internal/claim", {"hostname": self.hostname, "task_id": task_id, "lane": lane})

    def download(self, sid: int, claim: str, dest: Path) -> None:
        self._request("GET", f"/internal/submissions/{sid}/zip?claim={claim}", dest=dest)

    def progress(self, sid: int, claim: str, check: str | None, verdict: CheckResult | None = None) -> None:
        """The check now running (None: only renew the lease), and/or a check's verdict as soon as it is judged."""
        payload: dict[str, Any] = {"claim": claim, "check": check, "hostname": self.hostname}
        if verdict is not None:
            payload["verdict"] = verdict.model_dump(mode="json")
        self._request("POST", f"/internal/submissions/{sid}/progress", payload, retry=False)

    def result(self, sid: int, claim: str, result: dict[str, Any], phase: str = "",
               kept: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The attempt's result, of the phase its claim named (services.phases; empty: a whole grading), and the
        verdicts of it a later upload may reuse."""
        payload: dict[str, Any] = {"claim": claim, "result": result, "hostname": self.hostname, "phase": phase}
        if kept:
            payload["kept"] = kept
        return self._request("POST", f"/internal/submissions/{sid}/result", payload)

    def reuse(self, sid: int, claim: str, keys: Mapping[str, str]) -> dict[str, Any]:
        """Earlier verdicts of the student's under these input keys (check id -> key)."""
        answer = self._request("POST", f"/internal/submissions/{sid}/reuse", {"claim": claim, "keys": dict(keys)})
        verdicts = answer.get("verdicts", {})
        return verdicts if isinstance(verdicts, dict) else {}

    def fail(self, sid: int, claim: str, reason: str) -> dict[str, Any]:
        return self._request("POST", f"/internal/submissions/{sid}/fail",
                              {"claim": claim, "reason": reason[-4000:], "hostname": self.hostname})

    def heartbeat(self) -> None:
        self._request("POST", "/internal/workers/heartbeat", {"hostname": self.hostname}, retry=False)


class WebReuse:
    """The web app as a grader.reuse.ReuseStore for one attempt: lookups go to the web app at once, the verdicts
    to keep go with the result (`kept`)."""

    def __init__(self, client: InternalClient, sid: int, claim: str) -> None:
        self.client, self.sid, self.claim = client, sid, claim
        self.kept: list[dict[str, Any]] = []

    def lookup(self, keys: Mapping[str, str]) -> Mapping[str, Reused]:
        out: dict[str, Reused] = {}
        for cid, v in self.client.reuse(self.sid, self.claim, keys).items():
            try:
                out[cid] = Reused(result=CheckResult.model_validate(v["result"]), metrics=dict(v.get("metrics", {})),
                                  origin=str(v.get("origin", "")))
            except (KeyError, TypeError, ValueError) as exc:  # an offer that does not validate is not taken
                log.warning("reuse offer for %s of submission %s: %s", cid, self.sid, exc)
        return out

    def keep(self, kept: Sequence[Kept]) -> None:
        self.kept = [{"check": k.result.id, "key": k.key, "metrics": dict(k.metrics)} for k in kept]


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


def run_next_job(client: InternalClient, *, heartbeat_seconds: float, task_id: str = "", sent_for: int = 0,
                 lane: str = "") -> str:
    """A wake-up: one grading attempt of the submission the web app chooses (fair share, quick lane first), of the
    phase it names (its quick or slow checks, or all)."""
    try:
        info = client.claim_next(task_id, lane)
    except ClaimLost as exc:
        return f"wake-up for submission {sent_for} ({lane}): nothing to do ({exc})"
    from server.worker_logging import now_grading

    now_grading(int(info["submission"]))
    return _grade_claimed(client, int(info["submission"]), info, heartbeat_seconds)


def run_grading_job(client: InternalClient, sid: int, *, heartbeat_seconds: float, task_id: str = "") -> str:
    """One grading attempt for submission `sid` itself; returns a short outcome for the worker log."""
    try:
        info = client.claim(sid, task_id)
    except ClaimLost as exc:
        return f"submission {sid}: nothing to do ({exc})"
    return _grade_claimed(client, sid, info, heartbeat_seconds)


def _grade_claimed(client: InternalClient, sid: int, info: dict[str, Any], heartbeat_seconds: float) -> str:
    """Grade a claimed submission. Progress has one channel: each check as it starts, and each check's verdict as
    soon as it is judged (every one: the engine does not rate-limit verdicts), is posted to the web app, which
    stores it on the submission (what the pages and the API show) and renews the lease. Both are best effort
    (not retried, so a web app that is down never holds up the grading): the final result is the truth.
    """
    claim = info["claim"]
    beat = _Heartbeat(client, sid, claim, heartbeat_seconds)
    beat.start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"autograder-{sid}-") as tmp:
            zip_path = Path(tmp) / "submission.zip"
            client.download(sid, claim, zip_path)
            digest = file_digest(zip_path)
            if digest != info.get("sha256", digest):
                client.fail(sid, claim, "downloaded zip does not match its checksum")
                return f"submission {sid}: checksum mismatch"

            def on_progress(check_id: str) -> None:
                try:
                    client.progress(sid, claim, check_id)
                except Exception as exc:  # progress is best effort; the result is what counts
                    log.warning("progress for submission %s: %s", sid, exc)

            def on_verdict(verdict: CheckResult) -> None:
                try:
                    client.progress(sid, claim, None, verdict)
                except Exception as exc:
                    log.warning("verdict of %s for submission %s: %s", verdict.id, sid, exc)

            from grader.api import grade_submission

            only = info.get("only")  # a phase's checks (server/services/phases.py); None: all
            phase = str(info.get("phase") or "") if only is not None else ""
            store = WebReuse(client, sid, claim) if info.get("reuse") else None
            try:
                result = grade_submission(zip_path=zip_path, assignment=info["assignment"], progress=on_progress,
                                          on_verdict=on_verdict, only=only, reuse=store)
            except Exception:
                client.fail(sid, claim, "engine raised:\n" + traceback.format_exc())
                return f"submission {sid}: engine raised"
            out = client.result(sid, claim, result.to_dict(), phase, store.kept if store else None)
            return f"submission {sid}{f' ({phase} phase)' if phase else ''}: {out.get('status')}"
    except ClaimLost as exc:
        return f"submission {sid}: claim lost ({exc})"
    finally:
        beat.stop.set()


def worker_heartbeat_loop(client: InternalClient, every: float, stop: threading.Event) -> None:
    """Tells the web app this worker is alive (for the instructors' queue view)."""
    while True:
        try:
            client.heartbeat()
        except Exception as exc:
            log.debug("worker heartbeat failed: %s", exc)
        if stop.wait(every):
            return
