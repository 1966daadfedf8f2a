"""Start-up checks of `autograder worker`: can this host sandbox student code at all, and does it have the
hidden data's dither key (`check_hidden_data`)?

Unless ``AUTOGRADER_REQUIRE_SANDBOX=false``, `autograder worker` and `autograder serve` run the sandbox's
own host check (`grader.sandbox.host_backend`: bubblewrap creates its namespaces, the memory, pids and
cpu cgroups are writable) before taking any message or upload, and refuse to start with a message naming
what is missing. With the setting off a host problem shows up per grading instead (retried, then an
error); grading never falls back to running student code unsandboxed either way.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from grader.settings import GraderSettings

CONTAINER_HINT = (
    "A worker container needs bubblewrap (in the image), permission to create namespaces and a writable "
    "cgroup v2 hierarchy with the memory, pids and cpu controllers: run it with `privileged: true` and "
    "`cgroup: private` (see docker/compose.yaml and the README's Deploy section)."
)


def leave_cgroup_namespace_root(root: Path, self_cgroup: Path = Path("/proc/self/cgroup")) -> bool:
    """Move the processes at the root of a private cgroup v2 namespace into ``<root>/worker``.

    A container started with a private cgroup namespace begins in the root of it, and cgroup v2 allows
    no processes in a group whose controllers are handed to child groups ("no internal processes").
    Returns True when processes were moved; does nothing on cgroup v1 or outside a namespace root.
    """
    if not (root / "cgroup.controllers").is_file():
        return False
    try:
        if self_cgroup.read_text().strip() != "0::/":
            return False
        pids = (root / "cgroup.procs").read_text().split()
    except OSError:
        return False
    if not pids:
        return False
    leaf = root / "worker"
    try:
        leaf.mkdir(exist_ok=True)
    except OSError:
        return False  # not writable: host_backend says so in words
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile, or a kernel thread
            (leaf / "cgroup.procs").write_text(pid)
    return True


def check_worker_host(settings: GraderSettings | None = None) -> str | None:
    """None when the worker may start; otherwise why it must not (for its stderr)."""
    if settings is None:
        from grader.settings import settings as grader_settings

        settings = grader_settings()
    if not settings.require_sandbox:
        return None
    from grader.sandbox import SandboxUnavailable, host_backend

    leave_cgroup_namespace_root(settings.cgroup_root)
    try:
        host_backend(settings.bwrap, settings.cgroup_root, settings.cgroup_name)
    except SandboxUnavailable as exc:
        return f"this host cannot sandbox student code, so the worker does not start: {exc}. {CONTAINER_HINT}"
    return None


def check_hidden_data(settings: GraderSettings) -> str | None:
    """None when the hidden data's dither key can be read; otherwise why the worker must not start.

    Without it every grading would end in an error. A worker on another host must use a copy of the key
    that was made where the data was prepared (a key of its own would show students other images).
    """
    from grader.data.dither_key import read_key
    from grader.data.errors import DataUnavailable

    try:
        read_key(Path(settings.hidden_data))
    except DataUnavailable as exc:
        return (f"the hidden test data is not usable here, so the worker does not start: {exc}. On a worker "
                "host, copy the prepared hidden_data/ (with its dither.key) from where it was prepared, e.g. "
                "`rsync -a`, and point AUTOGRADER_HIDDEN_DATA at it")
    return None
