"""Celery tasks: thin, take ids, and talk to the web app over the authenticated internal endpoints."""

from __future__ import annotations

from celery import shared_task

from server.celery_app import TASK_NAME
from server.worker_client import InternalClient, run_next_job


@shared_task(bind=True, name=TASK_NAME, acks_late=True, reject_on_worker_lost=False, ignore_result=False)
def grade(self, submission_id: int, lane: str = "quick") -> str:  # type: ignore[no-untyped-def]
    """A wake-up: grade the best waiting submission (one attempt; by lane and fair share, decided by the web
    app's claim, services.lanes), not necessarily `submission_id`, which the message was sent for (logs only).
    The task's final state is SUCCESS with a one-line outcome.

    Never retried here, nor redelivered when its process dies: another attempt is the sweeper's decision alone
    (server/services/retries.py). Progress goes to the web app only (the submission row), not to the task state.
    """
    conf = self.app.conf.autograder
    client = InternalClient(conf["internal_url"], conf["internal_secret"], hostname=self.request.hostname or "")
    return run_next_job(client, heartbeat_seconds=float(conf["heartbeat_seconds"]), task_id=self.request.id or "",
                        sent_for=int(submission_id), lane=str(lane))
