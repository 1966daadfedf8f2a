"""One sandboxed process: start it inside fresh cgroups, stream its frames, kill it, clean up."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from grader.harness import wire
from grader.harness.protocol import Outcome
from grader.memory_bound import unbounded_data_kib
from grader.sandbox.bwrap import Job, bwrap_argv, join_cgroups_argv, sandbox_files
from grader.sandbox.cgroups import CgroupBackend, CgroupLimits, RunCgroup, Usage, detect_cgroups
from grader.sandbox.errors import SandboxUnavailable
from grader.sandbox.seccomp import program_fd, seccomp_program
from grader.sandbox.view import data_fd

STDOUT_TAIL = 16 * 1024


@dataclass(frozen=True, slots=True)
class RunLimits:
    memory_bytes: int
    pids: int
    cpus: float
    wall_s: float
    output_bytes: int
    tmpfs_bytes: int
    import_s: float = 120.0
    build_s: float = 60.0
    op_s: float = 20.0
    predict_s: float = 60.0
    retained_bytes: int = 256 * 2**20
    """What the judge keeps of the sandbox's output in one grading (decoded size, over all restarts)."""


@cache
def host_backend(bwrap: str, cgroup_root: Path, cgroup_name: str) -> CgroupBackend:
    """Check once per process that the host can sandbox: bubblewrap runs and cgroups are writable."""
    if shutil.which(bwrap) is None:
        raise SandboxUnavailable(f"bubblewrap ({bwrap}) is not installed: apt-get install bubblewrap")
    probe = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                            "--ro-bind", "/", "/", "/bin/true"], capture_output=True, env={}, timeout=30)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap cannot create namespaces here (network, PID, user): "
            + probe.stderr.decode(errors="replace").strip())
    return detect_cgroups(cgroup_root, cgroup_name)


