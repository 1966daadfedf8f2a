"""The bubblewrap command line: an allow-list of read-only system paths, no network, private tmpfs,
a read-only /proc/sys and per-run files over the host-wide parts of /proc (grader/sandbox/view.py says
what a grading may see and why)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from grader.sandbox.view import proc_files, site_files_to_hide, visible_cpus

# Read-only system paths the interpreter and torch need; /usr/share (datasets!) and /etc stay out.
SYSTEM_BINDS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/locale")
# Data shipped inside site-packages that would hand a student labels (sklearn's digits, ...), and this project's
# own packages where it is installed from a wheel into the sandbox's venv: grader/ holds every assignment's reference
# solution (grader/assignments/*/reference); the sandbox needs neither (the harness is bound at /job/harness).
MASKED_IN_SITE = ("sklearn/datasets/data", "sklearn/datasets/descr", "sklearn/datasets/images", "grader", "server")


SANDBOX_MARKER = "NNAG_SANDBOX"
"""Environment variable every sandboxed process starts with, set to the grader's cgroup name
(lets tests prove that none survives)."""


@dataclass(frozen=True, slots=True)
class Job:
    """Host folders of one run, bound into the sandbox at fixed places."""

    harness: Path  # -> /job/harness (ro)
    submission: Path  # -> /job/submission (ro)
    inputs: Path  # -> /job/in (ro)
    data: Path | None = None  # -> /job/data (ro): hidden sets, linked in by the judge only while an op needs them


@cache
def _layout(python: Path) -> tuple[Path | None, Path, bool]:
    """(the venv, if `python` is a venv's; the base installation; whether the base's packages are used)."""
    cfg = python.parent.parent / "pyvenv.cfg"
    if not cfg.is_file():
        return None, python.resolve().parent.parent, True
    settings = dict(line.split("=", 1) for line in cfg.read_text().splitlines() if "=" in line)
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    include = settings.get("include-system-site-packages", "false").lower() == "true"
    return python.parent.parent.absolute(), Path(settings["home"]).resolve().parent, include


@cache
def python_prefixes(python: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The installations the sandbox's interpreter comes from (its venv, if any, and the base installation),
    and folders in them it does not use (a venv's base site-packages)."""
    venv, base, include = _layout(python)
    hidden = [] if include or venv is None else list(base.glob("lib/python3*/site-packages"))
    return tuple(dict.fromkeys(p for p in (venv, base) if p is not None)), tuple(hidden)


@cache
def _interpreter_trees(python: Path) -> tuple[tuple[Path, ...], tuple[Path, ...], tuple[Path, ...]]:
    """What of the interpreter is bound: (folders, single files, site-packages folders it uses).

    The venv whole; of the base installation only its standard library, its shared libpython and the
    executable (a system interpreter's prefix is /usr: /usr/share and /usr/bin stay out); the base's
    package folders only when the interpreter uses them (no venv, or include-system-site-packages)."""
    venv, base, include = _layout(python)
    trees = [venv] if venv is not None else []
    trees += [d for d in sorted(base.glob("lib/python3.*")) if (d / "os.py").is_file()]
    sites = [s for t in trees[:1] for s in sorted(t.glob("lib/python3*/site-packages"))] if venv else []
    if include or venv is None:
        base_sites = [*base.glob("lib/python3*/site-packages"), *base.glob("lib/python3/dist-packages"),
                      *base.glob("local/lib/python3*/dist-packages")]
        trees += [s for s in sorted(base_sites) if not any(s.is_relative_to(t) for t in trees)]
        sites += sorted(base_sites)
    files = sorted(base.glob("lib/libpython3*.so*"))
    return tuple(trees), tuple(files), tuple(sites)


def _executable_args(python: Path, trees: tuple[Path, ...]) -> list[str]:
    """The interpreter's symlink chain (a venv's bin/python -> the base's python3 -> python3.11) and its
    binary, where they are not inside a bound folder."""
    args: list[str] = []
    path = python.absolute()
    for _ in range(40):
        inside = any(path.is_relative_to(t) for t in trees)
        if not path.is_symlink():
            if not inside:
                args += ["--ro-bind", str(path), str(path)]
            break
        target = os.readlink(path)
        if not inside:
            args += ["--symlink", target, str(path)]
        path = Path(os.path.normpath(path.parent / target))
    return args


