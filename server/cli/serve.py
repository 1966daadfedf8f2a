"""`autograder serve`: everything on one machine with no services: the web app (werkzeug), its sweeper, a
built-in broker and one worker process, restarted when it dies."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from server.cli.common import err, server_settings, session

DEMO_USERS = (("instructor", "instructor", "instructor-demo"), ("student", "student", "student-demo"))

Log = Callable[[str], None]


def _prepare_data(log: Log) -> None:
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

    from server import create_app
    from server.sweeper import start_sweeper
    from server.worker_preflight import check_worker_host

    base = server_settings()
    url = f"http://{args.host}:{args.port}"
    # Local defaults where the environment says nothing: the worker finds the web app on this port, and the
    # cookies go over plain http on localhost.
    settings = base.with_(
        internal_url=base.internal_url if "internal_url" in base.model_fields_set else f"http://127.0.0.1:{args.port}",
        secure_cookies=base.secure_cookies if "secure_cookies" in base.model_fields_set else False,
    )
    log: Log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if why := check_worker_host():  # before anything else: a server that cannot grade must not take uploads
        return err(why)
    if not args.no_prepare:
        log("preparing the hidden data (once)...")
        _prepare_data(log)
    db = session(settings)
    logins = ensure_demo(db)
    db.close()

    # The worker's environment (not configuration read here): this process's, with the settings it must share.
    env = dict(os.environ, AUTOGRADER_BROKER_URL=settings.broker_url, AUTOGRADER_INTERNAL_URL=settings.internal_url,
               AUTOGRADER_INTERNAL_SECRET=settings.internal_secret, AUTOGRADER_INSTANCE_DIR=str(settings.instance_dir),
               AUTOGRADER_SECRET_KEY=settings.secret_key)
    for name in ("BROKER_URL", "INTERNAL_SECRET", "SECRET_KEY"):  # the values above replace any secret file
        env.pop(f"AUTOGRADER_{name}_FILE", None)
    stopping = threading.Event()
    worker = Supervised([sys.executable, "-m", "grader.cli", "worker", "--hostname", "embedded@%h"], env, log)
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


class Supervised:
    """The embedded worker process, restarted if it dies (e.g. killed by the OOM killer)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Log) -> None:
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
