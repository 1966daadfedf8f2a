"""Verdicts a student's later upload may reuse (the web app's side of grader.reuse).

A worker asks, before it runs a submission's checks, for earlier verdicts under their input keys (`lookup`), and
posts with the result which of its verdicts may be kept (`keep`). The rules:

- only the same student's own earlier gradings of the same assignment are offered (never another student's:
  that would tell them someone handed in the same files);
- an instructor's regrade (a row queued by a regrade) is offered nothing: it judges every check again;
- a kept verdict must be a check of the result as stored, passed or failed; its words are the stored result's;
- a submission's kept verdicts are replaced when it is graded again (a regrade's verdicts are kept anew).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from grader.result import CheckResult, CheckStatus, GradeResult
from server.models import CheckVerdict, Submission, SubmissionStatus

KEY = re.compile(r"^[0-9a-f]{64}$")
MAX_KEYS = 500
"""Keys one lookup or one result may carry (an assignment has a few dozen checks)."""
_ORIGIN = re.compile(r"^upload #(\d+)$")


def offers_reuse(sub: Submission) -> bool:
    """Whether this attempt may reuse earlier verdicts: a student's upload, not an instructor's regrade."""
    return sub.regrade_id is None


def lookup(session: Session, sub: Submission, keys: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """check id -> {"result", "metrics", "origin"} of the student's latest earlier verdict under the same key."""
    if not offers_reuse(sub):
        return {}
    wanted = {cid: k for cid, k in list(keys.items())[:MAX_KEYS] if isinstance(cid, str) and isinstance(k, str)
              and KEY.match(k)}
    if not wanted:
        return {}
    rows = session.scalars(
        select(CheckVerdict).join(Submission, Submission.id == CheckVerdict.submission_id)
        .where(CheckVerdict.user_id == sub.user_id, CheckVerdict.assignment_id == sub.assignment_id,
               CheckVerdict.key.in_(set(wanted.values())), CheckVerdict.submission_id != sub.id,
               Submission.status == SubmissionStatus.GRADED)
        .order_by(CheckVerdict.id.desc())).all()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if wanted.get(row.check_id) == row.key and row.check_id not in out:
            out[row.check_id] = {"result": json.loads(row.result_json), "metrics": json.loads(row.metrics_json),
                                 "origin": f"upload #{row.origin_upload}"}
    return out


def keep(session: Session, sub: Submission, result: GradeResult, kept: Any) -> int:
    """Replace the submission's kept verdicts of the checks of `result` (an attempt's: a phase's checks, or all)
    with those the worker named (`kept`: a list of {"check", "key", "metrics"}) that are checks of `result`, passed
    or failed; returns how many were kept. Malformed entries are skipped (a verdict not kept is only judged again
    next time)."""
    checks = {c.id: c for c in result.checks}
    session.execute(delete(CheckVerdict).where(CheckVerdict.submission_id == sub.id,
                                               CheckVerdict.check_id.in_(set(checks))))
    if not isinstance(kept, list):
        return 0
    n = 0
    seen: set[str] = set()
    for entry in kept[:MAX_KEYS]:
        if not isinstance(entry, dict):
            continue
        cid, key, metrics = entry.get("check"), entry.get("key"), entry.get("metrics", {})
        check = checks.get(cid) if isinstance(cid, str) else None
        if (check is None or cid in seen or not isinstance(key, str) or not KEY.match(key)
                or check.status not in (CheckStatus.PASSED, CheckStatus.FAILED) or not _numbers(metrics)):
            continue
        seen.add(check.id)
        origin = _ORIGIN.match(check.reused_from or "")
        session.add(CheckVerdict(
            key=key, submission_id=sub.id, user_id=sub.user_id, assignment_id=sub.assignment_id, check_id=check.id,
            origin_upload=int(origin.group(1)) if origin else sub.upload_number,
            result_json=_plain(check).model_dump_json(), metrics_json=json.dumps(metrics)))
        n += 1
    return n


def _plain(check: CheckResult) -> CheckResult:
    return check.model_copy(update={"reused_from": None})


def _numbers(metrics: Any) -> bool:
    return isinstance(metrics, dict) and len(metrics) <= 100 and all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v == v
        and abs(v) != float("inf") for k, v in metrics.items())