def _site_dirs(python: Path) -> tuple[Path, ...]:
    """The site-packages folders the sandbox's interpreter sees."""
    return _interpreter_trees(python)[2]


@cache
def _hidden_site_files(python: Path) -> tuple[Path, ...]:
    return tuple(site_files_to_hide(_site_dirs(python)))


def sandbox_files(*, python: Path, memory_bytes: int, cpus: float, pids: int) -> dict[str, bytes]:
    """Files bound read-only over what the sandbox would see (sandbox path -> contents): the masked
    /proc files of this run and empty files over site-packages files that point outside the installation."""
    files = proc_files(memory_bytes=memory_bytes, cpus=visible_cpus(cpus), pids=pids)
    files.update((str(p), b"") for p in _hidden_site_files(python))
    return files


def bwrap_argv(
    *, bwrap: str, python: Path, job: Job, tmpfs_bytes: int, cpus: float, argv_tail: list[str], marker: str,
    seccomp_fd: int | None = None, files: Mapping[str, int] | None = None,
) -> list[str]:
    """`files` maps sandbox paths to readable fds (see `sandbox_files`) whose data bubblewrap binds there."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--clearenv", "--cap-drop", "ALL", "--hostname", "sandbox"]
    for p in SYSTEM_BINDS:
        if Path(p).exists():
            args += ["--ro-bind", p, p]
    args += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]
    trees, libs, sites = _interpreter_trees(python)
    for tree in trees:
        args += ["--ro-bind", str(tree), str(tree)]
    for lib in python_prefixes(python)[1]:  # the base's site-packages inside its bound standard library
        if any(lib.is_relative_to(t) for t in trees):
            args += ["--tmpfs", str(lib)]
    for lib in sites:
        for rel in MASKED_IN_SITE:
            if (lib / rel).is_dir():
                args += ["--tmpfs", str(lib / rel)]
    for f in libs:
        args += ["--ro-bind", str(f), str(f)]
    args += _executable_args(python, trees)
    size = str(tmpfs_bytes)
    args += ["--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
             "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
             "--size", size, "--tmpfs", "/tmp",
             "--size", size, "--tmpfs", "/dev/shm",
             "--ro-bind", str(job.harness.absolute()), "/job/harness",
             "--ro-bind", str(job.submission.absolute()), "/job/submission",
             "--ro-bind", str(job.inputs.absolute()), "/job/in",
             *(["--ro-bind", str(job.data.absolute()), "/job/data"] if job.data is not None else []),
             "--size", size, "--tmpfs", "/job/work",
             "--chdir", "/job/work"]
    for dest, fd in (files or {}).items():
        args += ["--ro-bind-data", str(fd), dest]
    threads = str(visible_cpus(cpus))
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "CUDA_VISIBLE_DEVICES": "", "TORCH_HOME": "/tmp/torch", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp/matplotlib", "XDG_CACHE_HOME": "/tmp/cache",
           SANDBOX_MARKER: marker}
    for k, v in env.items():
        args += ["--setenv", k, v]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return args + ["--", str(python.absolute()), "-I", "-B", *argv_tail]


def join_cgroups_argv(procs_files: list[Path], argv: list[str], *, data_limit_kib: int | None = None) -> list[str]:
    """Wrap `argv` in a shell that moves itself into the run's cgroups, then execs it.

    `data_limit_kib` (None: unlimited) is the soft RLIMIT_DATA the sandbox starts with: not the judge's own
    bound (grader.memory_bound), which children would otherwise inherit; the memory cgroup is the sandbox's."""
    joins = " && ".join(f"echo $$ > {shlex.quote(str(f.absolute()))}" for f in procs_files)
    limit = "unlimited" if data_limit_kib is None else str(int(data_limit_kib))
    return ["/bin/sh", "-c", f'{joins} && ulimit -S -d {limit} && exec "$@"', "sandbox-join", *argv]
