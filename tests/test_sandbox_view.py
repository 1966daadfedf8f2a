"""What student code sees of the host from inside the real sandbox (grader/sandbox/view.py has the decision):
host-wide /proc files masked with the run's own figures, /proc/sys read-only, no way to the project's packages,
and the reference submission still graded full marks under the masks."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.api import grade_submission
from grader.assignments.build import build_submission_zip
from grader.result import CheckStatus, Status
from grader.sandbox.bwrap import Job
from grader.sandbox.process import RunLimits, SandboxProcess, host_backend
from grader.settings import GraderSettings
from tests.tooling import missing_tool

pytestmark = [pytest.mark.sandbox]

PROJECT = Path(__file__).resolve().parent.parent
MEMORY = 3 * 2**30
CPUS = 1.0
PIDS = 64
# Files of a process that name the host folders bound into the sandbox (the Python installation, the harness,
# the job folders): the mount tables name every bind mount's source, the maps and cmdline the interpreter's path.
NAMES_INSTALL_PATHS = {"mountinfo", "mounts", "mountstats", "maps", "smaps", "numa_maps", "cmdline"}

PROBE = r'''
import errno, json, os, re, sys
out = {}
def read(path, limit=1 << 18):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, limit).decode(errors="replace")
    finally:
        os.close(fd)
for name in ("meminfo", "loadavg", "stat", "cpuinfo", "uptime", "interrupts", "swaps", "partitions", "diskstats",
             "kallsyms", "cmdline", "pressure/cpu", "sys/kernel/random/boot_id", "sys/kernel/threads-max"):
    try:
        out[name] = read("/proc/" + name)
    except OSError as exc:
        out[name] = "<%s>" % exc.strerror
out["cpu_count"] = os.cpu_count()
# Every file of /proc that could be opened for writing (nothing is written).
writable = []
for root, dirs, files in os.walk("/proc"):
    if re.fullmatch(r"/proc/(\d+|self|thread-self)(/.*)?", root):
        dirs[:] = []
        continue
    for f in files:
        p = os.path.join(root, f)
        if os.access(p, os.W_OK):
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
                writable.append(p)
            except OSError:
                pass
out["writable"] = writable
try:
    os.open("/proc/sys/kernel/core_pattern", os.O_WRONLY)
    out["core_pattern"] = "opened for writing"
except OSError as exc:
    out["core_pattern"] = errno.errorcode[exc.errno]
# Every readable file of /proc (host-wide and of this sandbox's own processes) that names one of NEEDLES.
hits = {}
for root, dirs, files in os.walk("/proc"):
    if root.startswith(("/proc/self", "/proc/thread-self")) or re.fullmatch(r"/proc/\d+/task(/.*)?", root):
        dirs[:] = []
        continue
    dirs[:] = [d for d in dirs if d not in ("fd", "fdinfo", "map_files", "ns", "net")]
    for f in files:
        p = os.path.join(root, f)
        if os.path.islink(p) or f in ("pagemap", "mem", "kmsg", "kcore", "clear_refs"):
            continue
        try:
            text = read(p)
        except OSError:
            continue
        found = [n for n in NEEDLES if n in text]
        if found:
            hits[p] = found
out["hits"] = hits
# Site-packages: files that point outside the installation, and whether the project's packages are reachable.
site = [p for p in sys.path if p.endswith("site-packages")]
named = {}
for s in site:
    for entry in os.scandir(s):
        paths = [entry.path] if entry.is_file() else (
            [os.path.join(entry.path, f) for f in os.listdir(entry.path)] if entry.name.endswith(".dist-info") else [])
        for p in paths:
            if p.endswith((".pyc", ".so")) or not os.path.isfile(p):
                continue
            with open(p, "rb") as fh:
                text = fh.read(1 << 20).decode(errors="replace")
            found = [n for n in NEEDLES if n in text]
            if found:
                named[p] = found
out["site_named"] = named
out["meta_path"] = [type(m).__name__ for m in sys.meta_path]
out["sys_path"] = sys.path
reachable = []
for mod in ("grader", "server", "reference"):
    try:
        __import__(mod)
        reachable.append(mod)
    except Exception:
        pass
out["reachable"] = reachable
import numpy, torch, torchvision, sklearn, matplotlib
import matplotlib.pyplot
out["torch_threads"] = torch.get_num_threads()
out["torch_cpu_count"] = torch.multiprocessing.cpu_count()
out["conv"] = float(torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3)).sum())
print("PROBE" + json.dumps(out))
'''


def host_needles() -> list[str]:
    """Host paths that must not show: this checkout, the venv's real folder and the folder it belongs to
    (the editable install's target), and the paths the editable install maps packages to."""
    venv = Path(sys.prefix).resolve()
    needles = {str(PROJECT), str(venv), str(venv.parent)}
    for finder in venv.glob("lib/python3*/site-packages/__editable___*finder.py"):
        text = finder.read_text()
        needles.update(s for s in ("/work/main", str(PROJECT)) if s in text)
    return sorted(needles)


def run_probe(cfg: GraderSettings, code: str, folder: Path, *, cpus: float, memory_bytes: int,
              timeout: float = 900.0) -> dict[str, Any]:
    """Run `code` (which prints PROBE + json) in the real sandbox with real cgroups; return the json."""
    backend = host_backend(cfg.bwrap, cfg.cgroup_root, cfg.cgroup_name)
    (folder / "in").mkdir(parents=True)
    (folder / "submission").mkdir()
    job = Job(harness=PROJECT / "grader" / "harness", submission=folder / "submission", inputs=folder / "in")
    limits = RunLimits(memory_bytes=memory_bytes, pids=PIDS, cpus=cpus, wall_s=timeout, output_bytes=2**20,
                       tmpfs_bytes=2**28)
    out = bytearray()
    with SandboxProcess(backend=backend, bwrap=cfg.bwrap, python=cfg.python, job=job, limits=limits,
                        argv_tail=["-c", code]) as sp:
        assert sp.proc.stdout is not None
        fd = sp.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 1.0)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                out += chunk
    text = out.decode(errors="replace")
    assert "PROBE{" in text, text[-3000:]
    return json.loads(text[text.rindex("PROBE{") + 5:].splitlines()[0])


