"""Shared fixtures: real sandboxed gradings of zips built from the reference solution."""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from grader.api import grade_submission
from grader.result import GradeResult
from grader.sandbox.bwrap import SANDBOX_MARKER
from grader.settings import GraderSettings, settings

# Short budgets so that hangs are found in seconds (tests of import hangs set their own import_s; importing
# torch on a busy 2-core machine takes tens of seconds); the mechanisms are the production ones.
FAST_LIMITS = {"op_s": 4.0, "import_s": 60.0, "build_s": 30.0, "wall_s": 300.0}

GradeFn = Callable[..., GradeResult]


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grader-work")


@pytest.fixture(scope="session")
def fast_settings(work_dir: Path) -> Iterator[GraderSettings]:
    cfg = settings().with_(work_dir=work_dir, limit_overrides=dict(FAST_LIMITS),
                           cgroup_name=f"nn-autograder-test-{os.getpid()}")
    yield cfg
    for controller in ("memory", "pids", "cpu"):  # the session's (empty) parent cgroups
        with contextlib.suppress(OSError):
            (cfg.cgroup_root / controller / cfg.cgroup_name).rmdir()


def make_zip(path: Path, files: Mapping[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data.encode() if isinstance(data, str) else data)
    return path


def reference_file(name: str) -> bytes:
    return (Path(__file__).resolve().parent.parent / "grader" / "assignments" / "rpz_cnn" / "reference" / name).read_bytes()


@pytest.fixture
def grade(tmp_path: Path, fast_settings: GraderSettings) -> GradeFn:
    """grade(files, **limit_overrides) -> GradeResult, through the real engine and sandbox."""

    def run(files: Mapping[str, bytes | str], *, assignment: str = "rpz-cnn", **limits: float) -> GradeResult:
        cfg = fast_settings.with_(limit_overrides={**fast_settings.limit_overrides, **limits})
        z = make_zip(tmp_path / f"sub-{len(list(tmp_path.glob('sub-*.zip')))}.zip", files)
        return grade_submission(zip_path=z, assignment=assignment, settings=cfg)

    return run


def sandbox_processes(cfg: GraderSettings) -> list[int]:
    """Host pids of processes that started inside one of this grader's sandboxes (marker in their environment)."""
    found = []
    marker = f"{SANDBOX_MARKER}={cfg.cgroup_name}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                env = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in env.split(b"\0"):
                found.append(int(entry))
    return found


def leftover_cgroups(cfg: GraderSettings) -> list[Path]:
    return [p for c in ("memory", "pids", "cpu") for p in (cfg.cgroup_root / c / cfg.cgroup_name).glob("run-*")]


@pytest.fixture
def host_unharmed(fast_settings: GraderSettings, work_dir: Path):
    """After the test: no sandboxed process alive, no run cgroup left, no job folder left."""
    yield
    assert sandbox_processes(fast_settings) == [], "a sandboxed process survived the grading"
    assert leftover_cgroups(fast_settings) == [], "a run cgroup was not removed"
    assert list(work_dir.glob("job-*")) == [], "a job folder was not removed"


def check(result: GradeResult, check_id: str):
    return next(c for c in result.checks if c.id == check_id)
