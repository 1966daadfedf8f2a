"""Server commands of the `autograder` CLI: serve, web, worker, db, users, token, submit.

Registered by grader.cli; Flask, Celery and SQLAlchemy are imported inside the commands only. Text that
users or students control (user names, the server's messages, grading reports) is printed through
`grader.terminal.visible` (control characters and bidi overrides shown escaped).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from grader.terminal import visible, visible_lines

DEMO_USERS = (("instructor", "instructor", "instructor-demo"), ("student", "student", "student-demo"))
KEPT_ALIVE_PER_PROCESS = 8
"""Idle kept-alive connections a web process holds beside its busy threads (gunicorn worker_connections)."""


def register(sub: Any) -> None:
    """Add the server subcommands to the `autograder` argparse subparsers object."""
    p = sub.add_parser("serve", help="run everything locally: web app, one worker, built-in broker (no services)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--no-prepare", action="store_true", help="do not prepare the hidden data")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("web", help="production web app (gunicorn)")
    p.add_argument("--bind", default=os.environ.get("AUTOGRADER_BIND", "127.0.0.1:8000"))
    p.add_argument("--workers", type=int, default=int(os.environ.get("AUTOGRADER_WEB_WORKERS", "2")))
    p.add_argument("--threads", type=int, default=32,
                   help="threads per process: requests one process serves at once (default 32)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("worker", help="grading worker (Celery); needs only the broker and the internal URL + secret")
    p.add_argument("--concurrency", type=int, default=None, help="parallel gradings (default: settings, 1)")
    p.add_argument("--hostname", default=None)
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="apply the Alembic migrations").set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("users", help="accounts")
    usub = p.add_subparsers(dest="users_command", required=True)
    i = usub.add_parser("import", help="import a roster CSV (username,name,email,role); prints first-login links")
    i.add_argument("csv")
    i.add_argument("--base-url", default="http://127.0.0.1:5000")
    i.set_defaults(func=cmd_users_import)
    a = usub.add_parser("add", help="add one user; prints a first-login link unless --password is given")
    a.add_argument("name")
    a.add_argument("--role", choices=["student", "instructor"], default="student")
    a.add_argument("--password", default=None)
    a.add_argument("--full-name", default="")
    a.add_argument("--base-url", default="http://127.0.0.1:5000")
    a.set_defaults(func=cmd_users_add)

    p = sub.add_parser("token", help="API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    t = tsub.add_parser("create", help="create an API token for a user and print it")
    t.add_argument("name", help="username")
    t.add_argument("--days", type=int, default=180, help="validity in days (0: no expiry)")
    t.set_defaults(func=cmd_token_create)

    p = sub.add_parser("submit", help="upload a zip to a server, wait for grading, print the report")
    p.add_argument("zip")
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:5000")
    p.add_argument("--token", default=os.environ.get("AUTOGRADER_TOKEN"), help="API token (or $AUTOGRADER_TOKEN)")
    p.add_argument("--assignment", "-a", default="rpz-cnn")
    p.add_argument("--json", action="store_true", help="print the result JSON only")
    p.add_argument("--no-wait", action="store_true", help="print the submission id and exit")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.set_defaults(func=cmd_submit)


# ---------------------------------------------------------------- helpers


def _settings() -> Any:
    from server.settings import settings

    return settings()


def _session(settings: Any) -> Any:
    from sqlalchemy.orm import Session

    from server.db import make_engine, upgrade

    upgrade(settings.database_url)
    return Session(make_engine(settings.database_url), expire_on_commit=False)


def _err(msg: str) -> int:
    print(f"autograder: {visible(msg)}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- accounts


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from server.db import upgrade

    upgrade(_settings().database_url)
    print("database is at the latest schema")
    return 0


def cmd_users_import(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = _session(_settings())
    try:
        imported = accounts.import_roster(s, Path(args.csv).read_text(encoding="utf-8"))
    except (OSError, accounts.AccountError) as exc:
        return _err(str(exc))
    print("username,role,status,first_login_link")
    for u in imported:
        link = f"{args.base_url.rstrip('/')}/auth/setup/{u.setup_token}" if u.setup_token else ""
        print(",".join(visible(v) for v in (u.user.username, u.user.role, "created" if u.created else "updated", link)))
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = _session(_settings())
    try:
        user, token = accounts.add_user(s, args.name, role=args.role, name=args.full_name, password=args.password)
        s.commit()
    except accounts.AccountError as exc:
        return _err(str(exc))
    print(f"created {args.role} {visible(user.username)}")
    if token:
        print(f"first-login link: {args.base_url.rstrip('/')}/auth/setup/{token}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = _session(_settings())
    user = accounts.find_user(s, args.name)
    if user is None:
        return _err(f"no user {args.name!r}")
    print(accounts.create_api_token(s, user, name="cli", days=args.days or None))
    return 0


# ---------------------------------------------------------------- processes


def cmd_worker(args: argparse.Namespace) -> int:
    """`celery -A server.worker worker` after the host's preflight checks, with the project's defaults."""
    from server.settings import PROJECT_ROOT

    instance = Path(os.environ.get("AUTOGRADER_INSTANCE_DIR") or PROJECT_ROOT / "instance")
    if not os.environ.get("AUTOGRADER_INTERNAL_SECRET") and not (instance / "internal_secret").is_file():
        return _err("a worker needs AUTOGRADER_INTERNAL_SECRET (the web app's internal secret) and "
                    "AUTOGRADER_INTERNAL_URL (where the web app is)")
    from grader.settings import settings as grader_settings
    from server.worker_preflight import check_hidden_data, check_worker_host
    cfg = grader_settings()
    if why := check_worker_host(cfg) or check_hidden_data(cfg):
        return _err(why)
    from server.worker import app, worker_argv

    app.worker_main(worker_argv(args.concurrency or None, args.hostname, args.loglevel))
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from server.db import upgrade

    settings = _settings()
    upgrade(settings.database_url)

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", args.bind)
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            # A process takes new connections only while it has a free thread (or room for one of a few
            # kept-alive ones): one whose threads slow clients hold leaves new visitors to the others.
            self.cfg.set("worker_connections", args.threads + KEPT_ALIVE_PER_PROCESS)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            from server.wsgi import create

            return create()

    _App().run()
    return 0


def _prepare_data(log: Any) -> None:
    try:
        from grader.data import DataUnavailable, prepare
        from grader.settings import settings as grader_settings
    except ImportError as exc:
        log(f"hidden data: cannot prepare ({exc})")
        return
    try:
        prepare(settings=grader_settings(), force=False, log=log)
    except DataUnavailable as exc:
        log(f"hidden data unavailable: {exc} (checks that need it will report an error)")


def ensure_demo(session: Any) -> list[tuple[str, str, str]]:
    """Demo instructor, demo student and the rpz-cnn assignment; returns (role, username, password)."""
    from server.services import accounts
    from server.services.assignments import ensure_assignment

    out = []
    for username, role, password in DEMO_USERS:
        if accounts.find_user(session, username) is None:
            accounts.add_user(session, username, role=role, name=f"Demo {role}", password=password)
            session.commit()
        out.append((role, username, password))
    ensure_assignment(session, "rpz-cnn")
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from grader.settings import env_flag
    from server import create_app
    from server.settings import ServerSettings
    from server.sweeper import start_sweeper

    base = ServerSettings.from_env()
    url = f"http://{args.host}:{args.port}"
    settings = base.with_(
        internal_url=os.environ.get("AUTOGRADER_INTERNAL_URL", f"http://127.0.0.1:{args.port}"),
        secure_cookies=env_flag(os.environ.get("AUTOGRADER_SECURE_COOKIES"), default=False),  # plain http locally
    )
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    from server.worker_preflight import check_worker_host
    if why := check_worker_host():  # before anything else: a server that cannot grade must not take uploads
        return _err(why)
    if not args.no_prepare:
        log("preparing the hidden data (once)...")
        _prepare_data(log)
    session = _session(settings)
    logins = ensure_demo(session)
    session.close()

    env = dict(os.environ, AUTOGRADER_BROKER_URL=settings.broker_url, AUTOGRADER_INTERNAL_URL=settings.internal_url,
               AUTOGRADER_INTERNAL_SECRET=settings.internal_secret, AUTOGRADER_INSTANCE_DIR=str(settings.instance_dir),
               AUTOGRADER_SECRET_KEY=settings.secret_key)
    stopping = threading.Event()
    worker = _Supervised([sys.executable, "-m", "grader.cli", "worker", "--hostname", "embedded@%h"], env, log)
    threading.Thread(target=worker.watch, args=(stopping,), daemon=True, name="worker-supervisor").start()
    app = create_app(settings=settings)
    start_sweeper(app)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"\nnn-autograder is running at {url}", flush=True)
    for role, username, password in logins:
        print(f"  {role:10s} login: {username} / {password}", flush=True)
    print(f"  broker: {settings.broker_url} · database: {settings.database_url}\n  Ctrl-C stops it.", flush=True)

    def _stop(*_a: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        worker.stop()
    return 0


class _Supervised:
    """The embedded worker process, restarted if it dies (e.g. killed by the OOM killer)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Any) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.lock = threading.Lock()
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv, env=self.env, start_new_session=True)

    def watch(self, stopping: threading.Event) -> None:
        while not stopping.wait(2.0):
            with self.lock:
                code = self.proc.poll()
                if code is not None and not stopping.is_set():
                    self.log(f"the worker exited ({code}); starting it again")
                    self.proc = self._spawn()

    def stop(self) -> None:
        with self.lock:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------- client


