"""What the server's commands share: the settings, a database session, one-line errors."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from grader.terminal import visible

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.settings import ServerSettings


def server_settings() -> ServerSettings:
    """The process's server settings (read once from the environment)."""
    from server.settings import settings

    return settings()


def session(settings: ServerSettings) -> Session:
    """A session on the settings' database, brought to the latest schema first."""
    from sqlalchemy.orm import Session

    from server.db import make_engine, upgrade

    upgrade(settings.database_url)
    return Session(make_engine(settings.database_url), expire_on_commit=False)


def err(msg: str) -> int:
    """Print ``autograder: MSG`` (escaped) on stderr; the exit code 1."""
    print(f"autograder: {visible(msg)}", file=sys.stderr)
    return 1
