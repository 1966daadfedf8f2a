"""Per-run cgroups: limits written where the kernel reads them, and gradings yield the CPU to the web app."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from grader.sandbox.cgroups import GRADING_CPU_WEIGHT, CgroupLimits, detect_cgroups
from tests.tooling import missing_tool


@pytest.mark.sandbox
def test_v1_parent_group_has_low_cpu_shares_and_runs_get_their_quota(fast_settings):
    """On this host's real cgroup v1 hierarchy."""
    root = fast_settings.cgroup_root
    if (root / "cgroup.controllers").exists():
        pytest.skip("this host has the cgroup v2 hierarchy: the v1 test does not apply")
    if not (root / "cpu" / "cgroup.procs").exists():
        missing_tool(f"no cgroup v1 cpu controller under {root}")
    name = f"nn-autograder-weight-{os.getpid()}"
    backend = detect_cgroups(root, name)
    try:
        assert backend.version == 1
        assert int((root / "cpu" / name / "cpu.shares").read_text()) == int(1024 * GRADING_CPU_WEIGHT) == 256
        run = backend.create(CgroupLimits(memory_bytes=256 * 2**20, pids=32, cpus=1.0))
        try:
            assert int((run.dirs["cpu"] / "cpu.cfs_quota_us").read_text()) == 100000
            assert int((run.dirs["pids"] / "pids.max").read_text()) == 32
            mem = run.dirs["memory"]
            assert int((mem / "memory.limit_in_bytes").read_text()) == 256 * 2**20
        finally:
            run.remove()
    finally:
        for c in ("memory", "pids", "cpu"):
            with contextlib.suppress(OSError):
                (root / c / name).rmdir()


def test_v2_layout_on_a_fake_hierarchy(tmp_path: Path):
    """This host has no cgroup v2 controllers, so the v2 path is checked against plain files laid out like
    /sys/fs/cgroup (a stand-in: the kernel's own checks on these writes are not exercised)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    backend = detect_cgroups(root, "nn-autograder")
    parent = root / "nn-autograder"
    assert backend.version == 2
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cpu.weight").read_text() == "25"
    run = backend.create(CgroupLimits(memory_bytes=512 * 2**20, pids=64, cpus=1.5))
    d = run.dirs["memory"]
    assert run.dirs["cpu"] == run.dirs["pids"] == d
    assert d.parent == parent and d.name.startswith("run-")
    assert (d / "memory.max").read_text() == str(512 * 2**20)
    assert (d / "pids.max").read_text() == "64"
    assert (d / "cpu.max").read_text() == "150000 100000"


def test_v2_without_the_cpu_controller_says_so(tmp_path: Path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("memory pids\n")
    from grader.sandbox.errors import SandboxUnavailable

    with pytest.raises(SandboxUnavailable, match="CPU quota"):
        detect_cgroups(root, "nn-autograder")
