"""The settings: every documented AUTOGRADER_* variable is read (names and defaults unchanged), a bad value is an
error naming the variable, secrets can come from files (<NAME>_FILE), and the settings are read once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grader.settings import GraderSettings, SettingsError
from server.settings import ClientSettings, ServerSettings

ROOT = Path(__file__).resolve().parents[1]

# variable -> (a value to set, what the settings' field then holds)
GRADER_VARS: dict[str, tuple[str, str, Any]] = {
    "AUTOGRADER_HIDDEN_DATA": ("/srv/hidden", "hidden_data", Path("/srv/hidden")),
    "AUTOGRADER_SHARED_DATA": ("/srv/shared", "shared_data", Path("/srv/shared")),
    "AUTOGRADER_WORK_DIR": ("/srv/work", "work_dir", Path("/srv/work")),
    "AUTOGRADER_CGROUP_ROOT": ("/srv/cg", "cgroup_root", Path("/srv/cg")),
    "AUTOGRADER_CGROUP_NAME": ("cg-name", "cgroup_name", "cg-name"),
    "AUTOGRADER_SANDBOX_PYTHON": ("/opt/py/bin/python", "python", Path("/opt/py/bin/python")),
    "AUTOGRADER_BWRAP": ("/opt/bwrap", "bwrap", "/opt/bwrap"),
    "AUTOGRADER_LIMITS": ("op_s=5, wall_s=300", "limit_overrides", {"op_s": 5.0, "wall_s": 300.0}),
    "AUTOGRADER_ASSIGNMENT_DIRS": (f"/a{os.pathsep}/b{os.pathsep}", "assignment_dirs", (Path("/a"), Path("/b"))),
    "AUTOGRADER_REQUIRE_SANDBOX": ("off", "require_sandbox", False),
}
SERVER_VARS: dict[str, tuple[str, str, Any]] = {
    "AUTOGRADER_DATABASE_URL": ("postgresql://u:p@db/x", "database_url", "postgresql://u:p@db/x"),
    "AUTOGRADER_BROKER_URL": ("redis://r:6379/0", "broker_url", "redis://r:6379/0"),
    "AUTOGRADER_SECRET_KEY": ("sk", "secret_key", "sk"),
    "AUTOGRADER_INTERNAL_SECRET": ("is", "internal_secret", "is"),
    "AUTOGRADER_INTERNAL_URL": ("http://web:8000/", "internal_url", "http://web:8000"),
    "AUTOGRADER_UPLOAD_DIR": ("/srv/up", "upload_dir", Path("/srv/up")),
    "AUTOGRADER_SECURE_COOKIES": ("no", "secure_cookies", False),
    "AUTOGRADER_MAX_CONTENT_LENGTH": ("1000", "max_content_length", 1000),
    "AUTOGRADER_MAX_ATTEMPTS": ("7", "max_attempts", 7),
    "AUTOGRADER_REUSE_VERDICTS": ("0", "reuse_verdicts", False),
    "AUTOGRADER_LEASE_SECONDS": ("1.5", "lease_seconds", 1.5),
    "AUTOGRADER_HEARTBEAT_SECONDS": ("2", "heartbeat_seconds", 2.0),
    "AUTOGRADER_REQUEUE_AFTER_SECONDS": ("60", "requeue_after_seconds", 60.0),
    "AUTOGRADER_SWEEP_INTERVAL_SECONDS": ("3", "sweep_interval_seconds", 3.0),
    "AUTOGRADER_VISIBILITY_TIMEOUT": ("100", "visibility_timeout", 100),
    "AUTOGRADER_LOGIN_MAX_FAILURES": ("9", "login_max_failures", 9),
    "AUTOGRADER_LOGIN_WINDOW_SECONDS": ("60", "login_window_seconds", 60),
    "AUTOGRADER_WORKER_CONCURRENCY": ("4", "worker_concurrency", 4),
    "AUTOGRADER_TASK_SOFT_TIME_LIMIT": ("999", "task_soft_time_limit", 999.0),
    "AUTOGRADER_TRUSTED_PROXIES": ("1", "trusted_proxies", 1),
    "AUTOGRADER_METRICS_TOKEN": ("scrape", "metrics_token", "scrape"),
    "AUTOGRADER_FLAG_MIN_UPLOADS": ("30", "flag_min_uploads", 30),
    "AUTOGRADER_WORKER_QUEUES": ("rerun", "worker_queues", "rerun"),
    "AUTOGRADER_BIND": ("0.0.0.0:9000", "bind", "0.0.0.0:9000"),
    "AUTOGRADER_WEB_WORKERS": ("5", "web_workers", 5),
}
DEFAULTS = {  # what the settings held before pydantic-settings (server: with an instance folder I)
    "grader": {"hidden_data": ROOT / "hidden_data", "shared_data": ROOT.parent / "shared" / "data",
               "work_dir": Path("/tmp/nn-autograder"), "cgroup_root": Path("/sys/fs/cgroup"),
               "cgroup_name": "nn-autograder", "python": Path(sys.executable), "bwrap": "bwrap",
               "limit_overrides": {}, "assignment_dirs": (), "require_sandbox": True},
    "server": {"internal_url": "http://127.0.0.1:5000", "secure_cookies": True, "max_content_length": 101 * 2**20,
               "max_attempts": 3, "lease_seconds": 90.0, "heartbeat_seconds": 10.0, "requeue_after_seconds": 3600.0,
               "sweep_interval_seconds": 15.0, "visibility_timeout": 7200, "login_max_failures": 5,
               "login_window_seconds": 900, "worker_concurrency": 1, "task_soft_time_limit": 1200.0,
               "trusted_proxies": 0, "metrics_token": "", "flag_min_uploads": 20, "bind": "127.0.0.1:8000",
               "web_workers": 2},
}


def documented_names() -> set[str]:
    """AUTOGRADER_* names the READMEs and the container files mention ("`_LEASE_SECONDS`" in a table row counts)."""
    names: set[str] = set()
    for doc in (ROOT / "README.md", ROOT / "server" / "README.md", *sorted((ROOT / "docker").glob("*"))):
        text = doc.read_text(encoding="utf-8")
        names |= set(re.findall(r"AUTOGRADER_[A-Z][A-Z_]*[A-Z]", text))
        for row in re.findall(r"^\|.*$", text, flags=re.M):
            names |= {f"AUTOGRADER{n}" for n in re.findall(r"`(_[A-Z][A-Z_]*[A-Z])`", row)}
    return names


def test_every_documented_variable_is_a_setting():
    known = set(GRADER_VARS) | set(SERVER_VARS) | {"AUTOGRADER_INSTANCE_DIR", "AUTOGRADER_TOKEN"}
    known |= {f"{n}_FILE" for n in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_SECRET_KEY",
                                    "AUTOGRADER_INTERNAL_SECRET", "AUTOGRADER_METRICS_TOKEN", "AUTOGRADER_TOKEN")}
    assert documented_names() <= known, documented_names() - known
    declared = set(GraderSettings.env_names()) | set(ServerSettings.env_names()) | set(ClientSettings.env_names())
    assert declared == known, declared ^ known


@pytest.mark.parametrize("var", sorted(GRADER_VARS))
def test_grader_variable_is_read(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, field, value = GRADER_VARS[var]
    monkeypatch.setenv(var, raw)
    assert getattr(GraderSettings(), field) == value
    assert getattr(GraderSettings.from_env({var: raw}), field) == value


@pytest.mark.parametrize("var", sorted(SERVER_VARS))
def test_server_variable_is_read(var: str, tmp_path: Path) -> None:
    raw, field, value = SERVER_VARS[var]
    s = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path), var: raw})
    assert getattr(s, field) == value


def test_defaults_are_unchanged(tmp_path: Path) -> None:
    g = GraderSettings.from_env({})
    assert {f: getattr(g, f) for f in DEFAULTS["grader"]} == DEFAULTS["grader"]
    s = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path / "i")})
    assert {f: getattr(s, f) for f in DEFAULTS["server"]} == DEFAULTS["server"]
    inst = (tmp_path / "i").resolve()
    assert s.instance_dir == inst and s.upload_dir == inst / "uploads"
    assert s.database_url == f"sqlite:///{inst / 'autograder.sqlite3'}"
    assert s.broker_url == f"sqla+sqlite:///{inst / 'broker.sqlite3'}"
    # the secrets are generated once into the instance folder and kept
    assert s.secret_key == (inst / "secret_key").read_text() and len(s.secret_key) >= 32
    assert s.internal_secret == (inst / "internal_secret").read_text() != s.secret_key
    again = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path / "i")})
    assert (again.secret_key, again.internal_secret) == (s.secret_key, s.internal_secret)
    assert (inst / "secret_key").stat().st_mode & 0o777 == 0o600
    assert ServerSettings.model_fields["task_soft_time_limit"].default == 1200.0
    assert ClientSettings.from_env({}).token == ""


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    g = GraderSettings.from_env({"AUTOGRADER_HIDDEN_DATA": "", "AUTOGRADER_BWRAP": ""})
    assert g.hidden_data == DEFAULTS["grader"]["hidden_data"] and g.bwrap == "bwrap"
    s = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path), "AUTOGRADER_METRICS_TOKEN": "",
                                 "AUTOGRADER_MAX_ATTEMPTS": ""})
    assert s.metrics_token == "" and s.max_attempts == 3


@pytest.mark.parametrize("var,raw,words", [
    ("AUTOGRADER_MAX_ATTEMPTS", "many", "valid integer"),
    ("AUTOGRADER_LEASE_SECONDS", "90s", "valid number"),
    ("AUTOGRADER_SECURE_COOKIES", "maybe", "1/true/yes/on or 0/false/no/off"),
    ("AUTOGRADER_TRUSTED_PROXIES", "1.5", "valid integer"),
])
def test_a_bad_server_value_is_an_error_naming_the_variable(var: str, raw: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path), var: raw})
    assert f"{var}={raw!r}" in str(info.value) and words in str(info.value), str(info.value)


@pytest.mark.parametrize("var,raw,words", [
    ("AUTOGRADER_REQUIRE_SANDBOX", "maybe", "1/true/yes/on or 0/false/no/off"),
    ("AUTOGRADER_LIMITS", "op_s=5,wall_s", "NAME=NUMBER pairs"),
    ("AUTOGRADER_LIMITS", "op_s=fast", "NAME=NUMBER pairs"),
])
def test_a_bad_grader_value_is_an_error_naming_the_variable(var: str, raw: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        GraderSettings.from_env({var: raw})
    assert f"{var}={raw!r}" in str(info.value) and words in str(info.value), str(info.value)


def test_a_bad_secret_is_named_but_not_shown(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        ServerSettings(instance_dir=tmp_path, secret_key=["not", "a", "string"])  # type: ignore[arg-type]
    assert "AUTOGRADER_SECRET_KEY:" in str(info.value) and "not" not in str(info.value).split(":", 2)[-1]
    s = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path), "AUTOGRADER_SECRET_KEY": "hush-123"})
    assert "hush-123" not in repr(s) and "hush-123" not in str(s)


SECRETS = [("server", "AUTOGRADER_SECRET_KEY", "secret_key"),
           ("server", "AUTOGRADER_INTERNAL_SECRET", "internal_secret"),
           ("server", "AUTOGRADER_DATABASE_URL", "database_url"),
           ("server", "AUTOGRADER_BROKER_URL", "broker_url"),
           ("server", "AUTOGRADER_METRICS_TOKEN", "metrics_token"),
           ("client", "AUTOGRADER_TOKEN", "token")]


def _load(kind: str, env: dict[str, str]) -> Any:
    return ServerSettings.from_env(env) if kind == "server" else ClientSettings.from_env(env)


@pytest.mark.parametrize("kind,var,field", SECRETS)
def test_a_secret_comes_from_its_file(kind: str, var: str, field: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n")  # Docker secrets and editors end files with a newline
    s = _load(kind, {"AUTOGRADER_INSTANCE_DIR": str(tmp_path / "i"), f"{var}_FILE": str(secret)})
    assert getattr(s, field) == "from-the-file"


@pytest.mark.parametrize("kind,var,field", SECRETS)
def test_a_missing_or_empty_secret_file_is_an_error(kind: str, var: str, field: str, tmp_path: Path) -> None:
    base = {"AUTOGRADER_INSTANCE_DIR": str(tmp_path / "i")}
    with pytest.raises(SettingsError, match=rf"{var}_FILE='{tmp_path}/nope': cannot read the secret file "
                                            r"\(No such file or directory\)"):
        _load(kind, {**base, f"{var}_FILE": str(tmp_path / "nope")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match=rf"{var}_FILE=.*: the secret file is empty"):
        _load(kind, {**base, f"{var}_FILE": str(tmp_path / "empty")})
    (tmp_path / "s").write_text("x")
    with pytest.raises(SettingsError, match=rf"{var} and {var}_FILE are both set"):
        _load(kind, {**base, var: "y", f"{var}_FILE": str(tmp_path / "s")})


def test_with_validates_and_does_not_read_the_environment_again(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    s = ServerSettings.from_env({"AUTOGRADER_INSTANCE_DIR": str(tmp_path)})
    monkeypatch.setenv("AUTOGRADER_MAX_ATTEMPTS", "9")
    monkeypatch.setenv("AUTOGRADER_SECRET_KEY_FILE", str(tmp_path / "missing"))
    changed = s.with_(lease_seconds=5)
    assert changed.lease_seconds == 5.0 and changed.max_attempts == 3 and changed.secret_key == s.secret_key
    with pytest.raises(SettingsError, match="AUTOGRADER_MAX_ATTEMPTS='x'"):
        s.with_(max_attempts="x")
    with pytest.raises(SettingsError, match="no_such_setting"):
        s.with_(no_such_setting=1)
    with pytest.raises(Exception, match="frozen"):
        s.max_attempts = 4  # type: ignore[misc]


def test_the_worker_check_does_not_generate_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOGRADER_INTERNAL_SECRET", raising=False)
    monkeypatch.setenv("AUTOGRADER_INSTANCE_DIR", str(tmp_path))
    assert ServerSettings.load(generate_secrets=False).internal_secret == ""
    assert not (tmp_path / "internal_secret").exists()
    generated = ServerSettings.load().internal_secret
    assert ServerSettings.load(generate_secrets=False).internal_secret == generated


READ_ONCE = """
import os, sys
from grader.settings import settings as g
from server.settings import settings as s, client_settings as c
assert "pydantic_settings" in sys.modules
first = (g(), s(), c())
os.environ.update(AUTOGRADER_BWRAP="/changed", AUTOGRADER_MAX_ATTEMPTS="9", AUTOGRADER_TOKEN="t2")
assert (g(), s(), c()) == first and all(a is b for a, b in zip((g(), s(), c()), first))
print(g().bwrap, s().max_attempts, c().token)
"""


def test_settings_are_read_once_and_not_at_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(AUTOGRADER_INSTANCE_DIR=str(tmp_path / "inst"), AUTOGRADER_BWRAP="/first", AUTOGRADER_TOKEN="t1",
               PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", READ_ONCE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["/first", "3", "t1"]
    # importing the modules (and building the CLI's parser) reads nothing and writes no secret
    code = ("import grader.settings as g, server.settings as s, server.cli; from grader.cli import build_parser; "
            "build_parser(); assert g.settings.cache_info().currsize == s.settings.cache_info().currsize == 0")
    env.update(AUTOGRADER_INSTANCE_DIR=str(tmp_path / "other"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "other").exists()


def test_the_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(AUTOGRADER_INSTANCE_DIR=str(tmp_path), AUTOGRADER_MAX_ATTEMPTS="lots", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "grader.cli", "db", "upgrade"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == ("autograder: invalid setting: AUTOGRADER_MAX_ATTEMPTS='lots': Input should be a "
                                  "valid integer, unable to parse string as an integer"), out.stderr
    env.update(AUTOGRADER_MAX_ATTEMPTS="3", AUTOGRADER_LIMITS="op_s")
    out = subprocess.run([sys.executable, "-m", "grader.cli", "data", "status"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("autograder: invalid setting: AUTOGRADER_LIMITS='op_s'")
