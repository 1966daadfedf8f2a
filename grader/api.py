"""The engine's library entry point: what the CLI and the Celery task call."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from grader.result import CheckResult, GradeResult
from grader.reuse import ReuseStore
from grader.settings import GraderSettings

ProgressCallback = Callable[[str], None]
"""Called with the id of the check being run (e.g. "numpy_nn.Linear.backward") as grading proceeds."""
VerdictCallback = Callable[[CheckResult], None]
"""Called with each check's result as soon as it is judged (the final result may still amend a message)."""


def grade_submission(
    *,
    zip_path: Path,
    assignment: str,
    settings: GraderSettings | None = None,
    progress: ProgressCallback | None = None,
    only: Collection[str] | None = None,
    on_verdict: VerdictCallback | None = None,
    reuse: ReuseStore | None = None,
) -> GradeResult:
    """Grade one uploaded zip against an assignment spec and return the typed result.

    Never raises for anything the student did: unusable uploads come back with status "rejected",
    broken code as failed checks. Host problems (no sandbox limits available, hidden data missing)
    come back with status "error" and a message for the instructor; so does a spec that cannot be
    graded with (an unknown check kind, params that do not validate, a check its kind cannot plan),
    marked `deterministic` as grading again would fail the same way. `only` restricts grading to the
    checks with these ids (e.g. to regrade one check). `on_verdict` streams each check's result as soon as
    it is judged (grader.engine.run_grading says what it may differ in from the final result). `reuse` serves
    earlier verdicts of checks whose inputs are byte-identical (grader.reuse) and keeps this grading's.
    """
    from grader.engine import run_grading

    return run_grading(zip_path=zip_path, assignment=assignment, settings=settings, progress=progress, only=only,
                       on_verdict=on_verdict, reuse=reuse)
