"""`autograder assignment selftest NAME`: the reference must get full marks, every student-style reference
(<assignment folder>/students/<style>/, written from the handout alone) must get full marks too, and every
mutant of the reference (declared in <assignment folder>/mutants.toml) must lose points on the right target
with a message that names what is wrong. Prints the mutation score (caught / total)."""

from __future__ import annotations

import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from grader.api import grade_submission
from grader.assignments import AssignmentSpec, load_assignment
from grader.result import GradeResult, Status
from grader.settings import GraderSettings
from grader.settings import settings as default_settings


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    target: str
    message: str
    checks: tuple[str, ...] = ()
    replace: dict[str, str] = field(default_factory=dict)
    swap: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MutantOutcome:
    mutant: Mutant
    caught: bool
    detail: str


def _spec(assignment: str, settings: GraderSettings | None) -> AssignmentSpec:
    return load_assignment(assignment, (settings or default_settings()).assignment_dirs)


def load_mutants(assignment: str, *, settings: GraderSettings | None = None) -> list[Mutant]:
    path = _spec(assignment, settings).folder / "mutants.toml"
    raw: dict[str, Any] = tomllib.loads(path.read_text())
    return [Mutant(name=m["name"], target=m["target"], message=m["message"], checks=tuple(m.get("checks", ())),
                   replace=dict(m.get("replace", {})), swap=dict(m.get("swap", {}))) for m in raw["mutants"]]


def reference_files(assignment: str, *, settings: GraderSettings | None = None) -> dict[str, bytes]:
    spec = _spec(assignment, settings)
    folder = spec.reference_dir
    return {name: (folder / name).read_bytes() for name in spec.files if (folder / name).is_file()}


def student_styles(assignment: str, *, settings: GraderSettings | None = None) -> dict[str, dict[str, bytes]]:
    """The student-style references of an assignment: style name -> the files of its submission."""
    spec = _spec(assignment, settings)
    root = spec.folder / "students"
    out: dict[str, dict[str, bytes]] = {}
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else ():
        wanted = [*spec.files, *(pattern for patterns in spec.aliases.values() for pattern in patterns)]
        files = {f.name: f.read_bytes() for f in sorted(folder.iterdir())
                 if f.is_file() and any(fnmatchcase(f.name, w) for w in wanted)}
        if files:
            out[folder.name] = files
    return out


def run_students(assignment: str, *, settings: GraderSettings | None = None,
                 log: Any = print) -> dict[str, GradeResult]:
    """Grade every student-style reference; each must get full marks."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style, files in student_styles(assignment, settings=settings).items():
            result = grade_submission(zip_path=_zip(Path(tmp) / f"{style}.zip", files), assignment=assignment,
                                      settings=settings)
            results[style] = result
            full = result.status is Status.GRADED and result.score == result.max_score
            log(f"  {'full marks' if full else 'NOT FULL'}  student-style {style}: "
                f"{result.score:g} / {result.max_score:g}")
            for c in result.checks:
                if not c.passed:
                    log(f"      {c.id}: {c.message[:300]}")
    return results


def mutate(files: dict[str, bytes], mutant: Mutant) -> dict[str, bytes]:
    out = dict(files)
    if mutant.replace:
        f = mutant.replace["file"]
        text = out[f].decode()
        if mutant.replace["find"] not in text:
            raise ValueError(f"mutant {mutant.name!r}: text to replace not found in {f}")
        out[f] = text.replace(mutant.replace["find"], mutant.replace["with"], 1).encode()
    if mutant.swap:
        out[mutant.swap["file"]] = files[mutant.swap["with"]]
    return out


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _points(result: GradeResult, target: str, ids: set[str]) -> float:
    return sum(c.points for c in result.checks if c.target == target and c.id in ids)


def judge_mutant(mutant: Mutant, result: GradeResult, reference: GradeResult) -> MutantOutcome:
    if result.status is not Status.GRADED:
        return MutantOutcome(mutant, False, f"not graded: {result.status} {result.message}")
    ids = {c.id for c in result.checks}  # the mutant may have been graded on a subset of the checks
    lost = _points(reference, mutant.target, ids) - _points(result, mutant.target, ids)
    failed = [c for c in result.checks if c.target == mutant.target and not c.passed]
    named = [c for c in failed if mutant.message in c.message]
    if lost <= 0:
        return MutantOutcome(mutant, False, f"{mutant.target} lost no points")
    if not named:
        msgs = "; ".join(c.message for c in failed)[:300]
        return MutantOutcome(mutant, False, f"no {mutant.target} message mentions {mutant.message!r}: {msgs}")
    return MutantOutcome(mutant, True, f"-{lost:g} on {mutant.target}: {named[0].message[:160]}")


def run_mutants(assignment: str, *, settings: GraderSettings | None = None,
                log: Any = print) -> tuple[GradeResult, list[MutantOutcome]]:
    files = reference_files(assignment, settings=settings)
    mutants = load_mutants(assignment, settings=settings)
    with tempfile.TemporaryDirectory() as tmp:
        reference = grade_submission(zip_path=_zip(Path(tmp) / "reference.zip", files), assignment=assignment,
                                     settings=settings)
        log(f"reference: {reference.status}, {reference.score:g} / {reference.max_score:g}")
        outcomes = []
        for i, m in enumerate(mutants):
            mutated = mutate(files, m)
            if not m.checks:  # numpy-only mutants: leave out what they do not need, for speed
                mutated = {k: v for k, v in mutated.items() if k == m.replace.get("file", k)}
            only = list(m.checks) or [c.id for c in _spec(assignment, settings).checks if c.target == m.target]
            result = grade_submission(zip_path=_zip(Path(tmp) / f"m{i}.zip", mutated), assignment=assignment,
                                      settings=settings, only=only)
            outcomes.append(judge_mutant(m, result, reference))
            log(f"  {'caught' if outcomes[-1].caught else 'MISSED'}  {m.name}: {outcomes[-1].detail}")
    return reference, outcomes


def run_selftest(*, assignment: str, settings: GraderSettings | None = None) -> int:
    cfg = settings or default_settings()
    def say(line: str) -> None:
        print(line, flush=True)

    reference, outcomes = run_mutants(assignment, settings=cfg, log=say)
    students = run_students(assignment, settings=cfg, log=say)
    caught = sum(o.caught for o in outcomes)
    full = reference.status is Status.GRADED and reference.score == reference.max_score
    students_full = sum(r.status is Status.GRADED and r.score == r.max_score for r in students.values())
    print(f"\n{assignment}: reference {'full marks' if full else 'NOT full marks'} "
          f"({reference.score:g} / {reference.max_score:g}); student-style references {students_full} / "
          f"{len(students)} full marks; mutation score {caught} / {len(outcomes)}")
    if not full:
        for c in reference.checks:
            if not c.passed:
                print(f"  reference fails {c.id}: {c.message}", file=sys.stderr)
    return 0 if full and caught == len(outcomes) and students_full == len(students) else 1
