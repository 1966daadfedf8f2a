"""`autograder worker`: the host's preflight checks, then `celery -A server.worker worker` with the project's
defaults."""

from __future__ import annotations

import argparse

from server.cli.common import err


def cmd_worker(args: argparse.Namespace) -> int:
    from server.settings import ServerSettings

    # Without generating one: a secret made up here would not be the web app's.
    if not ServerSettings.load(generate_secrets=False).internal_secret:
        return err("a worker needs AUTOGRADER_INTERNAL_SECRET (the web app's internal secret) and "
                   "AUTOGRADER_INTERNAL_URL (where the web app is)")
    from grader.settings import settings as grader_settings
    from server.worker_preflight import check_hidden_data, check_worker_host

    cfg = grader_settings()
    if why := check_worker_host(cfg) or check_hidden_data(cfg):
        return err(why)
    from server.worker import app, worker_argv

    app.worker_main(worker_argv(args.concurrency or None, args.hostname, args.loglevel))
    return 0
