"""The installation's secret dither key (hidden_data/dither.key).

The hidden images a grading shows the sandbox are dithered with noise drawn from this key: the same noise for
every grading, on every worker that has a copy of hidden_data/ (regrades give the same accuracy, and every
student is graded on the same images), and noise nobody outside the judge can reproduce (so a table of the
public test set's images cannot be rebuilt for the dithered ones).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from grader.data.catalog import PREPARE_HINT
from grader.data.errors import DataUnavailable

KEY_FILE = "dither.key"
_KEY_BYTES = 32


def ensure_key(hidden: Path) -> bool:
    """Create hidden/dither.key (owner-only) unless it exists; True when it was created. Never replaces one."""
    path = hidden / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(_KEY_BYTES))
    return True


def read_key(hidden: Path) -> bytes:
    """The key, or DataUnavailable saying how to make one."""
    path = hidden / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise DataUnavailable(f"{path} is missing (the hidden images' dither key): {PREPARE_HINT}") from None
    except OSError as exc:  # e.g. prepared by another user: the key is owner-only
        raise DataUnavailable(f"cannot read the dither key {path} ({exc}): grade as the user who prepared "
                              "hidden_data/, or give this user read access to it") from None
    if len(key) < 16:
        raise DataUnavailable(f"{path} is too short to be a key: delete it and {PREPARE_HINT}")
    return key


def set_seed(key: bytes, name: str, size: tuple[int, ...]) -> bytes:
    """The dither seed of one hidden set at one image size (different sets never share noise)."""
    return hmac.new(key, f"{name}@{'x'.join(map(str, size))}".encode(), hashlib.sha256).digest()
