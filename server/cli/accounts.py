"""`autograder db upgrade`, `users import|add`, `token create`: the database and its accounts."""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.terminal import visible
from server.cli.common import err, server_settings, session


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from server.db import upgrade

    upgrade(server_settings().database_url)
    print("database is at the latest schema")
    return 0


def cmd_users_import(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = session(server_settings())
    try:
        imported = accounts.import_roster(s, Path(args.csv).read_text(encoding="utf-8"))
    except (OSError, accounts.AccountError) as exc:
        return err(str(exc))
    print("username,role,status,first_login_link")
    for u in imported:
        link = f"{args.base_url.rstrip('/')}/auth/setup/{u.setup_token}" if u.setup_token else ""
        print(",".join(visible(v) for v in (u.user.username, u.user.role, "created" if u.created else "updated", link)))
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = session(server_settings())
    try:
        user, token = accounts.add_user(s, args.name, role=args.role, name=args.full_name, password=args.password)
        s.commit()
    except accounts.AccountError as exc:
        return err(str(exc))
    print(f"created {args.role} {visible(user.username)}")
    if token:
        print(f"first-login link: {args.base_url.rstrip('/')}/auth/setup/{token}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from server.services import accounts

    s = session(server_settings())
    user = accounts.find_user(s, args.name)
    if user is None:
        return err(f"no user {args.name!r}")
    print(accounts.create_api_token(s, user, name="cli", days=args.days or None))
    return 0
