"""A real deployment for integration tests: redis-server, the gunicorn web app (`autograder web`) and Celery
workers (`autograder worker`) on free ports, set up with the project's own CLI.

Workers get only the broker URL and the internal URL + secret: no database URL, no shared upload folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTEGRATION_ENV = {
    "AUTOGRADER_SECRET_KEY": "integration-secret", "AUTOGRADER_INTERNAL_SECRET": "integration-internal-secret",
    "AUTOGRADER_SECURE_COOKIES": "false", "AUTOGRADER_LEASE_SECONDS": "6", "AUTOGRADER_HEARTBEAT_SECONDS": "1",
    "AUTOGRADER_SWEEP_INTERVAL_SECONDS": "1", "AUTOGRADER_REQUEUE_AFTER_SECONDS": "6",
    "AUTOGRADER_VISIBILITY_TIMEOUT": "10", "PYTHONUNBUFFERED": "1",
}


@dataclass
class Stack:
    tmp: Path
    h: Any
    procs: list
    redis_port: int = 0
    web_port: int = 0
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)
    redis: Any = None
    web: Any = None
    workers: list = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def web_env(self) -> dict[str, str]:
        return dict(self.env, AUTOGRADER_DATABASE_URL=f"sqlite:///{self.tmp / 'web' / 'autograder.sqlite3'}",
                    AUTOGRADER_INSTANCE_DIR=str(self.tmp / "web"), AUTOGRADER_UPLOAD_DIR=str(self.tmp / "web" / "uploads"))

    def worker_env(self, n: int) -> dict[str, str]:
        # A worker "on another machine": its own instance folder, no database URL, no access to the uploads.
        env = {k: v for k, v in self.env.items() if k != "AUTOGRADER_DATABASE_URL"}
        env["AUTOGRADER_INSTANCE_DIR"] = str(self.tmp / f"worker{n}")
        env["AUTOGRADER_DATABASE_URL"] = "postgresql://nobody@invalid.invalid/none"  # never used by workers
        return env

    def manage(self, *args: str) -> str:
        """Run `autograder ARGS` against the web app's database (as an operator on the web host); its stdout."""
        return subprocess.run(self.h.cli(*args), env=self.web_env(), check=True, capture_output=True, text=True,
                              timeout=60, cwd=self.h.PROJECT).stdout

    def start_redis(self) -> None:
        self.redis = self.h.redis_proc(self.tmp, self.redis_port).start()
        self.procs.append(self.redis)
        self.h.wait_port(self.redis_port)

    def start_web(self) -> None:
        self.web = self.h.Proc("web", self.h.cli("web", "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2"),
                               self.web_env(), self.tmp / "web.log").start()
        self.procs.append(self.web)
        self.h.wait_port(self.web_port, timeout=60)

    def start_worker(self, n: int = 1) -> Any:
        w = self.h.Proc(f"worker{n}", self.h.cli("worker", "--hostname", f"w{n}@%h"), self.worker_env(n),
                        self.tmp / f"worker{n}.log").start()
        self.procs.append(w)
        self.workers.append(w)
        return w

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.procs)

    def api(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def submit_no_wait(self, zip_path: Path) -> int:
        out = subprocess.run(self.h.cli("submit", str(zip_path), "--server", self.base, "--token", self.token,
                                        "--no-wait"),
                             capture_output=True, text=True, timeout=60, cwd=self.h.PROJECT)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip())

    def wait_status(self, sid: int, statuses: set[str], timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < end:
            try:
                last = self.api(f"/api/v1/submissions/{sid}")
            except OSError:
                time.sleep(0.5)
                continue
            if last["status"] in statuses:
                return last
            time.sleep(0.3)
        raise AssertionError(f"submission {sid} not in {statuses} after {timeout}s: {last}\n{self.logs()}")


def start_stack(tmp: Path, h: Any, procs: list, *, assignments: tuple[str, ...] = ("rpz-cnn",),
                **env: str) -> Stack:
    """Database, student `alice` with an API token, the given assignments, then redis and the web app (no worker).

    :param procs: the started processes are appended here; the caller stops them
    :param env: AUTOGRADER_* settings that differ from INTEGRATION_ENV
    """
    st = Stack(tmp=tmp, h=h, procs=procs, redis_port=h.free_port(), web_port=h.free_port())
    (tmp / "web").mkdir()
    st.env = {**os.environ, **INTEGRATION_ENV, "AUTOGRADER_BROKER_URL": f"redis://127.0.0.1:{st.redis_port}/0",
              "AUTOGRADER_INTERNAL_URL": st.base, **env}
    st.manage("db", "upgrade")
    st.manage("users", "add", "alice", "--password", h.PASSWORDS["alice"])
    if assignments:
        from sqlalchemy.orm import Session

        from server.db import make_engine
        from server.services.assignments import ensure_assignment

        engine = make_engine(st.web_env()["AUTOGRADER_DATABASE_URL"])
        with Session(engine) as s:
            for name in assignments:
                ensure_assignment(s, name)
        engine.dispose()
    st.token = st.manage("token", "create", "alice").strip()
    st.start_redis()
    st.start_web()
    return st