class SandboxProcess:
    """A running harness. Use as a context manager; leaving it kills everything and removes cgroups."""

    def __init__(self, *, backend: CgroupBackend, bwrap: str, python: Path, job: Job, limits: RunLimits,
                 argv_tail: list[str]) -> None:
        self.limits = limits
        self.cgroup: RunCgroup = backend.create(
            CgroupLimits(memory_bytes=limits.memory_bytes, pids=limits.pids, cpus=limits.cpus))
        read_fd, write_fd = os.pipe()
        program = seccomp_program()
        seccomp_fd = program_fd(program) if program else None
        files = {dest: data_fd(data) for dest, data in sandbox_files(
            python=python, memory_bytes=limits.memory_bytes, cpus=limits.cpus, pids=limits.pids).items()}
        argv = join_cgroups_argv(self.cgroup.procs_files, bwrap_argv(
            bwrap=bwrap, python=python, job=job, tmpfs_bytes=limits.tmpfs_bytes, cpus=limits.cpus,
            argv_tail=argv_tail, marker=backend.name, seccomp_fd=seccomp_fd, files=files),
            data_limit_kib=unbounded_data_kib())
        extra_fds = [*files.values(), *([] if seccomp_fd is None else [seccomp_fd])]
        try:
            self.proc = subprocess.Popen(
                [*argv, "--channel-fd", str(write_fd)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env={}, cwd="/", pass_fds=(write_fd, *extra_fds))  # no host cwd in PWD
        except BaseException:
            os.close(read_fd)
            self.cgroup.remove()
            raise
        finally:
            os.close(write_fd)
            for fd in extra_fds:
                os.close(fd)
        self.started = time.monotonic()
        self.pidfd = os.pidfd_open(self.proc.pid)  # readable once the process has exited
        self.exited = False
        self.channel = read_fd
        self.buffer = bytearray()
        self.received = 0
        self.stdout_tail = bytearray()
        self.eof = False
        self.outcome: Outcome | None = None
        """How the process ended (protocol.Outcome): OVERFLOW once it sends more than its cap; the judge sets the
        rest when it stops following it (PASSED when the harness said it was done)."""
        self.deferred: wire.WireError | None = None

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def messages(self, *, until: float) -> list[wire.Message] | None:
        """Wait until `until` (monotonic) for frames. Returns decoded messages ([] on timeout),
        None once the channel is closed. Raises `wire.WireError` on a malformed frame."""
        fds = [self.channel, self.pidfd] + ([self.proc.stdout.fileno()] if self.proc.stdout else [])
        if self.deferred is not None:
            raise self.deferred
        while True:
            if self.eof:
                return None
            if self.exited:  # deliver what the process wrote before it ended, then report the end
                fds = [self.channel]
            timeout = 0.0 if self.exited else max(0.0, until - time.monotonic())
            ready, _, _ = select.select(fds, [], [], timeout)
            if self.pidfd in ready:
                self.exited = True
                continue
            if not ready:
                if self.exited:
                    self.eof = True
                    return None
                return []
            if self.proc.stdout and self.proc.stdout.fileno() in ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if chunk:
                    self.stdout_tail += chunk
                    del self.stdout_tail[:-STDOUT_TAIL]
                else:
                    fds = [f for f in fds if f != self.proc.stdout.fileno()]
            if self.channel in ready:
                chunk = os.read(self.channel, 1 << 20)
                if not chunk:
                    self.eof = True
                    return None
                self.received += len(chunk)
                if self.received > self.limits.output_bytes:
                    self.outcome = Outcome.OVERFLOW
                    raise wire.WireError(f"output exceeds the cap of {self.limits.output_bytes} bytes")
                self.buffer += chunk
                frames = wire.split_frames(self.buffer, max_frame=self.limits.output_bytes)
                out: list[wire.Message] = []
                for f in frames:  # the frames before a malformed one count: the failure is then the right op's
                    try:
                        out.append(wire.decode_message(f))
                    except wire.WireError as exc:
                        if not out:
                            raise
                        self.deferred = exc
                        break
                if out:
                    return out

    def where_stuck(self, submission_prefix: str = "/job/submission/", wait_s: float = 0.5) -> str:
        """Where the harness's main thread is, as ``file.py line N, in name`` of the innermost frame in the
        student's files ("" if unknown). Asks the harness to dump its stack (SIGUSR1, faulthandler) and reads
        the dump from its stdout. Untrusted text: for a message only, never for a decision."""
        pid = self._harness_pid()
        if pid is None:
            return ""
        mark = len(self.stdout_tail)
        try:
            os.kill(pid, signal.SIGUSR1)
        except OSError:
            return ""
        deadline = time.monotonic() + wait_s
        fd = self.proc.stdout.fileno() if self.proc.stdout else None
        while fd is not None and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.stdout_tail += chunk
            if b"most recent call first" in self.stdout_tail[max(0, mark - 64):] and chunk.endswith(b"\n\n"):
                break
        dump = self.stdout_tail[max(0, mark - 64):].decode(errors="replace")
        for hit in re.finditer(r'File "([^"\n]+)", line (\d+) in (\S+)', dump):
            path, line, name = hit.groups()
            if path.startswith(submission_prefix):
                return f"{path.rsplit('/', 1)[-1][:60]} line {line}, in {name[:60]}"
        return ""

    def _harness_pid(self) -> int | None:
        """Host pid of the harness interpreter (the first process in the run's cgroup running main.py)."""
        for pid in sorted(self.cgroup.pids()):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[1:4] == [b"-I", b"-B", b"/job/harness/main.py"]:  # not bwrap, whose argv holds it too
                return pid
        return None

    def kill(self) -> None:
        self.cgroup.kill_all()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def usage(self) -> Usage:
        return self.cgroup.usage()

    def close(self) -> None:
        try:
            self.kill()
        finally:
            os.close(self.channel)
            os.close(self.pidfd)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.cgroup.remove()

    @property
    def stdout_text(self) -> str:
        return self.stdout_tail.decode(errors="replace")

