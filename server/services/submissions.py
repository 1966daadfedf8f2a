"""Compatibility re-exports: the submission services live in modules named for what they hold.

uploads (upload policy, submit), dispatch (hand "grade N" to the broker), visibility (who sees what, the
state the pages show), queue (positions, overview, search), claims (attempt tokens, leases, progress),
finishing (results, failed attempts, giving up), retries (the sweep), regrades, and the leaderboard's
invalidation in leaderboard. New code imports those modules; this one keeps old call sites working.
"""

from __future__ import annotations

from server.services.claims import (
    Claim,
    Conflict,
    claim,
    claim_next,
    held,
    progress,
    worker_heartbeat,
    zip_path_for_claim,
)
from server.services.dispatch import Dispatch, send
from server.services.finishing import fail, finish, give_up
from server.services.leaderboard import bump_leaderboard
from server.services.queue import SubmissionFilter, queue_overview, queue_position, search, status_counts
from server.services.regrades import INLINE_SENDS, latest_regrades, regrade, regrade_ids, regrade_progress
from server.services.retries import sweep
from server.services.uploads import (
    UploadRefused,
    check_can_upload,
    fmt_bytes,
    submit_upload,
    too_large_message,
    uploads_used,
)
from server.services.visibility import Forbidden, get_submission, history, state_dict, visible_submission

__all__ = [
    "INLINE_SENDS", "Claim", "Conflict", "Dispatch", "Forbidden", "SubmissionFilter", "UploadRefused",
    "bump_leaderboard", "check_can_upload", "claim", "claim_next", "fail", "finish", "fmt_bytes", "get_submission", "give_up",
    "held", "history", "latest_regrades", "progress", "queue_overview", "queue_position", "regrade", "regrade_ids",
    "regrade_progress", "search", "send", "state_dict", "status_counts", "submit_upload", "sweep",
    "too_large_message", "uploads_used", "visible_submission", "worker_heartbeat", "zip_path_for_claim",
]
