"""Fair share on deadline night: 20 students, one of whom uploads 20 times in a burst while the other 19 upload once.

A real stack (bench/stack.py: redis-server, `autograder web` under gunicorn, `--workers` x `autograder worker`,
each grading held to one CPU) grading the numpy part of rpz-cnn (a cheap, real grading: the sandbox, the
numpy checks, the judge). Two rounds, each with 20 fresh students, one after the other on the same stack:

  without the burst: the "burster" uploads once, then the 19 upload once each;
  with the burst:    the burster uploads 20 times in a row, then the 19 upload once each.

For each of the 19: time to first verdict = the row's finished_at - created_at (read from the database); for a
grading in two phases (server/services/phases.py) the end of its quick phase instead (its slow phase's queued_at);
"started" is then its slow phase's start.
Prints both distributions, the median grading time, the fair-share positions the 19 saw right after their
uploads (the submission JSON), and whether each of the 19 got their verdict no later than without the burst
plus one grading (the target of issue 13).

    .venv/bin/python bench/fair_share.py [--workers 1] [--burst 20] [--singles 19]

Figures (idle 2-core VM, load 0.00, 2026-12-02, two phases, reuse off; 1 worker, cpus=1, 0.27-0.29 s per
submission): time to first verdict of the 19 without the burst: min 0.51 p50 2.66 p90 4.53 max 4.77 s; with the
burst: min 0.42 p50 2.55 p90 4.69 max 4.92 s; the burster's 20: p50 7.34, max 9.80 s; per single (with -
without) max +0.16 s, all within one grading; gradings waited for, with - without: 0 for each; positions seen
1..19 (FIFO: 21-39). Earlier on a loaded VM: p50 5.52 -> 6.51 s, 13 of 19 over by 1.0-2.9 s (load drift).

Wall times carry the load drift of a shared machine between the two rounds; the verdict is counted in gradings
a single waited for (those running or starting between its upload and its own start), which fair share controls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AUTOGRADER_REUSE_VERDICTS", "0")  # every upload is the same zip: grade each one (no reuse)
sys.path.insert(0, str(ROOT))
from bench.stack import Stack  # noqa: E402

OMIT = ["pytorch_cnn.py", "model.pt", "finetuned.pt"]


def seed_students(prefix: str, n: int, tokens: list[str]):  # type: ignore[no-untyped-def]
    def seed(db_url: str) -> None:
        from sqlalchemy.orm import Session

        from server.db import make_engine
        from server.services import accounts

        engine = make_engine(db_url)
        try:
            with Session(engine) as s:
                for i in range(n):
                    user, _ = accounts.add_user(s, f"{prefix}{i:02d}", name=f"{prefix} {i}")
                    tokens.append(accounts.create_api_token(s, user, name="bench"))
                s.commit()
        finally:
            engine.dispose()

    return seed


def api(stack: Stack, token: str, path: str) -> dict:
    req = urllib.request.Request(stack.base_url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def round_(stack: Stack, data: bytes, tokens: list[str], burst: int, timeout: float) -> dict:
    """The burster (tokens[0]) uploads `burst` times, then each other student once."""
    t0 = time.monotonic()
    burster = [stack.upload(data, tokens[0]) for _ in range(burst)]
    t1 = time.monotonic()
    singles = [stack.upload(data, t) for t in tokens[1:]]
    t2 = time.monotonic()
    seen = [api(stack, t, f"/api/v1/submissions/{sid}") for t, sid in zip(tokens[1:], singles, strict=True)]
    rows = {r["id"]: r for r in stack.wait_final(burster + singles, timeout, every=0.5)}
    wait = {sid: (rows[sid]["first_verdicts"] - rows[sid]["created"]).total_seconds() for sid in burster + singles}
    grading = [(r["finished"] - r["started"]).total_seconds() for r in rows.values()]
    # Fairness itself: burster gradings that started after a single was uploaded and before its grading started.
    jumped = [sum(rows[s]["created"] < rows[x]["started"] < rows[s]["started"] for x in burster) for s in singles]
    # Gradings a single waited for: those running or starting between its upload and its own start.
    ahead = [sum(rows[x]["finished"] > rows[s]["created"] and rows[x]["started"] < rows[s]["started"]
                 for x in burster + singles if x != s) for s in singles]
    span = max(r["finished"] for r in rows.values()) - min(r["created"] for r in rows.values())
    return {"singles": [wait[s] for s in singles], "burster": [wait[s] for s in burster], "grading": grading,
            "positions": [s.get("queue_position") for s in seen], "attempts": [r["attempts"] for r in rows.values()],
            "statuses": sorted({str(r["status"]) for r in rows.values()}),
            "jumped": jumped, "ahead": ahead, "cycle_s": span.total_seconds() / len(rows), "upload_s": (t1 - t0, t2 - t1), "span_s": span.total_seconds()}


def dist(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=10) if len(xs) > 1 else xs * 9
    return (f"min {min(xs):5.2f}  p50 {statistics.median(xs):5.2f}  p90 {q[8]:5.2f}  max {max(xs):5.2f}  "
            f"mean {statistics.fmean(xs):5.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--singles", type=int, default=19)
    ap.add_argument("--limits", default="cpus=1")
    ap.add_argument("--warmup", type=int, default=10, help="gradings before the rounds")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args()
    from grader.assignments.build import build_submission_zip

    calm: list[str] = []
    busy: list[str] = []
    with tempfile.TemporaryDirectory(prefix="autograder-fair-") as tmp_s:
        tmp = Path(tmp_s)
        data = build_submission_zip("rpz-cnn", tmp / "submission.zip", omit=OMIT).read_bytes()
        stack = Stack(tmp=tmp / "stack", workers=args.workers, limits=args.limits)
        stack.tmp.mkdir()
        n = args.singles + 1

        def seed(db_url: str) -> None:
            seed_students("calm", n, calm)(db_url)
            seed_students("busy", n, busy)(db_url)

        try:
            stack.start(seed=seed)
            print(f"stack up: {args.workers} worker(s); numpy part of rpz-cnn ({len(data) / 2**10:.0f} KiB); "
                  f"{args.singles} singles + 1 burster of {args.burst}", flush=True)
            # Warm up (the `bench` student, in no round): the first gradings build caches, start the sandbox tools.
            stack.wait_final([stack.upload(data) for _ in range(args.warmup)], args.timeout, every=0.5)
            a = round_(stack, data, calm, 1, args.timeout)
            b = round_(stack, data, busy, args.burst, args.timeout)
        finally:
            stack.stop()
    # One grading = the stack's cycle time per submission (claim to result, both phases: with two phases a row's
    # started..finished covers only its slow phase, which for this numpy-only zip is the missing files' verdicts).
    g = max(a["cycle_s"], b["cycle_s"])
    print(f"one grading (cycle time per submission, the slower round): {g:.2f} s; slow phase alone: median "
          f"{statistics.median(a['grading'] + b['grading']):.2f} s")
    print(f"time to first verdict of the {args.singles}, without the burst: {dist(a['singles'])}")
    print(f"time to first verdict of the {args.singles}, with the burst:    {dist(b['singles'])}")
    print(f"the burster's {args.burst} verdicts (with the burst):          {dist(b['burster'])}")
    print(f"positions the {args.singles} saw right after uploading (with the burst): {b['positions']}")
    for name, r in (("without", a), ("with", b)):
        print(f"round {name} the burst: uploads took {r['upload_s'][0]:.1f} s (burster) + {r['upload_s'][1]:.1f} s "
              f"(singles); first upload to last verdict {r['span_s']:.1f} s ({r['cycle_s']:.2f} s per grading, "
              f"claim to result)")
        print(f"  gradings each single waited for: {r['ahead']}")
    print(f"burster gradings started between a single's upload and its own grading: max {max(b['jumped'])} "
          f"(per single {b['jumped']})")
    deltas = [y - x for x, y in zip(a["singles"], b["singles"], strict=True)]
    late = [i for i, d in enumerate(deltas) if d > g]
    print(f"per single (with - without): max {max(deltas):+.2f} s, mean {statistics.fmean(deltas):+.2f} s; "
          f"bound = one grading ({g:.2f} s)")
    print(f"statuses {a['statuses'] + b['statuses']}, attempts {sorted(set(a['attempts'] + b['attempts']))}")
    extra = [y - x for x, y in zip(a["ahead"], b["ahead"], strict=True)]
    print(f"gradings waited for, with - without the burst, per single: {extra}")
    # The target in gradings (what fair share controls; wall time also carries the machine's load drift):
    ok = max(extra) <= 1
    print(f"wall time within one grading of the round without the burst: "
          f"{'all' if not late else f'{args.singles - len(late)} of {args.singles}'}"
          + (f" (over: {', '.join(f'#{i + 1} {deltas[i]:+.2f} s' for i in late)})" if late else ""))
    print(f"the {args.singles} see their verdicts no later than without the burst + one grading (counted in "
          f"gradings waited for): {'yes' if ok else 'no'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
