"""WSGI entry point for external servers: ``gunicorn 'server.wsgi:create()'`` (prefer ``autograder web``)."""

from __future__ import annotations

from flask import Flask


def create() -> Flask:
    from server import create_app
    from server.sweeper import start_sweeper

    app = create_app()
    start_sweeper(app)
    return app
