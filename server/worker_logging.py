"""Structured worker logs: one JSON object per line, with the submission id on every line of a grading.

`install()` (called by `autograder worker` before Celery starts) connects Celery signals: its log
handlers get a JSON formatter and a filter that adds the submission being graded in this process
(prefork: one grading at a time per process, so a process-wide value is right, threads included), and
the start and end of every grading are logged with their outcome.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("autograder.grading")

_current: dict[str, Any] = {"submission_id": None, "task_id": None, "started": 0.0}
"""The grading running in this process (set and cleared by the task signals)."""


class SubmissionFilter(logging.Filter):
    """Adds `submission_id` and `task_id` (None outside a grading) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "submission_id", None) is None:
            record.submission_id = _current["submission_id"]
        if getattr(record, "task_id", None) is None:
            record.task_id = _current["task_id"]
        return True


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "process", "submission_id", "task_id", "message"[, "exc"]} per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "process": record.processName,
            "submission_id": getattr(record, "submission_id", None), "task_id": getattr(record, "task_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def structure(logger: logging.Logger) -> None:
    """Give every handler of `logger` the JSON formatter and the submission filter (idempotent)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, SubmissionFilter) for f in handler.filters):
            handler.addFilter(SubmissionFilter())


def _submission_of(args: Any, kwargs: Any) -> int | None:
    value = (args or [None])[0] if args else (kwargs or {}).get("submission_id")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def now_grading(submission_id: int) -> None:
    """The wake-up's claim chose this submission: the log lines from now on name it."""
    if _current["submission_id"] is not None:
        _current["submission_id"] = submission_id


def install() -> None:
    """Connect the Celery signals (the worker process and its pool children inherit them)."""
    from celery import signals

    from server.celery_app import TASK_NAME

    @signals.after_setup_logger.connect(weak=False)
    def _root(logger: logging.Logger | None = None, **_kw: Any) -> None:
        structure(logger or logging.getLogger())

    @signals.after_setup_task_logger.connect(weak=False)
    def _task(logger: logging.Logger | None = None, **_kw: Any) -> None:
        if logger is not None:
            structure(logger)

    @signals.task_prerun.connect(weak=False)
    def _start(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None,
               **_kw: Any) -> None:
        if getattr(task, "name", "") != TASK_NAME:
            return
        _current.update(submission_id=_submission_of(args, kwargs), task_id=task_id, started=time.monotonic())
        log.info("grading started")

    @signals.task_postrun.connect(weak=False)
    def _end(task: Any = None, retval: Any = None, state: str | None = None, **_kw: Any) -> None:
        if getattr(task, "name", "") != TASK_NAME:
            return
        log.info("grading ended (%s) after %.1f s: %s", state, time.monotonic() - _current["started"], retval)
        _current.update(submission_id=None, task_id=None, started=0.0)
