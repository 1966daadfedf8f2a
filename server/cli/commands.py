"""The server's subcommands of `autograder` and their flags; each runs a `cmd_*` function of this package."""

from __future__ import annotations

from typing import Any

from server.cli.accounts import cmd_db_upgrade, cmd_token_create, cmd_users_add, cmd_users_import
from server.cli.serve import cmd_serve
from server.cli.similarity import cmd_similarity
from server.cli.submit import cmd_submit
from server.cli.web import cmd_web
from server.cli.worker import cmd_worker


def register(sub: Any) -> None:
    """Add the server subcommands to the `autograder` argparse subparsers object.

    Defaults that come from settings (``--bind``, ``--workers``, ``--token``) are resolved when the command
    runs, so that building the parser reads no environment."""
    p = sub.add_parser("serve", help="run everything locally: web app, one worker, built-in broker (no services)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--no-prepare", action="store_true", help="do not prepare the hidden data")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("web", help="production web app (gunicorn)")
    p.add_argument("--bind", default=None, help="address to listen on (default: $AUTOGRADER_BIND or 127.0.0.1:8000)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: $AUTOGRADER_WEB_WORKERS or 2)")
    p.add_argument("--threads", type=int, default=32,
                   help="threads per process: requests one process serves at once (default 32)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("worker", help="grading worker (Celery); needs only the broker and the internal URL + secret")
    p.add_argument("--concurrency", type=int, default=None, help="parallel gradings (default: settings, 1)")
    p.add_argument("--hostname", default=None)
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="apply the Alembic migrations").set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("users", help="accounts")
    usub = p.add_subparsers(dest="users_command", required=True)
    i = usub.add_parser("import", help="import a roster CSV (username,name,email,role); prints first-login links")
    i.add_argument("csv")
    i.add_argument("--base-url", default="http://127.0.0.1:5000")
    i.set_defaults(func=cmd_users_import)
    a = usub.add_parser("add", help="add one user; prints a first-login link unless --password is given")
    a.add_argument("name")
    a.add_argument("--role", choices=["student", "instructor"], default="student")
    a.add_argument("--password", default=None)
    a.add_argument("--full-name", default="")
    a.add_argument("--base-url", default="http://127.0.0.1:5000")
    a.set_defaults(func=cmd_users_add)

    p = sub.add_parser("token", help="API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    t = tsub.add_parser("create", help="create an API token for a user and print it")
    t.add_argument("name", help="username")
    t.add_argument("--days", type=int, default=180, help="validity in days (0: no expiry)")
    t.set_defaults(func=cmd_token_create)

    p = sub.add_parser("submit", help="upload a zip to a server, wait for grading, print the report")
    p.add_argument("zip")
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:5000")
    p.add_argument("--token", default=None, help="API token (or $AUTOGRADER_TOKEN / $AUTOGRADER_TOKEN_FILE)")
    p.add_argument("--assignment", "-a", default="rpz-cnn")
    p.add_argument("--json", action="store_true", help="print the result JSON only")
    p.add_argument("--no-wait", action="store_true", help="print the submission id and exit")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("similarity", help="pairs of students whose submitted code is similar (winnowing)")
    p.add_argument("assignment", help="assignment name, e.g. rpz-cnn")
    p.add_argument("--csv", default=None, help="write every pair to this CSV file")
    p.add_argument("--threshold", type=float, default=0.7, help="lowest score reported (default 0.7)")
    p.add_argument("--top", type=int, default=20, help="pairs printed (default 20)")
    p.add_argument("--progress", action="store_true", help="print progress on stderr")
    p.set_defaults(func=cmd_similarity)


__all__ = ["register"]
