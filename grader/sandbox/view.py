"""What a grading may see of the host, and the synthetic files that mask the rest.

The sandbox has its own PID, network, IPC, UTS and cgroup namespaces and a fresh procfs, so its
processes, network and cgroup are its own. procfs still shows host-wide facts; this is the decision:

* Files: read-only system libraries (/usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/lib/locale), the
  interpreter (its venv whole; of the base installation only the standard library, the shared
  libpython and the executable, so a venv of Debian's /usr/bin/python3 does not bring /usr/share,
  /usr/bin or /usr/local along), the harness, the job's submission and inputs, private tmpfs for
  /tmp, /dev/shm and /job/work, a minimal /dev; no /etc, no /sys, no /home, and nothing else of the
  project (its sources, the reference solutions, the hidden data).
* May see (a grading needs it, or it cannot be hidden and grants nothing):
  - its own processes in /proc/<pid> (glibc, subprocess and torch read /proc/self/{maps,fd,status});
  - the kernel version (/proc/version; uname(2) tells the same) and the CPU model and flags
    (/proc/cpuinfo; the cpuid instruction tells the same, and numpy, torch and OpenBLAS use it);
  - the host paths of what is bound into it: the Python installation (the venv and its base
    interpreter), the harness folder and the run's job folders. /proc/self/mountinfo names the source
    of every bind mount (the kernel shows the source folder's path in its filesystem, whatever the
    mount point), and each of the installation's compiled modules (.pyc) carries its source path,
    so mounting them at a neutral path would hide nothing. Nothing under those paths is reachable
    beyond what is bound. Files in site-packages that point *outside* the installation are hidden
    (below), so the sandbox's interpreter has no way to the project's own packages.
  - /proc/sys, bound read-only (glibc and malloc read a few values; three are masked, below). Read-only
    matters: when the grader runs as root, the sandbox's uid is the host's root, and the kernel lets
    that uid write sysctls without any capability (kernel.core_pattern would run a program of the
    student's choosing as host root at the next crash; vm.drop_caches, kernel.panic_on_oops, ...).
* Masked with per-run files (bound read-only over the originals; the sandbox cannot tell load,
  memory or activity of the host or of other gradings):
  - /proc/meminfo: MemTotal, MemFree and MemAvailable are the run's memory limit, like LXCFS;
  - /proc/cpuinfo and /proc/stat: the run's CPUs only (glibc's os.cpu_count() counts /proc/stat's
    cpuN lines when /sys is absent), zero counters; OMP/MKL/OpenBLAS threads are the same count;
  - /proc/loadavg and /proc/pressure/*: no load; /proc/uptime: zero, btime the run's start;
  - /proc/sys/kernel/random/boot_id (identifies the host's boot): a fresh id per run;
    /proc/sys/kernel/threads-max: the run's process limit; /proc/sys/fs/file-nr: no open files;
  - empty: interrupt and disk counters, partitions, swaps, memory-zone, slab, timer, scheduler, lock
    and key tables, kernel symbols and modules, the kernel command line, cgroup counts, I/O maps.
* Residual (system calls, not files; hiding them needs syscall interception): sysinfo(2) and so
  os.sysconf("SC_PHYS_PAGES") report the host's RAM, uptime and process count; sched_getaffinity
  lists the host's CPUs (the run's CPU share is a quota, not a pinning, so that concurrent gradings
  are spread by the scheduler).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from functools import cache
from pathlib import Path

EMPTY_PROC = (
    "/proc/diskstats", "/proc/vmstat", "/proc/zoneinfo", "/proc/buddyinfo", "/proc/pagetypeinfo",
    "/proc/slabinfo", "/proc/timer_list", "/proc/schedstat", "/proc/sched_debug", "/proc/key-users",
    "/proc/keys", "/proc/kallsyms", "/proc/modules", "/proc/cmdline", "/proc/cgroups", "/proc/vmallocinfo",
    "/proc/iomem", "/proc/ioports", "/proc/mtrr", "/proc/locks", "/proc/latency_stats", "/proc/lock_stat",
)
"""Host-wide tables a grading never needs; shown empty."""

PRESSURE = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def visible_cpus(cpus: float) -> int:
    """CPUs the sandbox is shown (and its thread pools use): the quota, whole, at least 1, at most the host's."""
    return max(1, min(int(cpus), len(os.sched_getaffinity(0))))


