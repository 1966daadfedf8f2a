"""The container files name only things that exist: commands, scripts, paths, settings.

There is no Docker engine here, so the Dockerfiles and docker/compose.yaml are parsed and every command
(through the real `autograder` argument parser), script, path, route and AUTOGRADER_* variable they name is
checked against the project (variables: those ServerSettings / GraderSettings actually read).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.tooling import import_tool

yaml = import_tool("yaml")

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
APP = "/app"  # where the images put the project
OWN = ("web", "worker")
TOOL_ENV = {"DEBIAN_FRONTEND", "PIP_NO_CACHE_DIR", "PYTHONUNBUFFERED"}
"""Variables for apt, pip and Python themselves (not project settings)."""
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?])[^}]*)?\}")


class _Recording(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return default

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return False


def settings_variables(tmp_path: Path) -> set[str]:
    """AUTOGRADER_* names that ServerSettings.from_env and GraderSettings.from_env read."""
    from grader.settings import GraderSettings
    from server.settings import ServerSettings

    env = _Recording()
    GraderSettings.from_env(env)
    names = set(env.read)
    # Server settings: with a temporary instance folder, so no secret is generated in the project.
    env = _Recording()
    env_get = env.get

    def get(key: str, default: Any = None) -> Any:
        value = env_get(key, default)
        return str(tmp_path) if key == "AUTOGRADER_INSTANCE_DIR" else value

    env.get = get  # type: ignore[method-assign]
    ServerSettings.from_env(env)
    return names | env.read


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    assert not current, f"{path.name}: dangling line continuation"
    return out


def env_pairs(args: str) -> Iterator[tuple[str, str]]:
    for item in shlex.split(args):
        key, sep, value = item.partition("=")
        assert sep, f"ENV {item!r}: use KEY=value"
        yield key, value


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {args}"
    return value


def in_project(container_path: str) -> Path:
    assert container_path.startswith(APP + "/"), f"{container_path} is not under {APP}"
    return ROOT / container_path.removeprefix(APP + "/")


def parse_cli(argv: list[str]) -> Any:
    from grader.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture
def known_vars(tmp_path: Path) -> set[str]:
    names = settings_variables(tmp_path)
    assert {"AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_HIDDEN_DATA",
            "AUTOGRADER_REQUIRE_SANDBOX"} <= names
    return names


@pytest.mark.parametrize("name,command", [("web", "web"), ("worker", "worker")])
def test_dockerfile_builds_with_setup_sh_and_runs_the_autograder_entry_point(name: str, command: str,
                                                                             known_vars: set[str]) -> None:
    steps = dockerfile(DOCKER / f"Dockerfile.{name}")
    kinds = [k for k, _ in steps]
    assert kinds[0] == "FROM" and "debian" in steps[0][1]
    assert ("WORKDIR", APP) in steps and ("COPY", f". {APP}") in steps
    runs = [a for k, a in steps if k == "RUN"]
    assert any(a.startswith("scripts/setup.sh") for a in runs), "the image is not set up by scripts/setup.sh"
    setup = ROOT / "scripts" / "setup.sh"
    assert setup.is_file() and setup.stat().st_mode & 0o111, "scripts/setup.sh must exist and be executable"
    for a in runs:
        for option in re.findall(r"scripts/setup\.sh((?:\s+--[a-z-]+)*)", a)[0].split():
            assert f"{option})" in setup.read_text(), f"scripts/setup.sh has no option {option}"
    created = {p for a in runs for p in re.findall(r"(/var/lib/autograder[\w/]*|/srv/[\w/]+)", a)}

    entry = exec_form(dict(steps)["ENTRYPOINT"])
    assert entry == [f"{APP}/.venv/bin/autograder"]
    assert 'autograder = "grader.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert ".venv" in setup.read_text() and (ROOT / ".venv" / "bin" / "autograder").exists()
    cmd = exec_form(dict(steps)["CMD"])
    assert cmd[0] == command
    assert parse_cli(cmd).func.__name__ == f"cmd_{command}"

    env = dict(p for k, a in steps if k == "ENV" for p in env_pairs(a))
    for key, value in env.items():
        assert key in known_vars or key in TOOL_ENV, f"{name}: {key} is read by no settings object"
        if key.startswith("AUTOGRADER_") and value.startswith("/"):
            assert any(value == c or value.startswith(c + "/") or c.startswith(value) for c in created), \
                f"{name}: {key}={value} is not created in the image"
    for k, a in steps:
        if k == "VOLUME":
            assert all(v in env.values() for v in exec_form(a))
    if name == "web":
        user = dict(steps).get("USER", "root")
        assert user not in ("root", "0"), "the web app must not run as root"
        assert "useradd" in " ".join(runs) and user in " ".join(runs)
        assert "AUTOGRADER_HIDDEN_DATA" not in env
    else:
        assert env["AUTOGRADER_REQUIRE_SANDBOX"] == "true"
        assert env["AUTOGRADER_HIDDEN_DATA"] == "/srv/hidden_data"
        assert "AUTOGRADER_DATABASE_URL" not in env


def test_dockerignore_keeps_hidden_data_and_local_state_out_of_images() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"hidden_data", ".venv", "instance", ".git", "docker/.env"} <= ignored


def test_compose_services_commands_and_builds(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "web", "proxy", "worker"}
    for name in OWN:
        svc = services[name]
        context = (DOCKER / svc["build"]["context"]).resolve()
        assert context == ROOT
        assert (context / svc["build"]["dockerfile"]).is_file()
        assert svc["build"]["dockerfile"] == f"docker/Dockerfile.{name}"
        assert parse_cli(svc["command"]).func.__name__ == f"cmd_{name}"
    assert services["worker"]["deploy"]["replicas"] >= 1  # scalable: docker compose up --scale worker=N
    assert "container_name" not in services["worker"]


def test_compose_environment_names_only_real_settings(compose: dict[str, Any], known_vars: set[str]) -> None:
    services = compose["services"]
    for name in OWN:
        env: Mapping[str, Any] = services[name]["environment"]
        unknown = set(env) - known_vars
        assert not unknown, f"{name}: {sorted(unknown)} are read by no settings object"
    web, worker = services["web"]["environment"], services["worker"]["environment"]
    assert "AUTOGRADER_DATABASE_URL" not in worker and "AUTOGRADER_UPLOAD_DIR" not in worker
    assert "AUTOGRADER_SECRET_KEY" not in worker
    assert web["AUTOGRADER_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:" in web["AUTOGRADER_DATABASE_URL"]
    assert web["AUTOGRADER_BROKER_URL"] == worker["AUTOGRADER_BROKER_URL"] == "redis://redis:6379/0"
    # The worker reaches the web app where gunicorn listens.
    bind = services["web"]["command"][services["web"]["command"].index("--bind") + 1]
    assert worker["AUTOGRADER_INTERNAL_URL"] == f"http://web:{bind.rsplit(':', 1)[1]}"
    assert worker["AUTOGRADER_INTERNAL_SECRET"] == web["AUTOGRADER_INTERNAL_SECRET"]
    assert str(worker["AUTOGRADER_REQUIRE_SANDBOX"]).lower() == "true"
    # Every ${VAR} the file interpolates is a real setting or the database password, and env.example has it.
    text = (DOCKER / "compose.yaml").read_text()
    example = {line.split("=", 1)[0] for line in (DOCKER / "env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    for var in set(INTERPOLATION.findall(text)):
        assert var in known_vars or var == "POSTGRES_PASSWORD", var
        assert var in example, f"{var} is missing from docker/env.example"
    assert "docker/.env" in (ROOT / ".gitignore").read_text()


def test_compose_volumes_uploads_in_web_hidden_data_only_in_the_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    mounts = {name: [str(v).split(":") for v in svc.get("volumes", [])] for name, svc in services.items()}
    for name, vols in mounts.items():
        for v in vols:
            if not v[0].startswith((".", "/")):
                assert v[0] in declared, f"{name}: undeclared volume {v[0]}"
    assert ["db-data", "/var/lib/postgresql/data"] in mounts["postgres"]
    web_upload = services["web"]["environment"]["AUTOGRADER_UPLOAD_DIR"]
    assert ["uploads", web_upload] in mounts["web"]
    assert web_upload in dict(p for k, a in dockerfile(DOCKER / "Dockerfile.web") if k == "ENV"
                              for p in env_pairs(a)).values()
    hidden = [v for name, vols in mounts.items() for v in vols if v[0].endswith("hidden_data")]
    assert hidden == [["../hidden_data", "/srv/hidden_data", "ro"]], "hidden data: read-only, worker only"
    assert ["../hidden_data", "/srv/hidden_data", "ro"] in mounts["worker"]
    assert (DOCKER / "../hidden_data").resolve() == ROOT / "hidden_data" and (ROOT / "hidden_data" / "README.md").is_file()
    assert services["worker"]["environment"]["AUTOGRADER_HIDDEN_DATA"] == "/srv/hidden_data"
    assert not any(v[0] == "uploads" for v in mounts["worker"]), "workers have no shared disk"


def test_compose_web_is_reached_only_through_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["web"], "browsers must go through the buffering proxy (slow clients)"
    proxy = services["proxy"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"] and (DOCKER / "nginx.conf").is_file()
    listen = re.search(r"^\s*listen (\d+);", (DOCKER / "nginx.conf").read_text(), re.M)
    assert listen and any(str(p).endswith(":" + listen.group(1)) for p in proxy["ports"])
    bind = services["web"]["command"][services["web"]["command"].index("--bind") + 1]
    assert f"server web:{bind.rsplit(':', 1)[1]};" in (DOCKER / "nginx.conf").read_text()
    assert services["web"]["environment"]["AUTOGRADER_TRUSTED_PROXIES"].endswith(":-1}")


def test_compose_worker_gets_what_the_sandbox_needs(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["privileged"] is True and worker["cgroup"] == "private"
    assert "AUTOGRADER_REQUIRE_SANDBOX" in (DOCKER / "Dockerfile.worker").read_text()
    assert (ROOT / "server" / "worker_preflight.py").is_file()


def test_compose_health_check_calls_a_real_route(compose: dict[str, Any], tmp_path: Path) -> None:
    from server import create_app
    from server.settings import ServerSettings

    test = compose["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert in_project(test[1]).relative_to(ROOT) == Path(".venv/bin/python") and (ROOT / ".venv/bin/python").exists()
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test[-1])
    assert url is not None
    bind = compose["services"]["web"]["command"][compose["services"]["web"]["command"].index("--bind") + 1]
    assert bind.endswith(":" + url.group(1))
    s = ServerSettings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}", secret_key="k",
                       internal_secret="i", internal_url="http://127.0.0.1:9", upload_dir=tmp_path / "uploads")
    rules = {r.rule for r in create_app(settings=s).url_map.iter_rules()}
    assert url.group(2) in rules
    for name in ("redis", "postgres"):
        assert compose["services"][name]["healthcheck"]["test"][0] == "CMD"
    assert compose["services"]["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
