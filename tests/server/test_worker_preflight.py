"""`autograder worker` and `autograder serve` refuse to start on a host that cannot sandbox (on by default)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from grader.settings import settings
from server.worker_preflight import check_worker_host, leave_cgroup_namespace_root


def _worker(h, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(AUTOGRADER_INTERNAL_SECRET="s", AUTOGRADER_INSTANCE_DIR=str(tmp_path / "w"),
               AUTOGRADER_BROKER_URL="redis://127.0.0.1:9/0", **extra)
    return subprocess.run(h.cli("worker"), env=env, capture_output=True, text=True, timeout=120, cwd=h.PROJECT)


def test_worker_without_bubblewrap_refuses_to_start(h, tmp_path):
    out = _worker(h, tmp_path, AUTOGRADER_BWRAP="/nonexistent/bwrap")  # the check is on by default
    assert out.returncode == 1
    assert "cannot sandbox student code" in out.stderr and "bubblewrap" in out.stderr
    assert "privileged" in out.stderr and "cgroup: private" in out.stderr  # what a container needs


def test_worker_without_cgroups_refuses_to_start(h, tmp_path):
    out = _worker(h, tmp_path, AUTOGRADER_REQUIRE_SANDBOX="true", AUTOGRADER_CGROUP_ROOT=str(tmp_path))
    assert out.returncode == 1
    assert "cannot enforce the memory limit, the process limit or the CPU quota" in out.stderr


def test_the_check_is_on_unless_turned_off(tmp_path):
    from grader.settings import GraderSettings

    assert GraderSettings.from_env({}).require_sandbox is True
    assert GraderSettings.from_env({"AUTOGRADER_REQUIRE_SANDBOX": "yes"}).require_sandbox is True
    off = GraderSettings.from_env({"AUTOGRADER_REQUIRE_SANDBOX": "false"})
    assert off.require_sandbox is False
    cfg = settings().with_(bwrap="/nonexistent/bwrap")
    assert "bubblewrap" in (check_worker_host(cfg) or "")
    assert check_worker_host(cfg.with_(require_sandbox=False)) is None


def test_serve_without_bubblewrap_refuses_before_taking_uploads(h, tmp_path):
    """The embedded server checks before it prepares data, creates demo users or opens its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(AUTOGRADER_INSTANCE_DIR=str(tmp_path / "inst"), AUTOGRADER_BWRAP="/nonexistent/bwrap")
    out = subprocess.run(h.cli("serve", "--port", "9", "--no-prepare"), env=env, capture_output=True, text=True,
                         timeout=120, cwd=h.PROJECT)
    assert out.returncode == 1
    assert "cannot sandbox student code" in out.stderr and "bubblewrap" in out.stderr
    assert "running at" not in out.stdout
    made = {str(p.relative_to(tmp_path / "inst")) for p in h.files_under(tmp_path / "inst")}
    assert made <= {"secret_key", "internal_secret"}, made  # settings' secrets only: no database, broker, uploads


@pytest.mark.sandbox
def test_this_host_passes_the_check():
    cfg = settings().with_(require_sandbox=True, cgroup_name=f"nn-autograder-preflight-{os.getpid()}")
    try:
        assert check_worker_host(cfg) is None
    finally:  # the check creates the (empty) parent group; remove it again
        for parent in [cfg.cgroup_root / c / cfg.cgroup_name for c in ("memory", "pids", "cpu")] + \
                [cfg.cgroup_root / "unified" / cfg.cgroup_name, cfg.cgroup_root / cfg.cgroup_name]:
            with contextlib.suppress(OSError):
                parent.rmdir()


def test_cgroup_v1_or_a_non_root_group_is_left_alone(tmp_path):
    assert leave_cgroup_namespace_root(tmp_path) is False  # no cgroup.controllers: not cgroup v2
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids")
    me = tmp_path / "self_cgroup"
    me.write_text("0::/system.slice/worker.service\n")
    assert leave_cgroup_namespace_root(tmp_path, me) is False
    assert not (tmp_path / "worker").exists()


def test_on_off_settings_read_the_same_everywhere(tmp_path):
    from grader.settings import env_flag
    from server.settings import ServerSettings

    for raw in ("1", "true", "YES", " on "):
        assert env_flag(raw, default=False) is True
    for raw in ("0", "False", "no", "OFF"):
        assert env_flag(raw, default=True) is False
    assert env_flag(None, default=True) is True and env_flag("maybe", default=False) is False
    base = {"AUTOGRADER_INSTANCE_DIR": str(tmp_path)}
    assert ServerSettings.from_env(base).secure_cookies is True
    assert ServerSettings.from_env({**base, "AUTOGRADER_SECURE_COOKIES": "off"}).secure_cookies is False
    assert ServerSettings.from_env({**base, "AUTOGRADER_SECURE_COOKIES": "yes"}).secure_cookies is True


def test_worker_without_the_hidden_datas_key_refuses_to_start(h, tmp_path):
    """A worker host with no copy of hidden_data/ (or one without dither.key) would fail every grading."""
    empty = tmp_path / "hidden"
    empty.mkdir()
    out = _worker(h, tmp_path, AUTOGRADER_HIDDEN_DATA=str(empty))
    assert out.returncode == 1
    assert "hidden test data is not usable here" in out.stderr and "dither.key is missing" in out.stderr
    assert "rsync -a" in out.stderr
