"""An optional seccomp filter that shrinks the kernel surface the sandbox can reach.

The namespaces and cgroups already contain every threat we test; this denies (EPERM) what student code
never needs: internet sockets, io_uring, perf, userfaultfd, keyrings, ptrace, BPF, module loading and
mounting. The BPF program is generated once per process with Debian's python3-seccomp (libseccomp),
run by the system interpreter; without it the filter is skipped and a line is logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
from functools import cache

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
DENIED_SYSCALLS = (
    "io_uring_setup", "io_uring_enter", "io_uring_register", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root",
    "move_mount", "open_tree", "fsopen", "fsmount", "swapon", "swapoff", "reboot", "open_by_handle_at",
    "name_to_handle_at", "setns", "acct", "quotactl",
)
DENIED_SOCKET_FAMILIES = (2, 10, 16, 17)  # AF_INET, AF_INET6, AF_NETLINK, AF_PACKET

_GENERATOR = """
import errno, sys, seccomp
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
for name in sys.argv[1].split(","):
    try:
        f.add_rule(seccomp.ERRNO(errno.EPERM), name)
    except (RuntimeError, ValueError):
        pass  # not a syscall on this architecture
for family in map(int, sys.argv[2].split(",")):
    f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
f.export_bpf(sys.stdout)
"""


@cache
def seccomp_program() -> bytes | None:
    """The filter as BPF bytes for `bwrap --seccomp FD`, or None when libseccomp is not available."""
    if not os.path.exists(SYSTEM_PYTHON):
        log.warning("no %s: sandbox runs without a seccomp filter", SYSTEM_PYTHON)
        return None
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", _GENERATOR, ",".join(DENIED_SYSCALLS), ",".join(map(str, DENIED_SOCKET_FAMILIES))],
        capture_output=True, timeout=30, env={})
    if proc.returncode != 0 or not proc.stdout:
        log.warning("python3-seccomp unavailable (%s): sandbox runs without a seccomp filter",
                    proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or "no output")
        return None
    return proc.stdout


def program_fd(program: bytes) -> int:
    """A readable fd (memfd) holding the program, positioned at its start; the caller closes it."""
    fd = os.memfd_create("nnag-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
