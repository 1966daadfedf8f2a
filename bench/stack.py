"""A real grading stack for the benchmarks: redis-server, `autograder web` (gunicorn) and N `autograder worker`.

Everything runs in a temporary folder on a fresh SQLite database; workers get only the broker URL and the
internal URL + secret, as on other machines. `stop` ends every process by its process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.server.browser import multipart  # noqa: E402
from tests.server.ports import free_port, wait_port  # noqa: E402


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


@dataclass
class Stack:
    """redis-server, the web app and N workers in `tmp`."""

    tmp: Path
    workers: int
    limits: str = ""
    web_workers: int = 2
    database: str = "sqlite"
    """"sqlite" (a file in `tmp`) or "postgres" (a throw-away server from Debian's binaries, fsync on)."""
    redis_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    token: str = ""
    pg_root: Path | None = None
    pg_url: str = ""

    @property
    def db_url(self) -> str:
        return self.pg_url or f"sqlite:///{self.tmp / 'web' / 'autograder.sqlite3'}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, AUTOGRADER_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                    AUTOGRADER_SECRET_KEY="bench-secret", AUTOGRADER_INTERNAL_SECRET="bench-internal-secret",
                    AUTOGRADER_INTERNAL_URL=self.base_url, AUTOGRADER_SECURE_COOKIES="false",
                    PYTHONUNBUFFERED="1")

    def web_env(self) -> dict[str, str]:
        return dict(self.env(), AUTOGRADER_DATABASE_URL=self.db_url, AUTOGRADER_INSTANCE_DIR=str(self.tmp / "web"))

    def worker_env(self, n: int) -> dict[str, str]:
        env = {k: v for k, v in self.env().items() if k != "AUTOGRADER_DATABASE_URL"}
        env.update(AUTOGRADER_INSTANCE_DIR=str(self.tmp / f"worker{n}"), AUTOGRADER_WORK_DIR=str(self.tmp / f"work{n}"),
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        if self.limits:
            env["AUTOGRADER_LIMITS"] = self.limits
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115  (lives as long as the process)
        self.procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def start(self, seed: Callable[[str], None] | None = None) -> None:
        """A database with the student `bench` (API token in `token`) and rpz-cnn; `seed(db_url)` may add more;
        then redis, the web app and the workers, waiting until every worker has reported in."""
        (self.tmp / "web").mkdir(parents=True)
        if self.database == "postgres":
            self.start_postgres()
        env = self.web_env()
        for argv in (cli("db", "upgrade"), cli("users", "add", "bench", "--password", "bench-pass-1")):
            subprocess.run(argv, env=env, check=True, capture_output=True, cwd=ROOT, timeout=120)
        subprocess.run([sys.executable, "-c", "import sys; from sqlalchemy.orm import Session; "
                        "from server.db import make_engine; from server.services.assignments import ensure_assignment; "
                        "s = Session(make_engine(sys.argv[1])); ensure_assignment(s, 'rpz-cnn'); s.commit()",
                        self.db_url], check=True, cwd=ROOT, timeout=120)
        self.token = subprocess.run(cli("token", "create", "bench"), env=env, check=True, capture_output=True,
                                    text=True, cwd=ROOT, timeout=120).stdout.strip()
        if seed is not None:
            seed(self.db_url)
        redis = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.spawn("redis", [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(self.tmp)], dict(os.environ))
        wait_port(self.redis_port, timeout=60.0)
        self.spawn("web", cli("web", "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(self.web_workers)), env)
        wait_port(self.web_port, timeout=60.0)
        for n in range(1, self.workers + 1):
            self.spawn(f"worker{n}", cli("worker", "--hostname", f"bench{n}@%h"), self.worker_env(n))
        self.wait_workers()

    def start_postgres(self) -> None:
        from tests.server.pg import init_cluster, wait_ready

        # Outside `tmp`: PostgreSQL runs as the postgres user, who cannot enter root's private folders.
        self.pg_root = Path(tempfile.mkdtemp(prefix="autograder-bench-pg-"))
        cluster = init_cluster(self.pg_root, free_port(), fsync=True)
        self.spawn("postgres", cluster.argv, dict(os.environ))
        wait_port(cluster.port, timeout=60.0)
        wait_ready(cluster.url)
        self.pg_url = cluster.url

    def wait_workers(self, timeout: float = 120.0) -> None:
        from sqlalchemy import create_engine, func, select

        from server.models import WorkerSeen

        engine = create_engine(self.db_url)
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                with engine.connect() as c:
                    if (c.scalar(select(func.count()).select_from(WorkerSeen)) or 0) >= self.workers:
                        return
                time.sleep(0.5)
        finally:
            engine.dispose()
        raise TimeoutError(f"{self.workers} worker(s) did not report in; see {self.tmp}/worker*.log")

    def upload(self, data: bytes, token: str | None = None, assignment: str = "rpz-cnn") -> int:
        """Upload through the API as the token's user; returns the submission id."""
        body, ctype = multipart(data)
        req = urllib.request.Request(f"{self.base_url}/api/v1/assignments/{assignment}/submissions", data=body,
                                     method="POST",
                                     headers={"Authorization": f"Bearer {token or self.token}", "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=120) as r:
            return int(json.loads(r.read())["id"])

    def wait_final(self, ids: list[int], timeout: float, *, every: float = 1.0) -> list[dict[str, Any]]:
        """The rows of `ids` once every one is graded, rejected or error (polled every `every` s)."""
        end = time.monotonic() + timeout
        while True:
            rows = self.rows(ids)
            if sum(r["status"] in ("graded", "rejected", "error") for r in rows) == len(ids):
                return rows
            if time.monotonic() > end:
                raise TimeoutError(f"not all of {len(ids)} submissions finished after {timeout:.0f} s; logs in {self.tmp}")
            time.sleep(every)

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        """The submissions' rows, read straight from the database (not through the app under test)."""
        from sqlalchemy import create_engine, select
        from sqlalchemy.orm import Session

        from server.models import Submission

        engine = create_engine(self.db_url)
        try:
            with Session(engine) as s:
                return [{"id": x.id, "status": x.status, "created": x.created_at, "started": x.started_at,
                         "finished": x.finished_at, "attempts": x.attempts, "lost": bool(x.error_reason), "result": x.result,
                         # when its first verdicts came: a two-phase grading's quick phase ended when its slow
                         # phase was queued (server/services/phases.py)
                         "first_verdicts": x.queued_at if x.lane == "slow" else x.finished_at}
                        for x in s.scalars(select(Submission).where(Submission.id.in_(ids)))]
        finally:
            engine.dispose()

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
                except ProcessLookupError:
                    pass
        if self.pg_root is not None:
            shutil.rmtree(self.pg_root, ignore_errors=True)
