"""`autograder` command line: a thin wrapper over keyword-only library functions.

Grading commands live here; the server's commands (serve, web, worker, users, token, submit) are
registered by `server.cli.register` when the server extras are installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_grade(args: argparse.Namespace) -> int:
    from grader.api import grade_submission
    from grader.report import render_text

    result = grade_submission(zip_path=Path(args.zip), assignment=args.assignment)
    if args.json:
        sys.stdout.write(result.to_json() + "\n")
    else:
        sys.stdout.write(render_text(result))
    return result.exit_code


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from grader.data import DataUnavailable, prepare
    from grader.settings import settings

    try:
        prepare(settings=settings(), force=args.force, sets=args.sets or None, log=lambda m: print(m, file=sys.stderr))
    except DataUnavailable as exc:
        print(f"autograder data prepare: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an unknown set name
        print(f"autograder data prepare: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_data_status(args: argparse.Namespace) -> int:
    from grader.data.status import status
    from grader.settings import settings

    states = status(settings())
    for s in states:
        print(s.line())
    return 0 if all(s.ready for s in states) else 1


def _cmd_assignment_list(args: argparse.Namespace) -> int:
    from grader.assignments import list_assignments, load_assignment

    for name in list_assignments():
        spec = load_assignment(name)
        print(f"{name}\t{spec.max_score:g} points\t{spec.title}")
    return 0


def _cmd_assignment_check(args: argparse.Namespace) -> int:
    from grader.assignments.check import check_folder, find_folder
    from grader.settings import settings

    try:
        folder = find_folder(args.name, settings().assignment_dirs)
    except LookupError as exc:
        print(f"autograder assignment check: {exc}", file=sys.stderr)
        return 1
    problems = check_folder(folder)
    for p in problems:
        print(f"  {p}")
    print(f"{folder}: {len(problems)} problem{'' if len(problems) == 1 else 's'}" if problems else f"{folder}: ok")
    return 1 if problems else 0


def _cmd_assignment_selftest(args: argparse.Namespace) -> int:
    from grader.selftest import run_selftest

    return run_selftest(assignment=args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="nn-autograder: grade neural-network homework.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one submission zip (no server needed)")
    g.add_argument("zip", help="the student's zip file")
    g.add_argument("--assignment", "-a", default="rpz-cnn", help="assignment name (default: rpz-cnn)")
    g.add_argument("--json", action="store_true", help="print the result JSON only")
    g.set_defaults(func=_cmd_grade)

    d = sub.add_parser("data", help="hidden test data")
    dsub = d.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("prepare", help="build hidden_data/ from the real sources")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="prepare only this registered set (repeatable; default: all)")
    p.set_defaults(func=_cmd_data_prepare)
    dsub.add_parser("status", help="each registered hidden set: ready, or what to do (exit 1 unless all ready)"
                    ).set_defaults(func=_cmd_data_status)

    a = sub.add_parser("assignment", help="assignment specs")
    asub = a.add_subparsers(dest="assignment_command", required=True)
    asub.add_parser("list", help="list the assignments").set_defaults(func=_cmd_assignment_list)
    ck = asub.add_parser("check", help="validate an assignment's spec and files without grading")
    ck.add_argument("name", help="an assignment's name, or a folder holding an assignment.toml")
    ck.set_defaults(func=_cmd_assignment_check)
    st = asub.add_parser("selftest", help="grade the reference solution and its mutants")
    st.add_argument("name")
    st.set_defaults(func=_cmd_assignment_selftest)

    try:
        from server.cli import register
    except ImportError:  # server extras not installed: grading commands only
        pass
    else:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from grader.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:  # a bad AUTOGRADER_* value or secret file: one line naming it, no traceback
        print(f"autograder: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
