"""The server's CLI commands, run as the README runs them (subprocesses with environment settings)."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture
def run(tmp_path, h):
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "inst"))
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_INTERNAL_SECRET", "AUTOGRADER_BROKER_URL"):
        env.pop(k, None)

    def go(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(h.cli(*args), env=dict(env, **(extra or {})), capture_output=True, text=True,
                              timeout=120, cwd=h.PROJECT)

    return go


def test_users_import_add_and_token(run, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("username,name,email,role\nann,Ann A,ann@x.org,student\nted,Ted T,,instructor\n")
    out = run("users", "import", str(roster), "--base-url", "https://grader.example")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "username,role,status,first_login_link"
    assert lines[1].startswith("ann,student,created,https://grader.example/auth/setup/")
    assert lines[2].startswith("ted,instructor,created,https://grader.example/auth/setup/")
    again = run("users", "import", str(roster))
    assert "ann,student,updated," in again.stdout
    add = run("users", "add", "zoe", "--role", "instructor")
    assert add.returncode == 0 and "first-login link: http" in add.stdout
    assert run("users", "add", "zoe").returncode == 1  # exists
    tok = run("token", "create", "ann")
    assert tok.returncode == 0 and tok.stdout.strip().startswith("nag_") and len(tok.stdout.strip()) > 40
    assert run("token", "create", "nobody").returncode == 1


def test_worker_refuses_to_start_without_the_internal_secret(run, tmp_path):
    out = run("worker", extra={"AUTOGRADER_INSTANCE_DIR": str(tmp_path / "elsewhere")})
    assert out.returncode == 1 and "AUTOGRADER_INTERNAL_SECRET" in out.stderr


def test_submit_needs_a_token_and_a_file(run, tmp_path):
    assert "token" in run("submit", "x.zip", "--server", "http://127.0.0.1:9").stderr
    out = run("submit", str(tmp_path / "missing.zip"), "--server", "http://127.0.0.1:9", "--token", "t")
    assert out.returncode == 1 and "no such file" in out.stderr
    z = tmp_path / "a.zip"
    z.write_bytes(b"PK")
    out = run("submit", str(z), "--server", "http://127.0.0.1:9", "--token", "t")
    assert out.returncode == 1 and "cannot reach" in out.stderr


def test_api_tokens_never_look_like_a_command_line_option():
    """A token_urlsafe value starts with "-" one time in 64; `submit --token -x...` then failed in CI."""
    from server.security import new_token

    tokens = [new_token() for _ in range(2000)]
    assert all(t.startswith("nag_") and len(t) > 40 for t in tokens)
    assert len(set(tokens)) == len(tokens)
