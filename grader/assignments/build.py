"""Build submission zips from the reference solutions (the good submission, and mutants of it for tests)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from grader.assignments.spec import UnknownAssignment, load_assignment


def reference_dir(assignment: str) -> Path:
    """The folder holding an assignment's reference solution (``rpz-cnn`` -> ``grader/assignments/rpz_cnn/reference``)."""
    return load_assignment(assignment).reference_dir


def submission_names(assignment: str) -> tuple[str, ...]:
    """The member names of an assignment's reference submission (the spec's files)."""
    try:
        return load_assignment(assignment).files
    except UnknownAssignment:
        raise KeyError(f"no reference submission for assignment {assignment!r}") from None


def submission_files(assignment: str, *, omit: Sequence[str] = ()) -> dict[str, bytes]:
    """The reference submission of an assignment as a mapping from member name to contents."""
    folder = reference_dir(assignment)
    return {name: (folder / name).read_bytes() for name in submission_names(assignment) if name not in omit}


def build_submission_zip(
    assignment: str,
    dest: Path,
    *,
    replace: Mapping[str, bytes] | None = None,
    omit: Sequence[str] = (),
    extra: Mapping[str, bytes] | None = None,
    folder: str | None = None,
) -> Path:
    """Write the reference submission of ``assignment`` as a zip.

    :param dest: the zip file to write, or an existing directory to write ``<assignment>.zip`` into
    :param replace: new contents for some of the submission's files (e.g. a mutated ``numpy_nn.py``)
    :param omit: submission files to leave out
    :param extra: further members to add (name -> contents)
    :param folder: put every member inside this one top-level folder instead of the zip root
    :return: the path of the written zip
    """
    unknown = (set(replace or {}) | set(omit)) - set(submission_names(assignment))
    if unknown:
        raise KeyError(f"not files of the {assignment} submission: {sorted(unknown)}")
    # Files that are replaced or omitted are not read, so mutants build even before training.
    files = submission_files(assignment, omit=[*omit, *(replace or {})])
    files.update(replace or {})
    files.update(extra or {})

    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{assignment}.zip"
    prefix = f"{folder.strip('/')}/" if folder else ""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            # Checkpoints hardly compress; storing them keeps building mutants fast.
            method = zipfile.ZIP_STORED if name.endswith(".pt") else zipfile.ZIP_DEFLATED
            zf.writestr(prefix + name, data, compress_type=method)
    return dest