@pytest.fixture(scope="module")
def seen(fast_settings: GraderSettings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    code = PROBE.replace("NEEDLES", repr(host_needles()))
    return run_probe(fast_settings, code, tmp_path_factory.mktemp("view"), cpus=CPUS, memory_bytes=MEMORY)


@pytest.mark.slow
def test_proc_sys_and_host_wide_proc_files_are_read_only(seen):
    """The sandbox's uid is the host's root when the grader runs as root, and the kernel lets that uid write
    sysctls without any capability (kernel.core_pattern runs a program as host root on the next crash)."""
    assert seen["core_pattern"] == "EROFS"
    assert seen["writable"] == []


@pytest.mark.slow
def test_memory_load_and_cpus_are_the_runs_own(seen):
    meminfo = dict(line.split(":", 1) for line in seen["meminfo"].splitlines())
    for key in ("MemTotal", "MemFree", "MemAvailable"):
        assert meminfo[key].strip() == f"{MEMORY // 1024} kB"
    assert meminfo["SwapTotal"].strip() == "0 kB"
    assert seen["loadavg"].split()[:3] == ["0.00", "0.00", "0.00"]
    assert seen["loadavg"].split()[3] == "1/1"  # no host-wide thread count
    assert float(seen["uptime"].split()[0]) == 0.0
    assert "avg10=0.00" in seen["pressure/cpu"] and "total=0" in seen["pressure/cpu"]
    cpu_lines = [line for line in seen["stat"].splitlines() if line.startswith("cpu") and line[3].isdigit()]
    assert len(cpu_lines) == int(CPUS)
    assert all(set(line.split()[1:]) == {"0"} for line in cpu_lines)
    assert seen["cpuinfo"].count("processor\t:") == int(CPUS)
    assert seen["interrupts"].split() == ["CPU0"]
    assert seen["cpu_count"] == int(CPUS)
    assert seen["torch_threads"] == int(CPUS) and seen["torch_cpu_count"] == int(CPUS)
    host_boot = Path("/proc/sys/kernel/random/boot_id").read_text()
    assert seen["sys/kernel/random/boot_id"] != host_boot
    assert seen["sys/kernel/threads-max"].strip() == str(PIDS)
    for name in ("swaps", "partitions"):
        assert len(seen[name].strip().splitlines()) == 1, seen[name]  # the header only: no host devices
    for name in ("diskstats", "kallsyms", "cmdline"):
        assert seen[name] == "", name
    host_total = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    assert host_total.split()[1] not in seen["meminfo"]


@pytest.mark.slow
def test_project_packages_are_unreachable_and_host_paths_only_in_mount_tables(seen):
    assert seen["site_named"] == {}  # the editable install's finder and .pth, direct_url.json: bound empty
    assert "_EditableFinder" not in seen["meta_path"]
    assert seen["reachable"] == []
    assert [p for p in seen["sys_path"] if not p.startswith((sys.prefix, sys.base_prefix))] == []  # the installation only
    # Only the mount tables, maps and command lines name host folders (the ones bound into the sandbox).
    assert {p: v for p, v in seen["hits"].items() if Path(p).name not in NAMES_INSTALL_PATHS} == {}
    assert seen["hits"], "the probe found none of the bound folders' paths in its own mount table"


@pytest.mark.slow
def test_numpy_torch_sklearn_matplotlib_import_under_the_masks(seen):
    assert seen["conv"] == 36.0


SYSTEM_PROBE = r'''
import json, os, sys, ssl, sqlite3, ctypes, decimal, lzma, zlib
print("PROBE" + json.dumps({"usr": sorted(os.listdir("/usr")), "bin": sorted(os.listdir("/usr/bin")),
                            "share": os.path.exists("/usr/share"), "base": sys.base_prefix, "venv": sys.prefix}))
'''


@pytest.fixture
def system_venv() -> Iterator[Path]:
    """A fresh venv of Debian's /usr/bin/python3 under /var/tmp (the sandbox's /tmp is its own)."""
    if not Path("/usr/bin/python3").exists():
        missing_tool("no system python3")
    folder = Path(tempfile.mkdtemp(prefix="nnag-sysvenv-", dir="/var/tmp"))
    try:
        made = subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(folder / "venv")],
                              capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            missing_tool(f"python3 -m venv: {made.stderr.strip()[-200:]}")
        yield folder / "venv"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_venv_of_the_system_python_sees_its_standard_library_not_usr(fast_settings, tmp_path, system_venv):
    """The Docker images run a venv of Debian's python3, whose base installation is /usr: the sandbox gets its
    standard library and binary, not /usr/share (datasets), /usr/bin or /usr/local."""
    seen = run_probe(fast_settings.with_(python=system_venv / "bin" / "python"), SYSTEM_PROBE, tmp_path / "job",
                     cpus=1.0, memory_bytes=2**30, timeout=120)
    assert seen["base"] == "/usr" and seen["venv"] == str(system_venv)
    assert seen["usr"] == ["bin", "lib", "lib64"] and not seen["share"]
    assert set(seen["bin"]) <= {"python3", "python3.11", "python3.12", "python3.13"}


