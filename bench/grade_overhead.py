"""Overhead of a full sandboxed grading over a bare evaluation of the same models.

Runs, alternately and `--repeat` times each:
  * `autograder grade REFERENCE.zip --json` (unpack, sandbox, every check, judge), and
  * a bare script that imports torch and does the same model evaluations (MyNet on the hidden FashionMNIST
    test set, FinetuneNet on ORIG/AUG/NEW) with no sandbox and no checks.
Prints wall times (median), their ratio (target <= 1.25) and the peak memory of the whole grading (judge
process + sandbox cgroup peak; target <= 2 GiB). Then grades the judge-memory attacks of tests/attacks.py (a
64 MiB frame of nested empty lists per sandbox start; frames just under the header cap in the expected order
over every op) and prints the same peak for each (target <= 2 GiB; the review measured 3.0 / 5.9 / 8.8 GiB).

    .venv/bin/python bench/grade_overhead.py [--repeat 3] [--no-attacks]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE = r"""
import sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from grader.data import load_hidden
from grader.settings import settings
from pytorch_cnn import MyNet, FinetuneNet, classify

def evaluate(net, ckpt, sets, batch):
    net.load_state_dict(torch.load(ckpt, weights_only=True, map_location="cpu"), strict=True)
    net.eval()
    accs = []
    with torch.no_grad():
        for name in sets:
            h = load_hidden(settings(), name)
            perm = np.random.default_rng().permutation(len(h.labels))
            images, labels = h.images[perm], h.labels[perm]
            preds = []
            for i in range(0, len(images), batch):
                x = torch.from_numpy(np.asarray(images[i:i + batch], dtype=np.float32) / 255.0)
                preds.append(classify(net, x).numpy())
            accs.append(float((np.concatenate(preds) == labels).mean()))
    return accs

torch.set_num_threads(2)
ref = sys.argv[1]
mynet_batch, finetune_batch = int(sys.argv[2]), int(sys.argv[3])  # the grading's own batch sizes
print(evaluate(MyNet(), ref + "/model.pt", ["fashion_mnist"], mynet_batch),
      evaluate(FinetuneNet(), ref + "/finetuned.pt", ["dogs_and_cats/orig", "dogs_and_cats/aug", "dogs_and_cats/new"],
               finetune_batch))
"""


# Runs the grading as its only child and reports that child's peak RSS (the judge side of the grading).
MEASURE = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr)
sys.exit(p.returncode)
"""


def run_grade(zip_path: Path, env: dict[str, str] | None = None) -> tuple[float, dict, int]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT / ".venv/bin/autograder"), "grade", str(zip_path),
                        "--json"], capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        sys.exit(f"grading failed: {p.stderr[-2000:]}")
    return wall, json.loads(p.stdout), int(p.stderr.strip().splitlines()[-1])


def grading_batches() -> list[str]:
    """The batch sizes the rpz-cnn spec grades MyNet and FinetuneNet with, so both sides do the same work."""
    from grader.assignments import load_assignment
    from grader.judge.params import TorchAccuracyParams, params_as

    spec = load_assignment("rpz-cnn")
    return [str(params_as(spec.check(c).params, TorchAccuracyParams).batch)
            for c in ("pytorch_cnn.MyNet.accuracy", "pytorch_cnn.FinetuneNet.accuracy")]


def run_bare() -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", BARE, str(ROOT / "grader" / "assignments" / "rpz_cnn" / "reference"), *grading_batches()],
                       capture_output=True,
                       text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return time.perf_counter() - t0, p.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-attacks", action="store_true", help="skip the judge-memory attacks")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from grader.assignments.build import build_submission_zip

    with tempfile.TemporaryDirectory() as tmp:
        zip_path = build_submission_zip("rpz-cnn", Path(tmp) / "reference.zip")
        grade_times, bare_times, peaks = [], [], []
        result: dict = {}
        for i in range(args.repeat):
            wall, result, judge_rss = run_grade(zip_path)
            sandbox_peak = result["metrics"].get("sandbox.peak_memory_mb", 0.0) * 2**20
            grade_times.append(wall)
            peaks.append(judge_rss + sandbox_peak)
            b, accs = run_bare()
            bare_times.append(b)
            print(f"run {i + 1}: grade {wall:6.2f} s (judge peak RSS {judge_rss / 2**20:.0f} MiB, sandbox peak "
                  f"{sandbox_peak / 2**20:.0f} MiB)", flush=True)
            print(f"       grade {wall:6.2f} s (score {result['score']}/{result['max_score']}, "
                  f"sandbox {result['timings']['sandbox_s']:.2f} s, starts {result['metrics'].get('sandbox.starts')}), "
                  f"bare {b:6.2f} s {accs}", flush=True)
    g, b = statistics.median(grade_times), statistics.median(bare_times)
    peak = max(peaks)
    print(f"\nautograder grade (median of {args.repeat}): {g:.2f} s")
    print(f"bare torch evaluation (median of {args.repeat}): {b:.2f} s")
    print(f"ratio grade / bare: {g / b:.3f}  (target <= 1.25)")
    print(f"peak memory of the grading (judge max RSS + sandbox cgroup peak): {peak / 2**30:.2f} GiB  (target <= 2 GiB)")
    print(f"metrics: {json.dumps({k: v for k, v in result['metrics'].items()})}")
    if not args.no_attacks:
        run_attacks()


def run_attacks() -> None:
    """Peak memory of gradings under the judge-memory attacks (issue 11, item 1)."""
    from tests import attacks
    from tests.conftest import make_zip

    env = {**os.environ, "AUTOGRADER_LIMITS": "op_s=60"}  # time for the attack code to build its frames
    print("\njudge-memory attacks (rpz-cnn numpy part):")
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in (("64 MiB frame of nested lists, each start", attacks.giant_nested_list_frame(64)),
                            ("frames under the header cap, every op", attacks.many_big_valid_frames())):
            z = make_zip(Path(tmp) / "attack.zip", files)
            wall, result, judge_rss = run_grade(z, env)
            sandbox_peak = result["metrics"].get("sandbox.peak_memory_mb", 0.0) * 2**20
            print(f"  {name}: {wall:.1f} s, starts {result['metrics'].get('sandbox.starts')}, retained "
                  f"{result['metrics'].get('judge.retained_mb')} MiB; judge peak RSS {judge_rss / 2**20:.0f} MiB + "
                  f"sandbox peak {sandbox_peak / 2**20:.0f} MiB = {(judge_rss + sandbox_peak) / 2**30:.2f} GiB "
                  "(target <= 2 GiB)", flush=True)


if __name__ == "__main__":
    main()
