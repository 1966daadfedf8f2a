"""Glue between Flask and the services: the per-app runtime, sessions, login, CSRF, error pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect
from flask_wtf.csrf import CSRFError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import RequestEntityTooLarge

from server.models import Assignment, User
from server.security import local_redirect
from server.services.assignments import get_assignment
from server.services.submissions import Dispatch, fmt_bytes, too_large_message
from server.settings import ServerSettings

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in."

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Runtime:
    settings: ServerSettings
    engine: Engine
    sessions: scoped_session[Session]
    dispatch: Dispatch | None = None
    celery: Any = field(default=None)

    def get_dispatch(self) -> Dispatch:
        if self.dispatch is None:
            from server.celery_app import dispatcher, make_celery

            self.celery = make_celery(self.settings)
            self.dispatch = dispatcher(self.celery)
        return self.dispatch


def runtime(app: Flask | None = None) -> Runtime:
    return cast(Runtime, (app or current_app).extensions["autograder"])


def db() -> Session:
    return runtime().sessions()


def settings() -> ServerSettings:
    return runtime().settings


def dispatch() -> Dispatch:
    return runtime().get_dispatch()


def user() -> User:
    return cast(User, current_user._get_current_object())


def assignment_or_404(name: str) -> Assignment:
    a = get_assignment(db(), name)
    if a is None:
        abort(404)
    return a


def redirect_back(target: str | None, endpoint: str, **values: Any) -> Any:
    """Redirect to `target` (taken from the request: ``?next=``, a ``back`` field) if it is a path on this
    site (security.local_redirect), else to `endpoint`'s URL."""
    return redirect(local_redirect(target) or url_for(endpoint, **values))


def instructor_required(view: F) -> F:
    """Logged-in instructors only: anonymous users go to the login page, students get 403."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_instructor:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)

    def _load(session_id: str) -> User | None:
        """The session's user if the session is still current ("ID:VERSION", see User.get_id) and the
        account active; None (logged out) for a session from before a logout or password change."""
        uid, _, version = session_id.partition(":")
        if not (uid.isdigit() and version.isdigit()):
            return None
        user = db().get(User, int(uid))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    login_manager.user_loader(_load)  # (not as a decorator: flask_login has no type hints)

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        runtime(app).sessions.remove()

    @app.after_request
    def _headers(resp: Any) -> Any:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
        return resp

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"fmt_bytes": fmt_bytes}

    def _wants_json() -> bool:
        return request.path.startswith(("/api/", "/internal/")) or request.path.endswith(".json")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_e: Exception) -> Any:
        limit = int(g.get("upload_limit") or app.config["MAX_CONTENT_LENGTH"])
        msg = too_large_message(limit)
        if _wants_json():
            return {"error": msg, "limit_bytes": limit}, 413
        return render_template("error.html", code=413, title="File too large", message=msg), 413

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError) -> Any:
        return render_template("error.html", code=400, title="Form expired",
                               message="The form was missing its security token or it expired. "
                                       "Go back, reload the page and try again."), 400

    for code, title, message in (
        (403, "Forbidden", "You do not have access to this page."),
        (404, "Not found", "There is nothing here."),
        (429, "Too many requests", "Slow down and try again later."),
    ):
        def _handler(e: Exception, code: int = code, title: str = title, message: str = message) -> Any:
            if _wants_json():
                return {"error": title.lower()}, code
            return render_template("error.html", code=code, title=title, message=message), code

        app.register_error_handler(code, _handler)
