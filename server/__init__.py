"""nn-autograder web server: Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from server.services.submissions import Dispatch
    from server.settings import ServerSettings


def create_app(test_config: Mapping[str, Any] | None = None, *, settings: ServerSettings | None = None,
               dispatch: Dispatch | None = None) -> Flask:
    """Build the web app. `settings` default to the environment's (read once); `dispatch` to Celery."""
    from flask import Flask

    from server import web
    from server.blueprints import api, auth, health, instructor, internal, leaderboard, metrics, submissions
    from server.blueprints import observability as obs
    from server.db import make_engine, make_session_factory
    from server.settings import settings as env_settings

    s = settings or env_settings()
    app = Flask(__name__, instance_path=str(s.instance_dir), instance_relative_config=False)
    app.config.from_mapping(s.flask_config())
    if test_config:
        app.config.from_mapping(test_config)
    s.upload_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    engine = make_engine(s.database_url)
    app.extensions["autograder"] = web.Runtime(settings=s, engine=engine, sessions=make_session_factory(engine),
                                               dispatch=dispatch)
    web.init_app(app)
    for bp in (auth.bp, submissions.bp, leaderboard.bp, instructor.bp, api.bp, internal.bp, metrics.bp, health.bp, obs.bp):
        app.register_blueprint(bp)
    web.csrf.exempt(api.bp)
    web.csrf.exempt(internal.bp)
    web.csrf.exempt(metrics.bp)
    if s.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = s.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    return app
