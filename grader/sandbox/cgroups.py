"""Per-run cgroups that enforce memory, process and CPU limits (v1 and v2 hierarchies).

`detect_cgroups` finds what the host offers and raises `SandboxUnavailable` naming each limit it cannot
enforce; the grader refuses to run student code without them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.errors import SandboxUnavailable

CONTROLLERS = ("memory", "pids", "cpu")
_WHAT = {"memory": "the memory limit", "pids": "the process limit", "cpu": "the CPU quota"}


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    memory_bytes: int
    pids: int
    cpus: float


@dataclass(frozen=True, slots=True)
class Usage:
    oom_killed: bool
    pids_limit_hit: bool
    peak_memory_bytes: int


class RunCgroup:
    """The cgroup(s) of one sandbox run: join, inspect, kill everything, remove."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @property
    def procs_files(self) -> list[Path]:
        return sorted({d / "cgroup.procs" for d in self.dirs.values()})

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            with contextlib.suppress(FileNotFoundError):
                found.update(int(x) for x in f.read_text().split())
        return found

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the group and wait until it is empty."""
        deadline = time.monotonic() + timeout
        if self.version == 2:
            kill_file = self.dirs["memory"] / "cgroup.kill"
            if kill_file.exists():
                kill_file.write_text("1")
        while True:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {sorted(pids)} survived SIGKILL in {self.dirs}")
            time.sleep(0.01)

    def usage(self) -> Usage:
        mem, pids = self.dirs["memory"], self.dirs["pids"]
        if self.version == 1:
            oom = _read_kv(mem / "memory.oom_control").get("oom_kill", 0) > 0
            peak = _read_int(mem / "memory.max_usage_in_bytes")
            pids_hit = _read_kv(pids / "pids.events").get("max", 0) > 0
        else:
            oom = _read_kv(mem / "memory.events").get("oom_kill", 0) > 0
            peak = _read_int(mem / "memory.peak")
            pids_hit = _read_kv(pids / "pids.events").get("max", 0) > 0
        return Usage(oom_killed=oom, pids_limit_hit=pids_hit, peak_memory_bytes=peak)

    def remove(self) -> None:
        self.kill_all()
        for d in sorted(set(self.dirs.values()), reverse=True):
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the kernel finishes tearing down
                    time.sleep(0.01)


class CgroupBackend:
    """Creates per-run groups under a parent group of this grader's."""

    def __init__(self, parents: dict[str, Path], version: int) -> None:
        self.parents = parents
        self.version = version

    @property
    def name(self) -> str:
        return next(iter(self.parents.values())).name

    def create(self, limits: CgroupLimits) -> RunCgroup:
        name = f"run-{uuid.uuid4().hex[:12]}"
        dirs = {c: p / name for c, p in self.parents.items()}
        for d in set(dirs.values()):
            d.mkdir()
        try:
            if self.version == 1:
                mem = dirs["memory"]
                (mem / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    (mem / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
                if (mem / "memory.swappiness").exists():
                    with contextlib.suppress(OSError):
                        (mem / "memory.swappiness").write_text("0")
                (dirs["pids"] / "pids.max").write_text(str(limits.pids))
                (dirs["cpu"] / "cpu.cfs_period_us").write_text("100000")
                (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * 100000)))
            else:
                d = dirs["memory"]
                (d / "memory.max").write_text(str(limits.memory_bytes))
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(limits.pids))
                (d / "cpu.max").write_text(f"{int(limits.cpus * 100000)} 100000")
        except BaseException:
            RunCgroup(dirs, self.version).remove()
            raise
        return RunCgroup(dirs, self.version)


GRADING_CPU_WEIGHT = 0.25
"""All gradings together weigh a quarter of one ordinary process when the CPU is contended (v1 cpu.shares
256 of 1024, v2 cpu.weight 25 of 100), so the web app and the worker's own bookkeeping on the same host
stay responsive during a burst; idle CPU still goes to the gradings, within each run's quota."""


def _lower_cpu_weight(cpu_parent: Path, version: int) -> None:
    with contextlib.suppress(OSError):  # a missing or read-only knob costs responsiveness, not safety
        if version == 1:
            (cpu_parent / "cpu.shares").write_text(str(int(1024 * GRADING_CPU_WEIGHT)))
        else:
            (cpu_parent / "cpu.weight").write_text(str(int(100 * GRADING_CPU_WEIGHT)))


def detect_cgroups(root: Path, name: str) -> CgroupBackend:
    """Find writable memory, pids and cpu controllers (v1 first, then v2) or say which are missing."""
    v1 = {c: root / c for c in CONTROLLERS}
    if all((p / "cgroup.procs").exists() for p in v1.values()):
        parents = {c: p / name for c, p in v1.items()}
        missing = []
        for c, p in parents.items():
            try:
                p.mkdir(exist_ok=True)
                probe = p / f"probe-{os.getpid()}"
                probe.mkdir(exist_ok=True)
                probe.rmdir()
            except OSError as exc:
                missing.append(f"{_WHAT[c]} (cannot create a cgroup under {p.parent}: {exc.strerror})")
        if not missing:
            _lower_cpu_weight(parents["cpu"], 1)
            return CgroupBackend(parents, 1)
        raise SandboxUnavailable("cannot enforce " + "; ".join(missing))
    for base in (root / "unified", root):
        controllers_file = base / "cgroup.controllers"
        if not controllers_file.exists():
            continue
        available = set(controllers_file.read_text().split())
        if not available:
            continue
        missing = [_WHAT[c] for c in CONTROLLERS if c not in available]
        if missing:
            raise SandboxUnavailable(
                f"cannot enforce {', '.join(missing)}: the cgroup v2 hierarchy at {base} does not offer "
                f"the {', '.join(c for c in CONTROLLERS if c not in available)} controller(s); "
                "delegate them to this process (e.g. run the worker container with a private cgroup namespace "
                "and cgroup delegation)")
        parent = base / name
        try:
            parent.mkdir(exist_ok=True)
            (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
        except OSError as exc:
            raise SandboxUnavailable(f"cannot enforce the memory, process and CPU limits: cgroup v2 at {base} "
                                     f"is not writable ({exc.strerror})") from None
        _lower_cpu_weight(parent, 2)
        return CgroupBackend({c: parent for c in CONTROLLERS}, 2)
    raise SandboxUnavailable(
        f"cannot enforce the memory limit, the process limit or the CPU quota: no cgroup hierarchy with the "
        f"memory, pids and cpu controllers under {root}")


def _read_int(p: Path) -> int:
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_kv(p: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in p.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out
