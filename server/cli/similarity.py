"""`autograder similarity ASSIGNMENT [--csv FILE] [--threshold X] [--top N]`: similar pairs of submitted code.

Compares each student's latest graded submission (server.services.similarity) and prints the best pairs; user
names and file names are students' text, printed through `visible`. ``--csv`` writes every pair (UTF-8,
formula-safe cells)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.terminal import visible
from server.cli.common import err, server_settings, session


def cmd_similarity(args: argparse.Namespace) -> int:
    from grader.assignments import UnknownAssignment
    from grader.similarity import Params
    from server.services import similarity
    from server.services.assignments import get_assignment

    try:
        params = Params(threshold=args.threshold)
    except ValueError as exc:
        return err(str(exc))
    settings = server_settings()
    s = session(settings)
    assignment = get_assignment(s, args.assignment)
    if assignment is None:
        return err(f"no assignment {args.assignment!r} in the database")

    def progress(stage: str, done: int, total: int) -> None:
        if args.progress and (done == total or done % 100 == 0):
            print(f"{stage} {done}/{total}", file=sys.stderr)

    try:
        report = similarity.run(s, settings, assignment, params=params, progress=progress)
    except UnknownAssignment as exc:
        return err(str(exc))
    for username, why in report.skipped:
        print(visible(f"skipped {username}: {why}"), file=sys.stderr)
    print(f"{report.compared} students compared, {len(report.pairs)} pairs at or above {params.threshold}")
    for p in report.pairs[: args.top]:
        where = "; ".join(f"{f.name} {f.score:.2f} lines {similarity.ranges(f.lines_a)} ~ "
                          f"{similarity.ranges(f.lines_b)}" for f in p.files)
        print(visible(f"{p.score:.3f}  {p.student_a}  {p.student_b}  {where}"))
    if len(report.pairs) > args.top:
        print(f"... and {len(report.pairs) - args.top} more (--top, --csv)")
    if args.csv:
        try:
            Path(args.csv).write_text(similarity.to_csv(report.pairs), encoding="utf-8", newline="")
        except OSError as exc:
            return err(f"cannot write {args.csv}: {exc.strerror}")
        print(visible(f"wrote {args.csv}"))
    return 0
