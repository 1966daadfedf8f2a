"""`autograder submit`: upload a zip through the JSON API, wait for its grading, print the report.

HTTP through requests; transport failures (the server not listening yet, a dropped connection) are retried by
urllib3's Retry: connecting for about 15 s (backoff 0, 1, 2, 4, 8 s), and reading a GET again; an upload that
reached the server is never sent twice (it would count against the student's uploads). Any HTTP answer is
final for the upload; while waiting, the status is asked for every 2 s until `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.terminal import visible, visible_lines
from server.cli.common import err

if TYPE_CHECKING:
    import requests

CONNECT_RETRIES = 5
BACKOFF_FACTOR = 0.5
"""urllib3's backoff: no wait before the first retry, then 1, 2, 4, 8 s."""
TIMEOUT = (10.0, 600.0)
"""(connect, read) seconds per request; an upload of a large zip to a busy server may take minutes."""
POLL_SECONDS = 2.0
FINAL = ("graded", "rejected", "error")


def http_session(token: str) -> requests.Session:
    """A session that sends the token and retries transport failures (not HTTP answers)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=None, connect=CONNECT_RETRIES, read=2, status=0, other=0, redirect=0,
                  backoff_factor=BACKOFF_FACTOR, allowed_methods=frozenset({"GET"}), raise_on_status=False)
    s = requests.Session()
    s.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json() if resp.content else {}
    except ValueError:
        return {"error": f"HTTP {resp.status_code}"}
    return data if isinstance(data, dict) else {"error": f"HTTP {resp.status_code}"}


def _reason(exc: BaseException) -> str:
    """The operating system's words for a transport failure ("[Errno 111] Connection refused"), found in the
    chain of requests' and urllib3's wrappers; else the exception's own text."""
    import requests

    todo, seen = [exc], set()
    found: BaseException | None = None
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror and not isinstance(e, requests.RequestException):
            found = e
        todo += [n for n in (getattr(e, "reason", None), e.__cause__, e.__context__, *e.args)
                 if isinstance(n, BaseException)]
    return str(found or exc)


def cmd_submit(args: argparse.Namespace) -> int:
    """Upload, wait, print the report; exit code as `autograder grade` (0 graded, 2 rejected, 1 error)."""
    import requests

    from server.settings import client_settings

    token = args.token or client_settings().token
    if not token:
        return err("an API token is needed (--token or $AUTOGRADER_TOKEN)")
    path = Path(args.zip)
    if not path.is_file():
        return err(f"no such file: {path}")
    base = args.server.rstrip("/")
    http = http_session(token)
    try:
        resp = http.post(f"{base}/api/v1/assignments/{args.assignment}/submissions", timeout=TIMEOUT,
                         files={"file": (path.name, path.read_bytes(), "application/zip")})
    except requests.RequestException as exc:
        return err(f"cannot reach {base}: {_reason(exc)}")
    data = _json(resp)
    if resp.status_code != 201:
        return err(f"upload refused (HTTP {resp.status_code}): {data.get('error', data)}")
    sid = data["id"]
    print(visible(f"uploaded as submission {sid} ({data.get('uploads_used')} of {data.get('upload_limit')} "
                  "uploads used)"), file=sys.stderr)
    if args.no_wait:
        print(visible(str(sid)))
        return 0
    deadline = time.monotonic() + args.timeout
    last = ""
    told: set[str] = set()
    while True:
        try:
            resp = http.get(f"{base}/api/v1/submissions/{sid}", timeout=TIMEOUT)
            code, data = resp.status_code, _json(resp)
        except requests.RequestException:
            code, data = 0, {}
        if code == 200:
            status = data["status"]
            slow = " (quick checks done, accuracy checks waiting)" if data.get("phase") == "slow" else ""
            note = (f"queued{slow} (position {data.get('queue_position')})" if status == "queued"
                    else f"running {data.get('current_check') or ''}".strip() if status == "running" else status)
            if note != last:
                print(visible(note), file=sys.stderr)
                last = note
            if status in ("running", "queued"):  # queued between a grading's two phases: the quick verdicts
                for line in _new_verdicts(data, told):
                    print(line, file=sys.stderr)
            if status in FINAL:
                break
        if time.monotonic() > deadline:
            return err(f"gave up waiting for submission {sid}")
        time.sleep(POLL_SECONDS)
    return print_report(data, as_json=args.json)


def _new_verdicts(data: dict[str, Any], told: set[str]) -> list[str]:
    """One line per streamed verdict not shown yet (status, check, points, the start of a failure's message) with
    the score so far; student text made safe for the terminal."""
    out = []
    for c in data.get("partial_checks") or []:
        cid = str(c.get("id", ""))
        if cid in told:
            continue
        told.add(cid)
        message = str(c.get("message") or "")
        why = f": {message[:200]}{'...' if len(message) > 200 else ''}" if message and c.get("status") != "passed" else ""
        reused = f" [reused from {c.get('reused_from')}]" if c.get("reused_from") else ""
        out.append(visible(f"  {c.get('status')} {cid} {c.get('points')}/{c.get('max_points')}{reused}{why} "
                           f"(score so far {data.get('partial_score')})"))
    return out


def print_report(data: dict[str, Any], *, as_json: bool) -> int:
    result = data.get("result")
    status = data["status"]
    if result and status in ("graded", "rejected"):
        from grader.result import GradeResult

        gr = GradeResult.from_dict(result)
        if as_json:
            sys.stdout.write(gr.to_json() + "\n")
        else:
            try:
                from grader.report import render_text

                sys.stdout.write(render_text(gr))
            except ImportError:
                sys.stdout.write(gr.to_json(indent=2) + "\n")
        return gr.exit_code
    if as_json:
        sys.stdout.write(json.dumps({"status": status, "message": data.get("message", "")}) + "\n")
    else:
        print("\n  ".join(visible_lines(f"{status}: {data.get('message', '')}")))
    return 1
