"""What a pre-started sandbox would save per grading of the rpz-cnn reference (issue 13).

A pre-started sandbox: the worker, while it waits for its next job, starts a fresh sandbox (cgroups, bubblewrap,
the interpreter) that imports numpy and torch, and gives it the submission through its pipe once a job comes (one
per submission, never reused). What that takes off a grading's critical path is what every sandbox start spends
before the harness could run the first op that needs torch. This bench measures it inside the real sandbox:
`grader.sandbox.SandboxProcess` with the rpz-cnn spec's limits and the job layout of a grading (the reference's
files at /job/submission), running a probe instead of the harness that writes one byte to the grader's channel
when the interpreter is up, after `import numpy`, after `import torch` and after `import torchvision` (the
reference's pytorch_cnn.py imports it; a pre-started sandbox could import it too). The judge timestamps each byte
from just before it creates the process's cgroups. Then it grades the reference in this process like a worker does
(`run_grading`, a warm-up first so that the judge's per-process caches are filled) and takes the number of sandbox
starts of a grading from its metrics (`sandbox.starts`).

    .venv/bin/python bench/prestart.py [--probes 5] [--gradings 3]

Prints the start-up stages (median), the grading time (median) and
`prestart would save: X s of Y s (Z %)` (numpy + torch imported; the issue builds it only above 10 %), and the
same with torchvision imported as well.

Figures (2026-12-02, load 0.78-1.36): 1 sandbox start per grading; torch imported 1.00 s, torchvision 1.97 s after
the start (median of 5); grading median 14.94 s: prestart would save 1.00 s of 14.94 s (6.7 %), so it is not built;
1.97 s (13.2 %) with torchvision imported too.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE = """\
import os, sys
fd = int(sys.argv[sys.argv.index("--channel-fd") + 1])
os.write(fd, b"u")
import numpy
os.write(fd, b"n")
import torch
os.write(fd, b"t")
import torchvision
os.write(fd, b"v")
"""
STAGES = {b"u": "interpreter up", b"n": "numpy imported", b"t": "torch imported", b"v": "torchvision imported"}


def probe_once(tmp: Path, submission: Path) -> dict[str, float]:
    """Seconds from creating the sandbox to each stage of the probe, in one fresh sandbox."""
    from grader.assignments import load_assignment
    from grader.sandbox import RunLimits, SandboxProcess, host_backend
    from grader.sandbox.bwrap import Job
    from grader.settings import settings

    cfg = settings()
    lim = load_assignment("rpz-cnn").limits
    limits = RunLimits(memory_bytes=lim.memory_bytes, pids=lim.pids, cpus=lim.cpus, wall_s=lim.wall_s,
                       output_bytes=lim.output_bytes, tmpfs_bytes=lim.tmpfs_bytes)
    backend = host_backend(cfg.bwrap, cfg.cgroup_root, cfg.cgroup_name)
    harness, inputs, data = tmp / "harness", tmp / "in", tmp / "data"
    for d in (harness, inputs, data):
        d.mkdir(exist_ok=True)
    (harness / "main.py").write_text(PROBE)
    job = Job(harness=harness, submission=submission, inputs=inputs, data=data)
    times: dict[str, float] = {}
    t0 = time.monotonic()
    with SandboxProcess(backend=backend, bwrap=cfg.bwrap, python=cfg.python, job=job, limits=limits,
                        argv_tail=["/job/harness/main.py"]) as sp:
        deadline = t0 + 120
        while len(times) < len(STAGES) and time.monotonic() < deadline:
            ready, _, _ = select.select([sp.channel], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(sp.channel, 16)
            now = time.monotonic()
            if not chunk:
                break
            for b in chunk:
                times[STAGES[bytes([b])]] = now - t0
        if len(times) < len(STAGES):
            sys.exit(f"the probe did not get through: {times}; output: {sp.stdout_text[-2000:]}")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", type=int, default=5, help="sandbox starts measured")
    ap.add_argument("--gradings", type=int, default=3, help="gradings measured (after one warm-up)")
    args = ap.parse_args()
    from grader.assignments.build import build_submission_zip
    from grader.engine import run_grading

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="autograder-prestart-") as tmp_s:
        tmp = Path(tmp_s)
        zip_path = build_submission_zip("rpz-cnn", tmp / "reference.zip")
        submission = ROOT / "grader" / "assignments" / "rpz_cnn" / "reference"
        probes = []
        for i in range(args.probes):
            probes.append(probe_once(tmp, submission))
            print(f"  sandbox start {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in probes[-1].items()),
                  flush=True)
        totals, starts = [], []
        for i in range(args.gradings + 1):
            load = os.getloadavg()[0]
            t = time.monotonic()
            result = run_grading(zip_path=zip_path, assignment="rpz-cnn")
            wall = time.monotonic() - t
            if result.score != result.max_score:
                sys.exit(f"the reference scored {result.score}/{result.max_score}: {result.message}")
            n = int(result.metrics.get("sandbox.starts", 0))
            print(f"  grading {i + 1}{' (warm-up)' if i == 0 else ''} (load {load:.2f}): {wall:.2f} s, "
                  f"{n} sandbox start(s), sandbox {result.timings.get('sandbox_s', 0):.2f} s", flush=True)
            if i:
                totals.append(wall)
                starts.append(n)
    stage = {k: statistics.median(p[k] for p in probes) for k in STAGES.values()}
    total, n = statistics.median(totals), max(starts)
    print(f"\nsandbox start (median of {args.probes}): " + ", ".join(f"{k} {v:.2f} s" for k, v in stage.items()))
    print(f"grading of the rpz-cnn reference (median of {args.gradings}): {total:.2f} s, {n} sandbox start(s)")
    for last, what in (("torch imported", "numpy + torch"), ("torchvision imported", "numpy + torch + torchvision")):
        save = n * stage[last]
        print(f"prestart would save: {save:.2f} s of {total:.2f} s ({100 * save / total:.1f} %)  [{what} imported; "
              "build only above 10 %]")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
