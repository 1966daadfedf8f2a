"""Blueprints: auth, submissions, leaderboard, instructor, api, internal.

Typed wrappers of the untyped decorators the views use (Flask-Login, Flask-WTF), so views stay typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    """flask_login.login_required, typed."""
    from flask_login import login_required as untyped

    return cast(F, untyped(view))


def csrf_exempt(view: F) -> F:
    """The app's CSRFProtect.exempt, typed (for the multipart upload that authenticates by session and token)."""
    from server import web

    return cast(F, web.csrf.exempt(view))
