"""Code similarity of an assignment's submissions (issue 14): which submission of each student is compared, how
its sources are read from the upload folder, and the CSV export. The comparison itself is grader.similarity.

Each student's **latest graded** submission is compared (`latest_graded`). Issue 14's counted-submission rule
(the submission that counts for the grade) comes later: it is a `Choose` function of the same shape, passed as
``choose=`` to `collect` / `run`; nothing else changes.

Uploads are read, never run: each zip is unpacked by the grader's own unpacker (grader.archive, which refuses
unsafe zips: traversal, links, bombs, too many members) into a temporary folder, only the assignment's .py and
.ipynb files are taken out, and their text is read (notebooks by grader.notebook's bounded reader).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.archive import ArchiveLimits, ArchiveRejected, unpack_submission
from grader.assignments import load_assignment
from grader.similarity import Pair, Params, Progress, find_pairs, sources_in, template_sources
from grader.similarity.code import CODE_SUFFIXES
from server import storage
from server.models import Assignment, Role, Submission, SubmissionStatus, User
from server.settings import ServerSettings

Choose = Callable[[Session, Assignment], list[tuple[str, Submission]]]
"""Which submission of each student is compared: (username, submission) pairs."""


def latest_graded(session: Session, assignment: Assignment) -> list[tuple[str, Submission]]:
    """Each student's latest graded submission of `assignment` (the highest id), by username."""
    latest = (select(func.max(Submission.id))
              .where(Submission.assignment_id == assignment.id,
                     Submission.status == SubmissionStatus.GRADED.value)
              .group_by(Submission.user_id))
    rows = session.execute(select(User.username, Submission).join(User, User.id == Submission.user_id)
                           .where(Submission.id.in_(latest), User.role == Role.STUDENT.value)
                           .order_by(User.username)).all()
    return [(name, sub) for name, sub in rows]


@dataclass(frozen=True, slots=True)
class Collected:
    students: dict[str, dict[str, str]]
    """username -> {file name -> text}."""
    skipped: list[tuple[str, str]]
    """(username, why) for submissions that could not be read."""


def collect(session: Session, settings: ServerSettings, assignment: Assignment, *,
            choose: Choose = latest_graded) -> Collected:
    """The sources of each student's chosen submission, read from the upload folder."""
    spec = load_assignment(assignment.name)
    names = [f for f in spec.files if f.endswith(CODE_SUFFIXES)]
    lim = spec.limits
    limits = ArchiveLimits(upload_bytes=lim.upload_bytes, max_members=lim.max_members,
                           unpacked_bytes=lim.unpacked_bytes)
    students: dict[str, dict[str, str]] = {}
    skipped: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        for username, sub in choose(session, assignment):
            dest = Path(tmp) / str(sub.id)
            try:
                unpacked = unpack_submission(storage.path_of(settings.upload_dir, sub.stored_name), dest,
                                             expected=names, aliases=spec.aliases, limits=limits)
                sources = sources_in(dest, sorted(unpacked.found))
            except ArchiveRejected as exc:
                skipped.append((username, f"upload {sub.upload_number}: {exc.message}"))
                continue
            except OSError as exc:
                skipped.append((username, f"upload {sub.upload_number}: {type(exc).__name__}"))
                continue
            if sources:
                students[username] = sources
            else:
                skipped.append((username, f"upload {sub.upload_number}: no source file"))
    return Collected(students=students, skipped=skipped)


@dataclass(frozen=True, slots=True)
class Report:
    assignment: str
    pairs: list[Pair]
    compared: int
    skipped: list[tuple[str, str]]


def run(session: Session, settings: ServerSettings, assignment: Assignment, *, params: Params | None = None,
        choose: Choose = latest_graded, progress: Progress | None = None) -> Report:
    """The similar pairs of `assignment`'s submissions, the template code of its folder excluded."""
    got = collect(session, settings, assignment, choose=choose)
    template = template_sources(load_assignment(assignment.name).folder)
    pairs = find_pairs(got.students, template, params, progress=progress)
    return Report(assignment=assignment.name, pairs=pairs, compared=len(got.students), skipped=got.skipped)


def ranges(lines: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in lines)


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (or a tab or CR, which some
    spreadsheets skip before looking) gets a leading apostrophe, so it is never taken for a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CSV_COLUMNS = ("student_a", "student_b", "score", "files", "lines")


def to_csv(pairs: list[Pair]) -> str:
    """One row per pair, best first: the score, each matching file with its score and each side's share, and
    the matching line ranges of each side (``numpy_nn.py a:1-12,15-27 b:3-14``); files separated by ``; ``."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for p in pairs:
        files = "; ".join(f"{f.name} {f.score:.3f} ({f.share_a:.3f}/{f.share_b:.3f})" for f in p.files)
        lines = "; ".join(f"{f.name} a:{ranges(f.lines_a)} b:{ranges(f.lines_b)}" for f in p.files)
        w.writerow([safe_cell(v) for v in (p.student_a, p.student_b, f"{p.score:.3f}", files, lines)])
    return buf.getvalue()
