"""Celery tasks: thin, take ids, and talk to the web app over the authenticated internal endpoints."""

from __future__ import annotations

from celery import shared_task

from server.celery_app import PROGRESS, TASK_NAME
from server.worker_client import InternalClient, run_grading_job


@shared_task(bind=True, name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=False)
def grade(self, submission_id: int) -> str:  # type: ignore[no-untyped-def]
    """Grade one submission by id; while it runs the task's state is PROGRESS with the current check.

    Not retried here: the client retries what the web app may answer later (`WebUnavailable` once it gives up),
    and the web app's sweeper sends again what stays queued or whose lease runs out.
    """
    conf = self.app.conf.autograder
    sid = int(submission_id)
    client = InternalClient(conf["internal_url"], conf["internal_secret"], hostname=self.request.hostname or "",
                            exclusive=bool(conf.get("exclusive", False)))

    def on_check(check_id: str, started: int) -> None:
        self.update_state(state=PROGRESS, meta={"submission_id": sid, "check": check_id, "checks_started": started})

    return run_grading_job(client, sid, heartbeat_seconds=float(conf["heartbeat_seconds"]),
                           task_id=self.request.id or "", on_check=on_check)
