"""Workers on other hosts: two network namespaces stand in for two worker machines.

The root namespace runs redis-server and the web app (`autograder web`), bound to the host ends of two
veth pairs (10.231.N.1). Each namespace gets the other end (10.231.N.2), a default route through it and
one `autograder worker` with its own instance folder, its own work folder, no database URL and no upload
folder: it reaches Redis and the web app only over its veth. 20 submissions are uploaded, one worker is
SIGKILLed while it grades, and every submission must end graded with exactly one accepted result.

Workers enter their namespace with `nsenter --net` (network namespace only): `ip netns exec` also
remounts /sys, which would hide the cgroup hierarchies the sandbox needs. Needs root, iproute2 and
util-linux; skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.tooling import missing_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBMISSIONS = 20
RESULT_LINE = re.compile(r'^(\S+) .*"POST /internal/submissions/(\d+)/result HTTP/[\d.]+" (\d{3}) ')


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    for tool in ("ip", "nsenter", "redis-server"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, util-linux, redis-server)"
    probe = f"agprobe{os.getpid() % 100000}"
    out = _run("ip", "netns", "add", probe)
    if out.returncode != 0:
        return f"ip netns is unavailable here: {out.stderr.strip()}"
    _run("ip", "netns", "del", probe)
    return None


@dataclass
class Host:
    """One network namespace joined to the root namespace by a veth pair."""

    netns: str
    veth: str
    host_ip: str
    ns_ip: str

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]


@dataclass
class Hosts:
    hosts: list[Host] = field(default_factory=list)

    def add(self, index: int, subnet: int) -> Host:
        tag = f"{os.getpid() % 100000}{chr(97 + index)}"
        h = Host(netns=f"agmh{tag}", veth=f"agv{tag}", host_ip=f"10.231.{subnet}.1", ns_ip=f"10.231.{subnet}.2")
        self.hosts.append(h)  # registered first: cleaned up even if a step below fails
        peer = f"agp{tag}"
        for argv in (
            ["ip", "netns", "add", h.netns],
            ["ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer],
            ["ip", "link", "set", peer, "netns", h.netns],
            ["ip", "addr", "add", f"{h.host_ip}/24", "dev", h.veth],
            ["ip", "link", "set", h.veth, "up"],
            ["ip", "-n", h.netns, "addr", "add", f"{h.ns_ip}/24", "dev", peer],
            ["ip", "-n", h.netns, "link", "set", peer, "up"],
            ["ip", "-n", h.netns, "link", "set", "lo", "up"],
            ["ip", "-n", h.netns, "route", "add", "default", "via", h.host_ip],
        ):
            out = _run(*argv)
            assert out.returncode == 0, f"{' '.join(argv)}: {out.stderr}"
        return h

    def remove(self) -> None:
        for h in self.hosts:
            _run("ip", "netns", "del", h.netns)  # takes its veth end, and so the pair, with it
            _run("ip", "link", "del", h.veth)


def _remove_run_cgroups(root: Path, name: str) -> None:
    """Kill whatever a SIGKILLed worker's sandbox left in its run cgroups and remove them."""
    parents = [root / c / name for c in ("memory", "pids", "cpu")] + [root / "unified" / name, root / name]
    for parent in parents:
        if not parent.is_dir():
            continue
        for run in parent.glob("run-*"):
            for _ in range(50):
                with contextlib.suppress(OSError):
                    for pid in (run / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                with contextlib.suppress(OSError):
                    run.rmdir()
                if not run.exists():
                    break
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            parent.rmdir()


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = _skip_reason()
    if reason:
        missing_tool(reason)
    made = Hosts()
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def cgroup_name() -> Iterator[str]:
    from grader.settings import settings

    name = f"nn-autograder-mh-{os.getpid()}"
    yield name
    _remove_run_cgroups(settings().cgroup_root, name)


def _numpy_zip(dest: Path) -> bytes:
    from grader.assignments.build import build_submission_zip, reference_dir

    src = (reference_dir("rpz-cnn") / "numpy_nn.py").read_bytes()
    src += b"\nimport time as _t\n_t.sleep(1.0)\n"  # a little longer, so a worker is caught grading
    return build_submission_zip("rpz-cnn", dest, replace={"numpy_nn.py": src},
                                omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"]).read_bytes()


def _upload(base: str, token: str, data: bytes) -> int:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}/api/v1/assignments/rpz-cnn/submissions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(json.loads(r.read())["id"])


def _rows(db_url: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from server.models import Submission

    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            return [{"id": x.id, "status": x.status, "worker": x.worker, "attempts": x.attempts,
                     "result": x.result_json, "reason": x.error_reason, "lane": x.lane}
                    for x in s.scalars(select(Submission).order_by(Submission.id))]
    finally:
        engine.dispose()


def test_workers_in_two_namespaces_grade_everything_once_despite_sigkill(hosts, cgroup_name, procs, h, tmp_path):
    subnet = 10 + 2 * (os.getpid() % 120)  # 10.231.<subnet>.0/24 and the next: parallel runs do not clash
    a, b = hosts.add(0, subnet), hosts.add(1, subnet + 1)
    redis_port, web_port = h.free_port(), h.free_port()
    redis_auth = ":multihost-redis-pass@"  # off loopback Redis wants a password (protected mode)
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    db_url = f"sqlite:///{web_dir / 'autograder.sqlite3'}"
    common = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    common.update(AUTOGRADER_INTERNAL_SECRET="multihost-internal-secret", PYTHONUNBUFFERED="1",
                  AUTOGRADER_LEASE_SECONDS="6", AUTOGRADER_HEARTBEAT_SECONDS="1",
                  AUTOGRADER_VISIBILITY_TIMEOUT="10")
    web_env = dict(common, AUTOGRADER_DATABASE_URL=db_url, AUTOGRADER_INSTANCE_DIR=str(web_dir),
                   AUTOGRADER_UPLOAD_DIR=str(web_dir / "uploads"), AUTOGRADER_SECRET_KEY="multihost-secret",
                   AUTOGRADER_BROKER_URL=f"redis://{redis_auth}{a.host_ip}:{redis_port}/0", AUTOGRADER_SECURE_COOKIES="false",
                   AUTOGRADER_SWEEP_INTERVAL_SECONDS="1", AUTOGRADER_REQUEUE_AFTER_SECONDS="6",
                   # the 20 uploads are one zip of one student: each must really be graded (a worker is caught
                   # grading one), not served from the first's verdicts
                   AUTOGRADER_REUSE_VERDICTS="false")
    for argv in (h.cli("db", "upgrade"), h.cli("users", "add", "alice", "--password", "alice-pass-1")):
        subprocess.run(argv, env=web_env, check=True, capture_output=True, timeout=60, cwd=h.PROJECT)
    subprocess.run([sys.executable, "-c", "import sys; from sqlalchemy.orm import Session; "
                    "from server.db import make_engine; from server.services.assignments import ensure_assignment; "
                    "ensure_assignment(Session(make_engine(sys.argv[1])), 'rpz-cnn')", db_url],
                   check=True, timeout=60, cwd=h.PROJECT)
    token = subprocess.run(h.cli("token", "create", "alice"), env=web_env, check=True, capture_output=True,
                           text=True, timeout=60, cwd=h.PROJECT).stdout.strip()

    redis = h.Proc("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                             "--bind", a.host_ip, b.host_ip, "--requirepass", "multihost-redis-pass",
                             "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], dict(os.environ), tmp_path / "redis.log").start()
    procs.append(redis)
    web = h.Proc("web", h.cli("web", "--bind", f"{a.host_ip}:{web_port}", "--workers", "2"), web_env,
                 tmp_path / "web.log").start()
    procs.append(web)
    base = f"http://{a.host_ip}:{web_port}"
    _wait_http(f"{base}/healthz", timeout=60)

    workers = {}
    for host, label in ((a, "a"), (b, "b")):
        env = dict(common, AUTOGRADER_BROKER_URL=f"redis://{redis_auth}{host.host_ip}:{redis_port}/0",
                   AUTOGRADER_INTERNAL_URL=base, AUTOGRADER_INSTANCE_DIR=str(tmp_path / f"worker-{label}"),
                   AUTOGRADER_WORK_DIR=str(tmp_path / f"work-{label}"), AUTOGRADER_CGROUP_NAME=cgroup_name,
                   AUTOGRADER_REQUIRE_SANDBOX="true")
        assert "AUTOGRADER_DATABASE_URL" not in env and "AUTOGRADER_UPLOAD_DIR" not in env
        w = h.Proc(f"worker-{label}", host.exec_argv(h.cli("worker", "--hostname", f"mh-{label}@%h")), env,
                   tmp_path / f"worker-{label}.log").start()
        procs.append(w)
        workers[label] = w

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in procs)

    _wait_workers(db_url, {"mh-a", "mh-b"}, timeout=120, logs=logs)
    data = _numpy_zip(tmp_path / "numpy.zip")
    ids = [_upload(base, token, data) for _ in range(SUBMISSIONS)]

    # SIGKILL worker a (and its pool child) while a submission's quick phase is running on it, after it has graded
    # one.
    end = time.monotonic() + 120
    victim = None
    while victim is None:
        assert time.monotonic() < end, f"worker a never ran a second submission: {_rows(db_url)}\n" + logs()
        rows = _rows(db_url)
        on_a = [r for r in rows if r["worker"].startswith("mh-a@")]
        # quick phases go first (lanes): a worker has graded one once any row has moved on to its slow phase
        if any(r["lane"] == "slow" or r["status"] == "graded" for r in rows) and len(on_a) > 1:
            # in its quick phase (the numpy checks, slowed by a second): the slow phase of this zip takes
            # milliseconds (its network files are missing), too short to be caught running
            victim = next((r["id"] for r in on_a if r["status"] == "running" and r["lane"] == "quick"), None)
        time.sleep(0.05)
    workers["a"].kill9()

    end = time.monotonic() + 300
    while True:
        rows = _rows(db_url)
        if all(r["status"] in ("graded", "rejected", "error") for r in rows):
            break
        assert time.monotonic() < end, f"not finished: {[r for r in rows if r['status'] != 'graded']}\n{logs()}"
        time.sleep(0.5)

    assert [r["id"] for r in rows] == ids, "a submission was lost or invented"
    assert all(r["status"] == "graded" and r["result"] for r in rows), \
        [(r["id"], r["status"], r["reason"]) for r in rows if r["status"] != "graded"]
    killed = next(r for r in rows if r["id"] == victim)
    assert killed["attempts"] >= 2 and "mh-a@" in killed["reason"], killed
    assert killed["worker"].startswith("mh-b@"), "the killed worker's submission was not taken over by the other"

    # The report history: every result the web app accepted, from its access log (one line per request).
    web.stop()
    accepted: dict[int, int] = {}
    sources: set[str] = set()
    for line in web.log.read_text(errors="replace").splitlines():
        m = RESULT_LINE.match(line)
        if m:
            sources.add(m.group(1))
            if m.group(3) == "200":
                accepted[int(m.group(2))] = accepted.get(int(m.group(2)), 0) + 1
    # one per phase (the quick checks, then the accuracy checks: services.phases), none twice
    assert accepted == {sid: 2 for sid in ids}, f"results accepted per submission: {accepted}"
    assert sources == {a.ns_ip, b.ns_ip}, f"results came from {sources}, not over both veths"
    for label in ("a", "b"):
        assert not list((tmp_path / f"worker-{label}").glob("*.sqlite3")), "a worker opened a database"


def _wait_http(url: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > end:
            raise TimeoutError(f"{url} did not answer 200: {last}")
        time.sleep(0.3)


def _wait_workers(db_url: str, names: set[str], timeout: float, logs: Any) -> None:
    from sqlalchemy import create_engine, select

    from server.models import WorkerSeen

    engine = create_engine(db_url)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            with engine.connect() as c:
                seen = {hn.split("@")[0] for hn in c.scalars(select(WorkerSeen.hostname))}
            if names <= seen:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise AssertionError(f"workers {names} did not report in over their veths\n{logs()}")
