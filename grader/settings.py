"""Grader settings, read once from the environment (prefix ``AUTOGRADER_``) into one typed object."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env_flag(raw: str | None, *, default: bool) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (any case); unset or anything else is `default`."""
    value = (raw or "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    return default


@dataclass(frozen=True, slots=True)
class GraderSettings:
    hidden_data: Path
    """Instructor-only data (labels!). Never bound into the sandbox."""
    shared_data: Path
    """Where `autograder data prepare` finds the raw sources (../shared/data)."""
    work_dir: Path
    """Scratch space for unpacked submissions and sandbox job folders (host side)."""
    cgroup_root: Path
    """Root of the cgroup hierarchies (v1: <root>/{memory,pids,cpu}; v2: <root>/unified or <root>)."""
    cgroup_name: str
    """Name of the parent cgroup this grader creates per-run groups under."""
    python: Path
    """Interpreter the sandbox runs (a venv's python with numpy and torch)."""
    bwrap: str
    limit_overrides: dict[str, float] = field(default_factory=dict)
    """Override any assignment limit for every grading (e.g. AUTOGRADER_LIMITS="op_s=5,wall_s=300")."""
    assignment_dirs: tuple[Path, ...] = ()
    """Further folders of assignments besides the built-in ones (AUTOGRADER_ASSIGNMENT_DIRS, separated by
    os.pathsep): each subfolder holding an assignment.toml is an assignment."""
    require_sandbox: bool = True
    """`autograder worker` and `autograder serve` refuse to start unless bubblewrap runs and the cgroup
    limits can be set (AUTOGRADER_REQUIRE_SANDBOX, on by default; `false` only to let a broken host start
    and fail each grading instead, as a test of the retry path does)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GraderSettings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(f"AUTOGRADER_{name}", default)

        return cls(
            hidden_data=Path(get("HIDDEN_DATA", str(PROJECT_ROOT / "hidden_data"))),
            shared_data=Path(get("SHARED_DATA", str(PROJECT_ROOT.parent / "shared" / "data"))),
            work_dir=Path(get("WORK_DIR", "/tmp/nn-autograder")),
            cgroup_root=Path(get("CGROUP_ROOT", "/sys/fs/cgroup")),
            cgroup_name=get("CGROUP_NAME", "nn-autograder"),
            python=Path(get("SANDBOX_PYTHON", sys.executable)),
            bwrap=get("BWRAP", "bwrap"),
            limit_overrides=_parse_limits(get("LIMITS", "")),
            assignment_dirs=tuple(Path(p) for p in get("ASSIGNMENT_DIRS", "").split(os.pathsep) if p.strip()),
            require_sandbox=env_flag(env.get("AUTOGRADER_REQUIRE_SANDBOX"), default=True),
        )

    def with_(self, **changes: object) -> GraderSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


@cache
def settings() -> GraderSettings:
    """The process-wide settings, read from the environment on first use."""
    return GraderSettings.from_env()


def _parse_limits(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        out[key.strip()] = float(value)
    return out