def _http(method: str, url: str, token: str, body: bytes | None = None,
          content_type: str | None = None) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": f"HTTP {exc.code}"}


def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    import uuid

    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: application/zip\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def cmd_submit(args: argparse.Namespace) -> int:
    """Upload, wait, print the report; exit code as `autograder grade` (0 graded, 2 rejected, 1 error)."""
    from urllib.error import URLError

    if not args.token:
        return _err("an API token is needed (--token or $AUTOGRADER_TOKEN)")
    path = Path(args.zip)
    if not path.is_file():
        return _err(f"no such file: {path}")
    base = args.server.rstrip("/")
    body, ctype = _multipart("file", path.name, path.read_bytes())
    try:
        code, data = _http("POST", f"{base}/api/v1/assignments/{args.assignment}/submissions", args.token, body, ctype)
    except URLError as exc:
        return _err(f"cannot reach {base}: {exc.reason}")
    if code != 201:
        return _err(f"upload refused (HTTP {code}): {data.get('error', data)}")
    sid = data["id"]
    print(visible(f"uploaded as submission {sid} ({data.get('uploads_used')} of {data.get('upload_limit')} "
                  "uploads used)"), file=sys.stderr)
    if args.no_wait:
        print(visible(str(sid)))
        return 0
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        try:
            code, data = _http("GET", f"{base}/api/v1/submissions/{sid}", args.token)
        except URLError:
            code, data = 0, {}
        if code == 200:
            status = data["status"]
            note = (f"queued (position {data.get('queue_position')})" if status == "queued"
                    else f"running {data.get('current_check') or ''}".strip() if status == "running" else status)
            if note != last:
                print(visible(note), file=sys.stderr)
                last = note
            if status in ("graded", "rejected", "error"):
                break
        if time.monotonic() > deadline:
            return _err(f"gave up waiting for submission {sid}")
        time.sleep(2.0)
    return _print_report(data, as_json=args.json)


def _print_report(data: dict[str, Any], *, as_json: bool) -> int:
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
