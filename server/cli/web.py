"""`autograder web`: the production web app in gunicorn (gthread workers)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from server.cli.common import server_settings

if TYPE_CHECKING:
    from flask import Flask

KEPT_ALIVE_PER_PROCESS = 8
"""Idle kept-alive connections a web process holds beside its busy threads (gunicorn worker_connections)."""


def gunicorn_options(*, bind: str, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        # A process takes new connections only while it has a free thread (or room for one of a few
        # kept-alive ones): one whose threads slow clients hold leaves new visitors to the others.
        "worker_connections": threads + KEPT_ALIVE_PER_PROCESS,
        "worker_class": "gthread",
        "timeout": 120,
        "accesslog": "-",
    }


def cmd_web(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from server.db import upgrade

    settings = server_settings()
    upgrade(settings.database_url)
    options = gunicorn_options(bind=settings.bind if args.bind is None else args.bind,
                               workers=settings.web_workers if args.workers is None else args.workers,
                               threads=args.threads)

    class _App(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            from server.wsgi import create

            return create()

    _App().run()
    return 0
