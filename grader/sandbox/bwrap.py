"""The bubblewrap command line: an allow-list of read-only system paths, no network, private tmpfs,
a read-only /proc/sys and per-run files over the host-wide parts of /proc (grader/sandbox/view.py says
what a grading may see and why)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from grader.sandbox.view import proc_files, site_files_to_hide, visible_cpus

# Read-only system paths the interpreter and torch need; /usr/share (datasets!) and /etc stay out.
SYSTEM_BINDS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/locale")
# Data shipped inside site-packages that would hand a student labels (sklearn's digits, ...).
MASKED_IN_SITE = ("sklearn/datasets/data", "sklearn/datasets/descr", "sklearn/datasets/images")


SANDBOX_MARKER = "NNAG_SANDBOX"
"""Environment variable every sandboxed process starts with, set to the grader's cgroup name
(lets tests prove that none survives)."""


@dataclass(frozen=True, slots=True)
class Job:
    """Host folders of one run, bound into the sandbox at fixed places."""

    harness: Path  # -> /job/harness (ro)
    submission: Path  # -> /job/submission (ro)
    inputs: Path  # -> /job/in (ro)


@cache
def python_prefixes(python: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Folders the sandbox's interpreter needs (its venv, if any, and the base installation), and
    folders to hide in them (a venv's base site-packages, which the venv does not use)."""
    cfg = python.parent.parent / "pyvenv.cfg"
    prefixes: list[Path] = []
    hidden: list[Path] = []
    if cfg.is_file():
        prefixes.append(python.parent.parent.absolute())
        settings = dict(line.split("=", 1) for line in cfg.read_text().splitlines() if "=" in line)
        settings = {k.strip(): v.strip() for k, v in settings.items()}
        base = Path(settings["home"]).resolve().parent
        prefixes.append(base)
        if settings.get("include-system-site-packages", "false").lower() != "true":
            hidden += base.glob("lib/python3*/site-packages")
    else:
        prefixes.append(python.resolve().parent.parent)
    return tuple(dict.fromkeys(prefixes)), tuple(hidden)


@cache
def _site_dirs(python: Path) -> tuple[Path, ...]:
    """The site-packages folders the sandbox's interpreter sees (not the hidden ones)."""
    prefixes, hidden = python_prefixes(python)
    return tuple(lib for prefix in prefixes for lib in sorted(prefix.glob("lib/python3*/site-packages"))
                 if lib not in hidden)


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
    prefixes, hidden = python_prefixes(python)
    for prefix in prefixes:
        args += ["--ro-bind", str(prefix), str(prefix)]
        for lib in prefix.glob("lib/python3*/site-packages"):
            if lib in hidden:
                args += ["--tmpfs", str(lib)]
                continue
            for rel in MASKED_IN_SITE:
                if (lib / rel).is_dir():
                    args += ["--tmpfs", str(lib / rel)]
    size = str(tmpfs_bytes)
    args += ["--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
             "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
             "--size", size, "--tmpfs", "/tmp",
             "--size", size, "--tmpfs", "/dev/shm",
             "--ro-bind", str(job.harness.absolute()), "/job/harness",
             "--ro-bind", str(job.submission.absolute()), "/job/submission",
             "--ro-bind", str(job.inputs.absolute()), "/job/in",
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


def join_cgroups_argv(procs_files: list[Path], argv: list[str]) -> list[str]:
    """Wrap `argv` in a shell that moves itself into the run's cgroups, then execs it."""
    joins = " && ".join(f"echo $$ > {shlex.quote(str(f.absolute()))}" for f in procs_files)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sandbox-join", *argv]
