"""A deadline burst: 50 students upload 200 submissions at once to a server with 2 grading workers.

The stack is real (bench/stack.py: redis-server, `autograder web` under gunicorn with its default 2
processes x 4 threads, 2 x `autograder worker`, each grading held to one CPU) on a SQLite database that
already holds a course's history: 1,000 students and 20,000 past submissions (tests/server/seeding.py).

Phases:
  1. idle: `--viewers` logged-in students read the leaderboard and submission pages (HTML and the JSON the
     live pages poll), each pausing `--think` seconds between requests, for `--idle-seconds`;
  2. busy: 50 students (one thread each) upload their 4 submissions through the API at once, while the
     viewers go on reading until every submission has a final state.

Prints: uploads accepted / refused, whether every submission was graded exactly once (status graded, one
attempt, a stored result, no extra rows), submissions graded per minute, the p50/p95 of each page idle and
busy with the busy/idle ratio. Targets (issue 4): nothing lost, leaderboard p95 under 100 ms, page views
unaffected by the grading load.

    .venv/bin/python bench/load.py [--students 50] [--per-student 4] [--workers 2] [--variant numpy|nofin]
                                   [--database sqlite|postgres]

Figures (idle 2-core VM, 2026-11-23; cpus=1 per grading, 4 viewers thinking 0.25 s):
  --variant nofin (numpy layers + MyNet on 10,000 images, ~9 s per grading; 16 minutes busy):
    uploads 200 accepted, p50 482 ms, p95 1061 ms (50 at once against 2 x 4 gunicorn threads);
    200 of 200 graded, each in one attempt, no extra rows: nothing lost; 12.4 submissions/min;
    leaderboard        idle p50 23.0 / p95 27.9 ms, busy p50 16.1 / p95 30.5 ms (busy/idle p95 1.09)
    leaderboard.json   idle p50 21.6 / p95 25.7 ms, busy p50 15.5 / p95 28.6 ms (1.11)
    submission         idle p50  5.6 / p95  7.3 ms, busy p50  5.0 / p95 10.2 ms (1.40)
    submission.json    idle p50  4.8 / p95  6.1 ms, busy p50  4.5 / p95 11.0 ms (1.81)
  --variant numpy (default; ~0.3 s per grading, so results arrive 6 per second for 32 s):
    200 of 200 graded in one attempt, 370 submissions/min; leaderboard p95 39.7 ms idle, 39.8 ms busy;
    leaderboard.json 30.4 / 43.8 ms; submission 8.6 / 15.1 ms; submission.json 6.4 / 15.1 ms.
  --database postgres --variant numpy (PostgreSQL 15 from Debian, fsync on, same machine):
    200 of 200 graded in one attempt, 309 submissions/min; uploads p50 331 / p95 571 ms;
    leaderboard p95 29.5 ms idle, 49.7 ms busy; leaderboard.json 25.3 / 68.2 ms;
    submission 8.6 / 22.2 ms; submission.json 7.2 / 27.6 ms (the database server shares the 2 cores).
  Before the incremental leaderboard cache, Python-built rows and the gradings' low CPU weight (same
  script, numpy, under other load): leaderboard busy p50 480 ms, p95 800 ms; leaderboard.json p95 735 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AUTOGRADER_REUSE_VERDICTS", "0")  # every upload is the same zip: grade each one (no reuse)
sys.path.insert(0, str(ROOT))
from bench.stack import Stack  # noqa: E402
from tests.server.browser import HttpSession  # noqa: E402

OMIT = {"numpy": ["pytorch_cnn.py", "model.pt", "finetuned.pt"], "nofin": ["finetuned.pt"]}
VIEWER_PASSWORD = "load-viewer-pass-1"


@dataclass
class Course:
    """Who uploads and who watches; filled in by `seed`."""

    students: int
    history_students: int
    history_submissions: int
    viewers: int
    tokens: list[str] = field(default_factory=list)
    viewer_names: list[str] = field(default_factory=list)

    def seed(self, db_url: str) -> None:
        from sqlalchemy.orm import Session

        from server.db import make_engine
        from server.services import accounts
        from server.services.assignments import get_assignment
        from tests.server.seeding import seed_course

        engine = make_engine(db_url)
        try:
            with Session(engine) as s:
                a = get_assignment(s, "rpz-cnn")
                assert a is not None
                t = time.perf_counter()
                seed_course(s, a.id, students=self.history_students, submissions=self.history_submissions)
                for i in range(self.students):
                    user, _ = accounts.add_user(s, f"load{i:03d}", name=f"Load {i}",
                                                password=VIEWER_PASSWORD if i < self.viewers else None)
                    self.tokens.append(accounts.create_api_token(s, user, name="load"))
                    if i < self.viewers:
                        self.viewer_names.append(user.username)
                s.commit()
                print(f"seeded {self.history_students} students with {self.history_submissions} past submissions "
                      f"and {self.students} uploading students in {time.perf_counter() - t:.1f} s", flush=True)
        finally:
            engine.dispose()


class Browser(HttpSession):
    """One logged-in student reading pages, each read timed."""

    def __init__(self, base: str, username: str) -> None:
        super().__init__(base)
        self.login(username, VIEWER_PASSWORD)

    def timed(self, path: str) -> float:
        t = time.perf_counter()
        with self.opener.open(self.base + path, timeout=30) as r:
            r.read()
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status}")
        return time.perf_counter() - t


@dataclass
class Samples:
    """Latencies per page name, split by phase."""

    by_page: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, phase: str, page: str, seconds: float) -> None:
        with self.lock:
            self.by_page.setdefault((phase, page), []).append(seconds)


def view_loop(browser: Browser, pages: Callable[[], dict[str, str]], samples: Samples, phase: Callable[[], str],
              stop: threading.Event, think: float) -> None:
    while not stop.is_set():
        for name, path in pages().items():
            if stop.is_set():
                return
            try:
                samples.add(phase(), name, browser.timed(path))
            except (OSError, RuntimeError, urllib.error.URLError):
                with samples.lock:
                    samples.errors += 1
            stop.wait(think)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=50)
    ap.add_argument("--per-student", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--history-students", type=int, default=1000)
    ap.add_argument("--history-submissions", type=int, default=20000)
    ap.add_argument("--viewers", type=int, default=4, help="students reading pages meanwhile")
    ap.add_argument("--think", type=float, default=0.25, help="seconds each viewer waits between requests")
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--variant", choices=sorted(OMIT), default="numpy",
                    help="numpy: the numpy part of rpz-cnn (~1 s of grading); nofin: also MyNet (~10 s)")
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--limits", default="cpus=1")
    ap.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args()
    from grader.assignments.build import build_submission_zip

    course = Course(students=args.students, history_students=args.history_students,
                    history_submissions=args.history_submissions, viewers=min(args.viewers, args.students))
    total = args.students * args.per_student
    with tempfile.TemporaryDirectory(prefix="autograder-load-") as tmp_s:
        tmp = Path(tmp_s)
        data = build_submission_zip("rpz-cnn", tmp / "submission.zip", omit=OMIT[args.variant]).read_bytes()
        stack = Stack(tmp=tmp / "stack", workers=args.workers, limits=args.limits, database=args.database)
        stack.tmp.mkdir()
        samples = Samples()
        stop = threading.Event()
        phase = ["idle"]
        own: dict[str, int] = {}  # viewer -> the id of one of their own submissions
        try:
            stack.start(seed=course.seed)
            print(f"stack up: {args.workers} workers, web at {stack.base_url}, {args.database}; {total} submissions of "
                  f"{len(data) / 2**10:.0f} KiB ({args.variant}) from {args.students} students", flush=True)
            # Each viewer has one earlier submission of their own to look at (graded before the idle phase).
            for i, name in enumerate(course.viewer_names):
                own[name] = stack.upload(data, course.tokens[i])
            stack.wait_final(list(own.values()), args.timeout)
            browsers = [Browser(stack.base_url, name) for name in course.viewer_names]

            def pages_for(name: str) -> Callable[[], dict[str, str]]:
                return lambda: {"leaderboard": "/assignments/rpz-cnn/leaderboard",
                                "leaderboard.json": "/assignments/rpz-cnn/leaderboard.json",
                                "submission": f"/submissions/{own[name]}",
                                "submission.json": f"/submissions/{own[name]}.json"}

            threads = [threading.Thread(target=view_loop, daemon=True,
                                        args=(b, pages_for(n), samples, lambda: phase[0], stop, args.think))
                       for b, n in zip(browsers, course.viewer_names, strict=True)]
            for t in threads:
                t.start()
            time.sleep(args.idle_seconds)
            phase[0] = "busy"
            ids, refused, upload_s = burst(stack, course.tokens, args.per_student, data)
            for i, name in enumerate(course.viewer_names):  # viewers now watch a live submission of theirs
                mine = [sid for sid, tok in ids if tok == course.tokens[i]]
                if mine:
                    own[name] = mine[-1]
            rows = stack.wait_final([sid for sid, _ in ids], args.timeout)
            phase[0] = "after"
            stop.set()
            for t in threads:
                t.join(timeout=60)
            extra = count_rows(stack) - (len(own) + len(ids) + course.history_submissions)
        finally:
            stop.set()
            stack.stop()

    graded = [r for r in rows if r["status"] == "graded"]
    once = [r for r in graded if not r["lost"] and r["result"] is not None]  # no attempt lost (one per phase)
    first = min(r["created"] for r in rows)
    last = max(r["finished"] for r in rows)
    makespan = (last - first).total_seconds()
    print(f"uploads: {len(ids)} accepted, {refused} refused; upload p50 {pct(upload_s, .5) * 1000:.0f} ms, "
          f"p95 {pct(upload_s, .95) * 1000:.0f} ms")
    print(f"graded: {len(graded)} of {total} ({len(once)} in one attempt with a stored result); "
          f"{total - len(rows)} missing, {extra} unexpected extra rows; "
          f"{'NOTHING LOST' if len(graded) == total == len(rows) and extra == 0 else 'LOST OR FAILED SUBMISSIONS'}")
    print(f"throughput: {len(rows) / makespan * 60:.1f} submissions/min ({len(rows)} in {makespan:.0f} s, "
          f"first upload to last result)")
    print(f"page latency with {len(course.viewer_names)} viewers (think {args.think} s), {samples.errors} errors:")
    for page in ("leaderboard", "leaderboard.json", "submission", "submission.json"):
        idle = samples.by_page.get(("idle", page), [])
        busy = samples.by_page.get(("busy", page), [])
        if not idle or not busy:
            print(f"  {page:17s} no samples (idle {len(idle)}, busy {len(busy)})")
            continue
        print(f"  {page:17s} idle p50 {pct(idle, .5) * 1000:6.1f} ms p95 {pct(idle, .95) * 1000:6.1f} ms (n={len(idle)})"
              f" | busy p50 {pct(busy, .5) * 1000:6.1f} ms p95 {pct(busy, .95) * 1000:6.1f} ms (n={len(busy)})"
              f" | busy/idle p95 {pct(busy, .95) / pct(idle, .95):.2f}")
    lb = samples.by_page.get(("busy", "leaderboard"), []) + samples.by_page.get(("busy", "leaderboard.json"), [])
    ok = len(graded) == total == len(rows) and extra == 0 and bool(lb) and pct(lb, .95) < 0.100
    print(f"targets: nothing lost and leaderboard p95 < 100 ms while busy: {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


def burst(stack: Stack, tokens: list[str], per_student: int, data: bytes) -> tuple[list[tuple[int, str]], int, list[float]]:
    """Every student uploads `per_student` times, all students at once; returns ((id, token)s, refused, seconds)."""
    lock = threading.Lock()
    ids: list[tuple[int, str]] = []
    times: list[float] = []
    refused = 0

    def student(token: str) -> None:
        nonlocal refused
        for _ in range(per_student):
            t = time.perf_counter()
            try:
                sid = stack.upload(data, token)
            except (OSError, urllib.error.URLError) as exc:
                print(f"upload refused: {exc}", flush=True)
                with lock:
                    refused += 1
                continue
            with lock:
                ids.append((sid, token))
                times.append(time.perf_counter() - t)

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(student, tokens))
    return ids, refused, times


def count_rows(stack: Stack) -> int:
    from sqlalchemy import create_engine, func, select

    from server.models import Submission

    engine = create_engine(stack.db_url)
    try:
        with engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(Submission)) or 0)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
