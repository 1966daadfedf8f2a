"""The input key of one check of one grading: a sha256 over everything its verdict can depend on.

    key = sha256(format, grader fingerprint, the check's spec entry and the spec around it (without the other
                 checks and the student-facing text), the assignment's reference files, the limits in force,
                 the hidden-data fingerprint, the bytes of every submission file the check can read)

A change to any of these gives another key, so an earlier verdict is never served for it. What the check can
read is `grader.reuse.reads.check_reads` (the static import closure, or every file). The random cases a grading
draws are not in the key: a verdict judged on one draw is as good as one judged on the next.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from grader.assignments import AssignmentSpec, CheckSpec
from grader.reuse.reads import Reads

FORMAT = 1
"""Bumped when what a key covers changes."""
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root: Path, *, suffixes: Iterable[str] | None = None, skip: Iterable[str] = ()) -> str:
    """sha256 over the relative names and contents of the files under root (sorted; symlinks followed)."""
    wanted = tuple(suffixes) if suffixes is not None else None
    skipped = tuple(skip)
    h = hashlib.sha256()
    if not root.exists():
        return h.hexdigest()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel or any(rel.startswith(s) for s in skipped):
            continue
        if wanted is not None and not rel.endswith(wanted):
            continue
        h.update(rel.encode() + b"\0" + file_digest(path).encode() + b"\n")
    return h.hexdigest()


@functools.cache
def grader_fingerprint() -> str:
    """The grader's own code (every .py of the package but the assignments, which `assignment_fingerprint`
    covers) and the versions it runs with; computed once per process (a code change needs a worker restart)."""
    package = Path(__file__).resolve().parent.parent
    versions = {name: _version(name) for name in ("numpy", "torch", "torchvision", "nbformat", "ipython")}
    body = {"code": tree_digest(package, suffixes=(".py",), skip=("assignments/",)),
            "assignments_code": tree_digest(package / "assignments", suffixes=(".py",), skip=_assignment_folders()),
            "python": platform.python_version(), "versions": versions}
    return _sha(body)


def _assignment_folders() -> tuple[str, ...]:
    """The per-assignment folders under grader/assignments (each covered by its own fingerprint)."""
    root = Path(__file__).resolve().parent.parent / "assignments"
    return tuple(f"{p.name}/" for p in root.iterdir() if p.is_dir() and (p / "assignment.toml").is_file())


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def assignment_fingerprint(spec: AssignmentSpec) -> str:
    """The reference solution's files and the assignment folder's own code (its scripts, not students/)."""
    return _sha({"reference": tree_digest(spec.reference_dir),
                 "code": tree_digest(spec.folder, suffixes=(".py",), skip=("reference/", "students/"))})


def data_fingerprint(hidden_data: Path) -> str:
    """Every prepared hidden set (manifests, array files by size and mtime) and the installation's dither key:
    re-preparing any set, or a new key, changes it."""
    h = hashlib.sha256()
    arrays = hidden_data / "arrays"
    if arrays.is_dir():
        for path in sorted(p for p in arrays.rglob("*") if p.is_file()):
            rel = path.relative_to(arrays).as_posix()
            if path.name == "manifest.json":
                h.update(rel.encode() + b"\0" + file_digest(path).encode() + b"\n")
            else:
                st = path.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = hidden_data / "dither.key"
    if key.is_file():
        h.update(b"key\0" + file_digest(key).encode())
    return h.hexdigest()


def spec_entry(spec: AssignmentSpec, check: CheckSpec) -> str:
    """The check's entry and the spec around it that judging reads (not the other checks, not the page)."""
    around = replace(spec, checks=(), page="", conventions=(), title="")
    return repr(check) + "\n" + repr(around)


def check_key(*, spec: AssignmentSpec, check: CheckSpec, reads: Reads, limits: object, data: str,
              assignment: str, digests: Mapping[str, str]) -> str:
    """The check's input key; `digests` maps every submission file (relative name) to its sha256."""
    files = sorted(digests) if reads.everything else sorted(f for f in reads.files if f in digests)
    body = {"format": FORMAT, "grader": grader_fingerprint(), "assignment": assignment,
            "spec": spec_entry(spec, check), "limits": repr(limits), "data": data,
            "everything": reads.everything, "files": {f: digests[f] for f in files},
            "missing": sorted(f for f in reads.files if f not in digests)}
    return _sha(body)


def submission_digests(root: Path) -> dict[str, str]:
    """sha256 of every file of the unpacked submission, by relative name."""
    return {p.relative_to(root).as_posix(): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _sha(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
