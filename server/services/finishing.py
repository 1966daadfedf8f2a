"""The end of an attempt: a worker's result stored, a failed attempt retried later, or the submission given up."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from server.models import Submission, SubmissionStatus, utcnow
from server.services import reuse
from server.services.claims import held, touch_worker
from server.services.leaderboard import bump_leaderboard
from server.services.lifecycle import Why, move
from server.services.phases import out_of_attempts
from server.settings import ServerSettings

if TYPE_CHECKING:
    from server.services.dispatch import Dispatch

GAVE_UP_MESSAGE = "The grader failed on this submission (not your fault); the instructors have been told."


def _leaderboard_columns(name: str) -> set[str]:
    try:
        from grader.assignments import load_assignment

        return {c.metric for c in load_assignment(name).leaderboard_columns}
    except Exception:
        return set()


def _leaderboard_metric(name: str) -> str | None:
    try:
        from grader.assignments import load_assignment

        return load_assignment(name).leaderboard_metric
    except Exception:
        return None


def finish(session: Session, settings: ServerSettings, submission_id: int, token: str, result: dict[str, Any], *,
           hostname: str = "", phase: str = "", dispatch: Dispatch | None = None, kept: Any = None) -> str:
    """Store a worker's result (validated as a GradeResult); an engine error is retried up to the bound, a
    deterministic one is not.

    `phase` is the one the worker was told with its claim (services.phases): a graded quick phase queues the row
    again in the slow lane (its wake-up sent with `dispatch`, else by the sweeper), a slow phase's result is merged
    with the kept quick one; a result without a phase is a whole grading. `kept` names the verdicts of this
    result a later upload may reuse (services.reuse.keep)."""
    from grader.result import GradeResult, Status
    from server.services.dispatch import send
    from server.services.lanes import Lane
    from server.services.phases import Phase, merge

    sub = held(session, submission_id, token)
    try:
        gr = GradeResult.from_dict(result)
    except (KeyError, TypeError, ValueError) as exc:
        return fail(session, settings, submission_id, token, reason=f"malformed result: {exc}")
    if gr.status is Status.ERROR and gr.deterministic:  # another attempt would fail the same way (a bad spec)
        give_up(session, sub, f"attempt {sub.attempts}: grader error (not retried): {gr.message}")
        return sub.status
    if gr.status is Status.ERROR:
        return fail(session, settings, submission_id, token, reason=f"grader error: {gr.message}")
    if gr.status is Status.GRADED and phase == Phase.QUICK.value and sub.lane == Lane.QUICK.value:
        move(sub, SubmissionStatus.QUEUED, reason=Why.NEXT_PHASE, lane=Lane.SLOW.value, result_json=gr.to_json())
        reuse.keep(session, sub, gr, kept)
        touch_worker(session, hostname, None)
        session.commit()
        if dispatch is not None:
            send(session, dispatch, sub.id, lane=Lane.SLOW.value)
        return sub.status
    own = gr  # this attempt's checks (a slow phase's: the slow ones only)
    if gr.status is Status.GRADED and sub.lane == Lane.SLOW.value:
        gr = merge(sub, gr)
    metric = _leaderboard_metric(sub.assignment.name)
    move(sub, SubmissionStatus(gr.status.value), reason=Why.FINISHED)
    sub.result_json = gr.to_json()
    sub.score = gr.score if gr.status is Status.GRADED else None
    sub.max_score = gr.max_score
    sub.passed = gr.passed if gr.status is Status.GRADED else False
    value = gr.metrics.get(metric) if metric else None
    sub.lb_value = float(value) if gr.status is Status.GRADED and value is not None and value == value else None
    wanted = _leaderboard_columns(sub.assignment.name)
    sub.lb_metrics = json.dumps({k: v for k, v in gr.to_dict()["metrics"].items() if k in wanted and v is not None}) \
        if sub.lb_value is not None else None
    bump_leaderboard(session, sub.assignment_id, sub)
    reuse.keep(session, sub, own, kept if gr.status is Status.GRADED else None)
    sub.message = gr.message
    touch_worker(session, hostname, None)
    session.commit()
    return sub.status


def fail(session: Session, settings: ServerSettings, submission_id: int, token: str, *, reason: str) -> str:
    """A grading attempt failed for reasons not the student's: queued for a retry after the backoff (which the
    sweeper sends, services.retries), or error once the attempts are spent."""
    from server.services.retries import backoff

    sub = held(session, submission_id, token)
    sub.error_reason = append_reason(sub.error_reason, f"attempt {sub.attempts}: {reason}")
    if out_of_attempts(sub, settings.max_attempts):
        give_up(session, sub, "")
        return sub.status
    now = utcnow()
    move(sub, SubmissionStatus.QUEUED, reason=Why.RETRY, now=now, retry_at=now + backoff(sub.attempts))
    session.commit()
    return sub.status


def append_reason(old: str, new: str) -> str:
    return (old + "\n" + new).strip()[-8000:]


def give_up(session: Session, sub: Submission, reason: str) -> None:
    if reason:
        sub.error_reason = append_reason(sub.error_reason, reason)
    move(sub, SubmissionStatus.ERROR, reason=Why.GAVE_UP, message=GAVE_UP_MESSAGE)
    session.commit()