@pytest.mark.slow
@pytest.mark.usefixtures("host_unharmed")
def test_reference_submission_gets_full_marks_under_the_masks(tmp_path, fast_settings):
    z = build_submission_zip("rpz-cnn", tmp_path / "ref.zip")
    # The assignment's own memory and CPUs (what the masks show); time budgets widened for a shared, busy machine.
    slack = {"wall_s": 3600.0, "op_s": 600.0, "import_s": 600.0, "build_s": 600.0}
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings.with_(limit_overrides=slack))
    assert result.status is Status.GRADED, result.message
    assert {c.id: c.message for c in result.checks if c.status is not CheckStatus.PASSED} == {}
    assert result.score == result.max_score == 6.0


INSTALLED_PROBE = r'''
import json, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
print("PROBE" + json.dumps({name: sorted(os.listdir(os.path.join(site, name))) for name in ("grader", "server", "other")}))
'''


def test_an_installed_grader_is_not_visible_to_student_code(fast_settings, tmp_path, system_venv):
    """Where nn-autograder is installed from a wheel into the venv the sandbox runs, its package holds every
    assignment's reference solution (grader/assignments/*/reference): the sandbox sees grader/ and server/ in
    site-packages as empty folders (the harness is bound on its own at /job/harness); other packages stay."""
    (site,) = (system_venv / "lib").glob("python3*/site-packages")
    for rel in ("grader/assignments/rpz_cnn/reference/numpy_nn.py", "server/web.py", "other/module.py"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text("# the reference solution\n")
    seen = run_probe(fast_settings.with_(python=system_venv / "bin" / "python"), INSTALLED_PROBE, tmp_path / "job",
                     cpus=1.0, memory_bytes=2**30, timeout=120)
    assert seen == {"grader": [], "server": [], "other": ["module.py"]}
