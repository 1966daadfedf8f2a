"""Server commands of the `autograder` CLI: serve, web, worker, db, users, token, submit,
similarity.

Registered by grader.cli (`register`); Flask, Celery, SQLAlchemy and requests are imported inside the commands
only. By concern:

- commands.py: the argparse subcommands and their flags (`register`);
- accounts.py: `db upgrade`, `users import|add`, `token create`;
- worker.py: `autograder worker` (preflight checks, then Celery's worker);
- web.py: `autograder web` (the gunicorn application);
- serve.py: `autograder serve` (the embedded web app, sweeper and a supervised worker process);
- submit.py: `autograder submit` (the HTTP client of the JSON API);
- similarity.py: `autograder similarity` (similar pairs of submitted code, CSV export);
- common.py: what they share (settings, a database session, error lines).

Text that users or students control (user names, the server's messages, grading reports) is printed through
`grader.terminal.visible` (control characters and bidi overrides shown escaped).
"""

from server.cli.commands import register

__all__ = ["register"]
