"""`autograder serve`: the embedded default (SQLite, Kombu's SQLAlchemy transport, one supervised worker)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _api(base: str, token: str, path: str) -> dict:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _wait(base: str, token: str, sid: int, statuses: set[str], timeout: float, log) -> dict:
    end = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            last = _api(base, token, f"/api/v1/submissions/{sid}")
        if last.get("status") in statuses:
            return last
        time.sleep(0.3)
    raise AssertionError(f"submission {sid} not in {statuses}: {last}\n{log()}")


def test_serve_grades_and_survives_kill_9_of_its_worker(tmp_path, h, procs):
    from grader.assignments.build import build_submission_zip, reference_dir

    port = h.free_port()
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONUNBUFFERED="1",
               AUTOGRADER_LEASE_SECONDS="5", AUTOGRADER_HEARTBEAT_SECONDS="1", AUTOGRADER_SWEEP_INTERVAL_SECONDS="1")
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_INTERNAL_URL"):
        env.pop(k, None)
    serve = h.Proc("serve", h.cli("serve", "--port", str(port), "--no-prepare"), env, tmp_path / "serve.log").start()
    procs.append(serve)
    h.wait_port(port, timeout=120)
    base = f"http://127.0.0.1:{port}"
    out = serve.output()
    assert f"running at {base}" in out and "student / student-demo" in out and "instructor / instructor-demo" in out
    token = subprocess.run(h.cli("token", "create", "student"), env=env, capture_output=True, text=True, check=True,
                           timeout=60, cwd=h.PROJECT).stdout.strip()
    src = (reference_dir("rpz-cnn") / "numpy_nn.py").read_bytes() + b"\nimport time as _t\n_t.sleep(6)\n"
    z = build_submission_zip("rpz-cnn", tmp_path / "slow.zip", replace={"numpy_nn.py": src},
                             omit=["pytorch_cnn.py", "model.pt", "finetuned.pt"])
    sub = subprocess.run(h.cli("submit", str(z), "--server", base, "--token", token, "--no-wait"), env=env,
                         capture_output=True, text=True, timeout=60, cwd=h.PROJECT)
    assert sub.returncode == 0, sub.stderr
    sid = int(sub.stdout.strip())
    _wait(base, token, sid, {"running"}, 120, serve.output)
    workers = subprocess.run(["pgrep", "-P", str(serve.popen.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 1, workers
    os.killpg(int(workers[0]), signal.SIGKILL)  # the worker and its pool child
    final = _wait(base, token, sid, {"graded", "error", "rejected"}, 240, serve.output)
    assert final["status"] == "graded", final
    assert "starting it again" in serve.log.read_text(errors="replace")
