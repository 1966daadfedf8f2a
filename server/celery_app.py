"""The Celery app: built from settings, shared by the web app (to send) and the workers (to grade).

Workers need only the broker URL and the internal URL + secret: they fetch zips from the web app and
post progress and results back (no database credentials, no shared disk).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from server.settings import ServerSettings

TASK_NAME = "autograder.grade"
QUEUE = "quick"
"""The default queue: students' uploads. The lanes (server.services.lanes) are queues of the same names."""
QUEUES = ("quick", "slow", "rerun")
"""quick: uploads' quick phase (and whole gradings of one submission); slow: their slow phase (hidden-set accuracy);
rerun: an instructor's regrade of many (server.services.lanes, server.services.phases)."""
HARD_AFTER_SOFT_SECONDS = 120.0
"""The hard time limit of the grading task comes this long after the soft one (time to report the failure)."""


def result_backend_for(broker_url: str) -> str:
    """Task states go where the messages go, so workers need no extra service or credentials: the same
    Redis, or for the embedded SQLite broker a SQLite file beside it (Celery's database backend; a
    file of its own so that state writes never wait on the broker's locks)."""
    if broker_url.startswith("sqla+sqlite:///"):
        return f"db+sqlite:///{PurePosixPath(broker_url.removeprefix('sqla+sqlite:///')).parent / 'task-states.sqlite3'}"
    if broker_url.startswith("sqla+"):
        return "db+" + broker_url.removeprefix("sqla+")
    return broker_url


def celery_config(settings: ServerSettings) -> dict[str, Any]:
    """The Celery configuration of the web app (which sends) and of the workers (`server.worker`)."""
    transport: dict[str, Any] = {}
    events = settings.broker_url.startswith(("redis", "rediss"))
    if events:
        transport["visibility_timeout"] = settings.visibility_timeout
    # The SQLAlchemy transport hands every transport option to create_engine(): pass none there.
    return dict(
        broker_url=settings.broker_url,
        # Late acks with prefetch 1: a worker process reserves one message at a time. A grading process that dies
        # does not get its message redelivered (reject_on_worker_lost off): the lease runs out and the sweeper,
        # the one retry layer (services.retries), grades it again with the attempt counted.
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        task_ignore_result=True,  # the grading task opts in (its one-line outcome)
        result_backend=result_backend_for(settings.broker_url),
        result_expires=7 * 24 * 3600,
        result_backend_always_retry=False,
        redis_socket_timeout=10,
        redis_socket_connect_timeout=5,
        task_default_queue=QUEUE,
        task_routes={TASK_NAME: {"queue": QUEUE}},
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        # An upload must not hang on a broker that is down: fail fast, the sweeper sends it later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        broker_connection_timeout=5,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        # Task events (sent, received, started, succeeded, ...) for Flower and `celery events`. Only on Redis:
        # the embedded SQLite transport has no fan-out between processes, so nobody could receive them.
        worker_send_task_events=events,
        task_send_sent_event=events,
        # Above the longest grading (the sandbox's wall limit, the follow-up round, the reference runs): the
        # soft limit fails the attempt with a reason (counted like any failure), the hard one kills the child.
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_soft_time_limit + HARD_AFTER_SOFT_SECONDS,
        task_serializer="json",
        accept_content=["json"],
        autograder={
            "internal_url": settings.internal_url,
            "internal_secret": settings.internal_secret,
            "heartbeat_seconds": settings.heartbeat_seconds,
        },
    )


def make_celery(settings: ServerSettings) -> Celery:
    """The web app's Celery app (it sends "grade N" and reads task states), configured at once."""
    from celery import Celery

    app = Celery("autograder", include=["server.tasks"])
    app.conf.update(celery_config(settings))
    app.set_default()
    return app


def dispatcher(celery: Celery):  # type: ignore[no-untyped-def]
    """A `Dispatch` callable sending a wake-up (sent for submission N, in its lane's queue) through `celery`."""

    def dispatch(submission_id: int, delay: float = 0.0, lane: str = QUEUE) -> None:
        lane = lane if lane in QUEUES else QUEUE
        celery.send_task(TASK_NAME, args=[submission_id, lane], queue=lane, countdown=delay or None)

    return dispatch
