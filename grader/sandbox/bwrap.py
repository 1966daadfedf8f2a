"""The bubblewrap command line: an allow-list of read-only system paths, no network, private tmpfs."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
    data: Path | None = None  # -> /job/data (ro): hidden sets, linked in by the judge only while an op needs them


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


def bwrap_argv(
    *, bwrap: str, python: Path, job: Job, tmpfs_bytes: int, cpus: float, argv_tail: list[str], marker: str,
    seccomp_fd: int | None = None,
) -> list[str]:
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
    args += ["--dev", "/dev", "--proc", "/proc",
             "--size", size, "--tmpfs", "/tmp",
             "--size", size, "--tmpfs", "/dev/shm",
             "--ro-bind", str(job.harness), "/job/harness",
             "--ro-bind", str(job.submission), "/job/submission",
             "--ro-bind", str(job.inputs), "/job/in",
             *(["--ro-bind", str(job.data), "/job/data"] if job.data is not None else []),
             "--size", size, "--tmpfs", "/job/work",
             "--chdir", "/job/work"]
    threads = str(max(1, int(cpus)))
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
    joins = " && ".join(f"echo $$ > {shlex.quote(str(f))}" for f in procs_files)
    limit = "unlimited" if data_limit_kib is None else str(int(data_limit_kib))
    return ["/bin/sh", "-c", f'{joins} && ulimit -S -d {limit} && exec "$@"', "sandbox-join", *argv]
