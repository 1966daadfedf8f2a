"""Background sweep in the web process: requeue submissions whose worker died, resend lost messages."""

from __future__ import annotations

import logging
import threading

from flask import Flask

log = logging.getLogger(__name__)


def sweep_once(app: Flask) -> dict[str, int]:
    from server import web
    from server.services.retries import sweep

    with app.app_context():
        rt = web.runtime(app)
        return sweep(rt.sessions(), rt.settings, rt.get_dispatch())


def start_sweeper(app: Flask) -> threading.Event:
    """Run `sweep_once` every `sweep_interval_seconds` in a daemon thread; set the returned event to stop."""
    from server import web

    stop = threading.Event()
    every = web.runtime(app).settings.sweep_interval_seconds

    def loop() -> None:
        while not stop.wait(every):
            try:
                counts = sweep_once(app)
                if any(counts.values()):
                    log.warning("sweeper: %s", counts)
            except Exception:
                log.exception("sweeper failed")

    threading.Thread(target=loop, name="autograder-sweeper", daemon=True).start()
    return stop
