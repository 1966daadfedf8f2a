"""A bound on the judge's own memory while it grades: a bug of ours (or an input we did not foresee) ends that
grading with a MemoryError, never with the kernel's OOM killer taking the worker down.

The bound is RLIMIT_DATA (private writable memory: the heap, anonymous maps, numpy buffers), set to what the
process uses when the first grading starts plus `extra` per grading running in it (gradings in threads of one
process share the limit). Shared libraries and read-only maps do not count, so torch's large libraries do not
eat the budget. The limit is restored when the last grading ends.
"""

from __future__ import annotations

import contextlib
import re
import resource
import threading
from collections.abc import Iterator
from pathlib import Path

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int] | None = None
_base = 0


def data_bytes() -> int:
    """This process's private writable memory (VmData), which RLIMIT_DATA bounds."""
    status = Path("/proc/self/status").read_text()
    hit = re.search(r"^VmData:\s+(\d+) kB", status, re.MULTILINE)
    return int(hit.group(1)) * 1024 if hit else 0


def unbounded_data_kib() -> int | None:
    """The soft RLIMIT_DATA this process had before any judge bound (KiB; None when unlimited), for children."""
    with _lock:
        soft = (_saved or resource.getrlimit(resource.RLIMIT_DATA))[0]
    return None if soft == resource.RLIM_INFINITY else soft // 1024


def _apply(count: int, extra: int) -> None:
    assert _saved is not None
    soft_cap, hard = _saved
    want = _base + count * extra
    if soft_cap != resource.RLIM_INFINITY:
        want = min(want, soft_cap)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (want, hard))


@contextlib.contextmanager
def judge_memory(extra: int) -> Iterator[None]:
    """Bound this process's data memory to its current use plus `extra` bytes per grading inside the block."""
    global _active, _saved, _base
    if extra <= 0:
        yield
        return
    with _lock:
        if _active == 0:
            _saved = resource.getrlimit(resource.RLIMIT_DATA)
            _base = data_bytes()
        _active += 1
        _apply(_active, extra)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                assert _saved is not None
                resource.setrlimit(resource.RLIMIT_DATA, _saved)
                _saved = None
            else:
                _apply(_active, extra)
