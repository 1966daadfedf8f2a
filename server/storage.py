"""Upload files: stored outside any served folder, under generated names, never executed or served raw."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    size: int
    sha256: str


def path_of(upload_dir: Path, stored_name: str) -> Path:
    """The file for a generated name; refuses anything that is not one of ours."""
    if not stored_name or "/" in stored_name.replace("/", "", 1) or ".." in stored_name or stored_name.startswith("/"):
        raise ValueError("bad stored name")
    return upload_dir / stored_name


def save_stream(upload_dir: Path, stream: BinaryIO, *, limit: int) -> StoredFile:
    """Copy `stream` to a new generated file, at most `limit` bytes (TooLarge otherwise: nothing is kept)."""
    sub = uuid.uuid4().hex
    name = f"{sub[:2]}/{sub}.zip"
    dest = upload_dir / name
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dest.with_suffix(".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge()
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredFile(name=name, size=size, sha256=digest.hexdigest())


def delete(upload_dir: Path, stored_name: str) -> None:
    path_of(upload_dir, stored_name).unlink(missing_ok=True)
