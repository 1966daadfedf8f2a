"""The workers' Celery app: `celery -A server.worker worker|inspect ping|events` and `autograder worker`.

Importing this module builds the app object only; the settings are read when Celery first needs its
configuration (`on_configure`). The signal handlers below run in worker processes only.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery, signals

app = Celery("autograder", include=["server.tasks"])

HEARTBEAT_SECONDS = 15.0
_stop_heartbeat = threading.Event()


@app.on_configure.connect
def _configure(sender: Celery, **_kw: Any) -> None:
    from server.celery_app import celery_config
    from server.settings import settings

    sender.config_from_object(celery_config(settings()))


def worker_argv(concurrency: int | None, hostname: str | None, loglevel: str, queues: str | None = None) -> list[str]:
    """`celery worker` arguments of `autograder worker`: the lanes' queues of AUTOGRADER_WORKER_QUEUES."""
    if queues is None:
        from server.settings import settings

        queues = settings().worker_queues
    argv = ["worker", f"--loglevel={loglevel}", "-Q", queues, "--pool=prefork", "--without-gossip",
            "--without-mingle"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    return argv


@signals.celeryd_init.connect
def _structured_logs(sender: Any = None, **_kw: Any) -> None:
    """JSON log lines with the submission id on every line of a grading."""
    from server.worker_logging import install

    install()


@signals.worker_ready.connect
def _heartbeat(sender: Any = None, **_kw: Any) -> None:
    """Tells the web app this worker is alive (for the instructors' queue view)."""
    from server.worker_client import InternalClient, worker_heartbeat_loop

    conf = app.conf.autograder
    client = InternalClient(conf["internal_url"], conf["internal_secret"], hostname=getattr(sender, "hostname", "") or "")
    threading.Thread(target=worker_heartbeat_loop, args=(client, HEARTBEAT_SECONDS, _stop_heartbeat), daemon=True,
                     name="worker-heartbeat").start()


@signals.worker_shutdown.connect
def _stop(**_kw: Any) -> None:
    _stop_heartbeat.set()