def proc_files(*, memory_bytes: int, cpus: int, pids: int) -> dict[str, bytes]:
    """Per-run contents for masked /proc files (sandbox path -> bytes), for files the host's kernel has."""
    files = {
        "/proc/meminfo": _meminfo(memory_bytes),
        "/proc/cpuinfo": _cpuinfo(cpus),
        "/proc/stat": _stat(cpus),
        "/proc/loadavg": "0.00 0.00 0.00 1/1 1\n",
        "/proc/uptime": "0.00 0.00\n",
        "/proc/swaps": "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        "/proc/partitions": "major minor  #blocks  name\n\n",
        "/proc/interrupts": _cpu_header(cpus),
        "/proc/softirqs": _cpu_header(cpus),
        "/proc/pressure/cpu": PRESSURE, "/proc/pressure/memory": PRESSURE, "/proc/pressure/io": PRESSURE,
        "/proc/sys/kernel/random/boot_id": f"{uuid.uuid4()}\n",
        "/proc/sys/kernel/threads-max": f"{pids}\n",
        "/proc/sys/fs/file-nr": "0\t0\t0\n",
        **dict.fromkeys(EMPTY_PROC, ""),
    }
    return {path: text.encode() for path, text in files.items() if os.path.exists(path)}


def _meminfo(memory_bytes: int) -> str:
    kb = memory_bytes // 1024
    rows = {"MemTotal": kb, "MemFree": kb, "MemAvailable": kb, "Buffers": 0, "Cached": 0, "SwapCached": 0,
            "Active": 0, "Inactive": 0, "Active(anon)": 0, "Inactive(anon)": 0, "Active(file)": 0,
            "Inactive(file)": 0, "Unevictable": 0, "Mlocked": 0, "SwapTotal": 0, "SwapFree": 0, "Dirty": 0,
            "Writeback": 0, "AnonPages": 0, "Mapped": 0, "Shmem": 0, "KReclaimable": 0, "Slab": 0,
            "SReclaimable": 0, "SUnreclaim": 0, "KernelStack": 0, "PageTables": 0, "CommitLimit": kb,
            "Committed_AS": 0, "VmallocTotal": 0, "VmallocUsed": 0, "VmallocChunk": 0}
    text = "".join(f"{k + ':':<16}{v:>8} kB\n" for k, v in rows.items())
    return text + "HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n" \
                  "HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n"


@cache
def _host_cpu_block() -> tuple[tuple[str, str], ...]:
    """The host's first processor entry of /proc/cpuinfo as (key, value) pairs (model and flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    block = text.split("\n\n")[0]
    return tuple((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines()))


def _cpuinfo(cpus: int) -> str:
    per_cpu = {"processor", "core id", "apicid", "initial apicid"}
    out = []
    for i in range(cpus):
        lines = []
        for key, value in _host_cpu_block() or (("processor", "0"),):
            if key in per_cpu:
                value = str(i)
            elif key in ("siblings", "cpu cores"):
                value = str(cpus)
            elif key == "physical id":
                value = "0"
            lines.append(f"{key}\t: {value}" if value else f"{key}\t:")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out) + "\n"


def _stat(cpus: int) -> str:
    zeros = " ".join(["0"] * 10)
    cpu_lines = "".join(f"cpu{i} {zeros}\n" for i in range(cpus))
    return (f"cpu  {zeros}\n{cpu_lines}intr 0\nctxt 0\nbtime {int(time.time())}\nprocesses 1\n"
            f"procs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")


def _cpu_header(cpus: int) -> str:
    return "    " + "".join(f"{'CPU' + str(i):>11}" for i in range(cpus)) + "\n"


def site_files_to_hide(site_dirs: Iterable[Path]) -> list[Path]:
    """Files in site-packages that point outside the installation: an editable install's finder and
    .pth (they map the project's packages to its source folders), .egg-link files, path entries in
    .pth files, and PEP 610 direct_url.json records (the folder or URL a package was installed from)."""
    hidden: list[Path] = []
    for site in site_dirs:
        for entry in sorted(site.iterdir()):
            name = entry.name
            if not entry.is_file():
                if name.endswith(".dist-info") and (entry / "direct_url.json").is_file():
                    hidden.append(entry / "direct_url.json")
                continue
            editable = name.startswith("__editable__") or name.endswith(".egg-link")
            if editable or (name.endswith(".pth") and _names_paths(entry)):
                hidden.append(entry)
    return hidden


def data_fd(data: bytes) -> int:
    """A readable fd (memfd) holding `data` from its start, for `bwrap --ro-bind-data`; the caller closes it."""
    fd = os.memfd_create("nnag-view", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _names_paths(pth: Path) -> bool:
    try:
        lines = pth.read_text(errors="replace").splitlines()
    except OSError:
        return True
    return any(line.strip().startswith(("/", "file:")) or "__editable__" in line for line in lines)
