"""A student's upload is graded in two phases: the quick checks, then the slow ones (hidden-set accuracy).

Which checks are slow is the spec's (grader.assignments.spec.CheckSpec.slow: the kind's default, e.g. accuracy on
a hidden set, or the check's own `slow`). The row's lane says which phase it is in:

- `quick` lane, an upload (no regrade) of an assignment with quick and slow checks: the quick phase, only the quick
  checks (the engine's `only=`). When it ends graded, the row is queued again (lifecycle Why.NEXT_PHASE) in the
  `slow` lane with the quick phase's result kept in `result_json` (shown as `partial_checks`, not as the result,
  until the merge); its attempts go on counting (attempt 3 may be the slow phase's first), so that what the
  instructors read ("attempt 1: worker went silent") names one attempt; ended rejected or error, it is final (or
  retried) as any grading. `out_of_attempts` gives each phase `max_attempts`: a slow phase may go on to twice that.
- `slow` lane: the slow phase, only the slow checks; its result is merged with the kept one into one schema-1
  GradeResult of every check (GradeResult.merged: spec order, metrics united, timings summed). A failed attempt is
  retried in the slow lane (services.retries), so only the slow checks run again and the quick result stays.
- anything else is one whole grading: an assignment whose checks are all quick or all slow, an instructor's regrade
  of one submission (quick lane: the instructor waits for one complete new report, and the old report stays
  shown until it arrives instead of being replaced by half a new one), a regrade of many (rerun lane).

The worker is told the phase and the checks with its claim and says which phase its result is of: a result
without a phase (a worker of an earlier version, which grades everything) is a whole grading.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import and_

from server.models import Submission, SubmissionStatus
from server.services.lanes import Lane

if TYPE_CHECKING:
    from grader.assignments import AssignmentSpec
    from grader.result import GradeResult


def out_of_attempts(sub: Submission, max_attempts: int) -> bool:
    """Whether the row has used up its attempts: `max_attempts` per phase (the slow lane's count includes its
    quick phase's)."""
    return sub.attempts >= max_attempts * (2 if sub.lane == Lane.SLOW.value else 1)


class Phase(StrEnum):
    ALL = "all"
    """One whole grading."""
    QUICK = "quick"
    """The quick checks of a two-phase grading."""
    SLOW = "slow"
    """The slow checks of a two-phase grading, after its quick phase."""


def spec_of(sub: Submission) -> AssignmentSpec | None:
    try:
        from grader.assignments import load_assignment

        return load_assignment(sub.assignment.name)
    except Exception:  # an assignment the grader does not know (any more): the worker reports it
        return None


def phase_of(sub: Submission) -> Phase:
    """The phase the row's next (or current) attempt grades."""
    if sub.lane == Lane.SLOW.value:
        return Phase.SLOW
    if sub.lane == Lane.QUICK.value and sub.regrade_id is None:
        spec = spec_of(sub)
        if spec is not None and spec.two_phases:
            return Phase.QUICK
    return Phase.ALL


def checks_of(sub: Submission, phase: Phase) -> list[str] | None:
    """The check ids the worker grades in `phase` (None: all)."""
    spec = spec_of(sub) if phase is not Phase.ALL else None
    if spec is None:
        return None
    return list(spec.quick_ids if phase is Phase.QUICK else spec.slow_ids)


HOLDS_QUICK_RESULT = and_(Submission.lane == Lane.SLOW.value,
                          Submission.status.in_([SubmissionStatus.QUEUED, SubmissionStatus.RUNNING,
                                                 SubmissionStatus.ERROR]))
"""Rows whose result_json is their quick phase's result, not a final one (the slow phase waits, runs or failed)."""


def holds_quick_result(sub: Submission) -> bool:
    return sub.lane == Lane.SLOW.value and sub.state not in (SubmissionStatus.GRADED, SubmissionStatus.REJECTED)


def quick_result(sub: Submission) -> GradeResult | None:
    """The kept result of the quick phase of a row in its slow phase (None otherwise or if unreadable)."""
    if not holds_quick_result(sub) or not sub.result_json:
        return None
    from grader.result import GradeResult

    try:
        return GradeResult.from_json(sub.result_json)
    except (KeyError, TypeError, ValueError):
        return None


def kept_checks(sub: Submission) -> list[dict[str, object]]:
    """The quick phase's verdicts, as the JSON's partial_checks show them while the slow phase waits or runs."""
    kept = quick_result(sub)
    return [c.model_dump(mode="json") for c in kept.checks] if kept is not None else []


def merge(sub: Submission, slow: GradeResult) -> GradeResult:
    """The slow phase's graded result with the kept quick one: one result of every check."""
    from grader.result import GradeResult

    kept = quick_result(sub)
    spec = spec_of(sub)
    order = tuple(c.id for c in spec.checks) if spec is not None else ()
    required = spec.required_checks if spec is not None else None
    return GradeResult.merged([kept, slow] if kept is not None else [slow], order=order, required=required)
