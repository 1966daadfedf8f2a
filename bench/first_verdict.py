"""Time to the first streamed verdict (issue 13): from the moment a worker picks up the reference submission of
rpz-cnn to the first verdict visible over HTTP (the submission's JSON, `partial_checks`), and to the full report.

A real stack (bench/stack.py: redis-server, `autograder web` under gunicorn, one `autograder worker`). The
reference zip (numpy part, MyNet, FinetuneNet) is uploaded N times, one after the other (each once the previous
is final, so the worker picks it up at once); the bench polls the submission's JSON every `--poll` seconds.
Pickup = the row's started_at (the claim, stamped by the web app on this machine's clock) as it is at the first
verdict (the quick phase's claim: the slow phase's claim stamps it again); first verdict = the first poll whose
JSON shows a verdict while running; full report = the first poll that shows it graded (both phases).

    .venv/bin/python bench/first_verdict.py [-n 20] [--warmup 1] [--poll 0.02] [--limits cpus=2]

Prints `first verdict: median X s, worst Y s` and the same for the full report.

Figures (idle 2-core VM, load 0.55 at the start, 2026-12-02; -n 20, 1 warm-up, the spec's limits, two phases,
numpy_nn in a sandbox process of its own, reuse off): first verdict (numpy_nn.Linear.interface each time): median
0.22 s, worst 0.30 s; full report: median 20.94 s, worst 34.89 s (19 of 20 within 18.9-22.4 s). Earlier, one
process for every check (torch imported before the first numpy check): idle, -n 5: median 0.81 s, worst 1.55 s,
full report 35.0 s; loaded (4.7-6.8), -n 3: 1.08 / 1.29 s, full report 129.6 / 180.0 s.
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AUTOGRADER_REUSE_VERDICTS", "0")  # every upload is the same zip: grade each one (no reuse)
sys.path.insert(0, str(ROOT))
from bench.stack import Stack  # noqa: E402

FINAL = ("graded", "rejected", "error")


def api(stack: Stack, path: str) -> dict:
    req = urllib.request.Request(stack.base_url + path, headers={"Authorization": f"Bearer {stack.token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def one(stack: Stack, data: bytes, poll: float, timeout: float) -> dict:
    """Upload once and follow the JSON: seconds from pickup to the first verdict and to the full report."""
    sid = stack.upload(data)
    end = time.monotonic() + timeout
    first: datetime | None = None
    first_id = ""
    while True:
        d = api(stack, f"/api/v1/submissions/{sid}")
        now = datetime.now(UTC)
        if first is None and d["status"] == "running" and d.get("partial_checks"):
            first, first_id = now, d["partial_checks"][0]["id"]
            # Pickup of the first attempt: read now, as the slow phase's claim (services.phases) stamps it again.
            started = stack.rows([sid])[0]["started"]
        if d["status"] in FINAL:
            break
        if time.monotonic() > end:
            raise TimeoutError(f"submission {sid} not final after {timeout:.0f} s; logs in {stack.tmp}")
        time.sleep(poll)
    if first is None:
        started = stack.rows([sid])[0]["started"]
    started = started.replace(tzinfo=UTC) if started.tzinfo is None else started
    return {"id": sid, "status": d["status"], "score": d.get("score"), "max_score": d.get("max_score"),
            "first_s": (first - started).total_seconds() if first else None, "first_id": first_id,
            "full_s": (now - started).total_seconds()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--uploads", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1, help="gradings before the measured ones (not counted)")
    ap.add_argument("--poll", type=float, default=0.02, help="seconds between two GETs of the submission's JSON")
    ap.add_argument("--limits", default="", help="AUTOGRADER_LIMITS of the worker (default: the spec's)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per upload")
    args = ap.parse_args()
    from grader.assignments.build import build_submission_zip

    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="autograder-first-verdict-") as tmp_s:
        tmp = Path(tmp_s)
        data = build_submission_zip("rpz-cnn", tmp / "reference.zip").read_bytes()
        stack = Stack(tmp=tmp / "stack", workers=1, limits=args.limits)
        stack.tmp.mkdir()
        try:
            stack.start()
            print(f"stack up: 1 worker; the rpz-cnn reference ({len(data) / 2**20:.1f} MiB), {args.warmup} warm-up + "
                  f"{args.uploads} uploads", flush=True)
            for _ in range(args.warmup):
                one(stack, data, args.poll, args.timeout)
            for i in range(args.uploads):
                r = one(stack, data, args.poll, args.timeout)
                runs.append(r)
                first = f"{r['first_s']:.2f} s ({r['first_id']})" if r["first_s"] is not None else "never seen"
                print(f"  #{i + 1}: {r['status']} {r['score']}/{r['max_score']}; first verdict {first}, "
                      f"full report {r['full_s']:.2f} s", flush=True)
        finally:
            stack.stop()
    firsts = [r["first_s"] for r in runs if r["first_s"] is not None]
    fulls = [r["full_s"] for r in runs]
    if len(firsts) < len(runs):
        print(f"{len(runs) - len(firsts)} of {len(runs)} uploads showed no verdict before the report")
    if firsts:
        print(f"first verdict: median {statistics.median(firsts):.2f} s, worst {max(firsts):.2f} s")
    print(f"full report: median {statistics.median(fulls):.2f} s, worst {max(fulls):.2f} s")
    return 0 if len(firsts) == len(runs) and all(r["status"] == "graded" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
