"""Overhead of a full sandboxed grading over the fastest honest evaluation of the same models (the floor).

Runs, alternately and `--repeat` times each:
  * `autograder grade REFERENCE.zip --json` (unpack, sandbox, every check, judge), and
  * the floor: one bare process (no sandbox, no checks) that imports torch, loads the same hidden sets shown
    the same way (`HiddenSet.for_sandbox`: the installation's dither, a fresh order) and classifies them with
    the reference's MyNet (FashionMNIST) and FinetuneNet (ORIG/AUG/NEW) as fast as it can while giving the
    very same classes: channels_last weights and inputs, torch.inference_mode(), each set converted to float32
    once, the batch size fastest on this VM (MyNet 128, FinetuneNet 32 instead of the grading's 500 and 100),
    the model frozen by TorchScript (BatchNorm folded into the convolutions; the compile time counts), 2 threads.
    Its wall time runs from this bench's spawn of the process to its last prediction. After that (not timed)
    the same process evaluates the models plainly (`net.eval()`, `torch.no_grad()`, float32, NCHW, the
    grading's batch sizes) and the bench fails unless every argmax label of the floor equals the plain one.
Prints wall times (median), `ratio grade / floor` (target <= 1.10) and the peak memory of the whole grading
(judge process + sandbox cgroup peak; target <= 2 GiB). Then grades the judge-memory attacks of
tests/attacks.py (a 64 MiB frame of nested empty lists per sandbox start; frames just under the header cap in
the expected order over every op) and prints the same peak for each (target <= 2 GiB; the review measured
3.0 / 5.9 / 8.8 GiB).

The grader cannot use the floor's tricks on students' models (see grader.harness.ops.Interpreter.op_predict):
inference_mode breaks a forward that needs autograd (torch.enable_grad() inside it), channels_last changes the
strides student code sees (x.view(len(x), -1) raises on a 3-channel input) and the convolution kernels, a
frozen model is no longer the student's module, and the batch sizes are the spec's, told to students.

    .venv/bin/python bench/grade_overhead.py [--repeat 3] [--no-attacks] [--no-jit]

Figures (2026-12-02, load 0.84-1.68, --repeat 3): grade median 19.85 s, floor 6.31 s (MyNet 0.56 s, FinetuneNet
3.5 s, start + imports 1.8 s, data 0.45 s), ratio grade / floor 3.14; the plain evaluation alone 13.0-14.4 s.
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
REFERENCE = ROOT / "grader" / "assignments" / "rpz_cnn" / "reference"

FLOOR = r"""
import json, sys, time
t_spawn = float(sys.argv[3])  # the bench's time.monotonic() when it started this process
import numpy as np
import torch
torch.set_num_threads(2)
sys.path.insert(0, sys.argv[1])
from grader.data import load_hidden
from grader.settings import settings
import pytorch_cnn

jobs = json.loads(sys.argv[2])  # per model: class, checkpoint, grading batch, floor batch, hidden sets
use_jit = sys.argv[4] == "jit"
t_import = time.monotonic()
cfg = settings()
for job in jobs:  # the images the grading shows the sandbox: the installation's dither, a fresh order
    job["images"] = [load_hidden(cfg, s["hidden"], **s["load"]).for_sandbox(dither=s["dither"]) for s in job["sets"]]
t_data = time.monotonic()


def build(job):
    net = getattr(pytorch_cnn, job["class"])()
    net.load_state_dict(torch.load(sys.argv[1] + "/" + job["file"], weights_only=True, map_location="cpu"), strict=True)
    return net.eval()


def fast(job):
    net = build(job).to(memory_format=torch.channels_last)
    batch = job["floor_batch"]
    xs = [torch.from_numpy(images).to(torch.float32).div_(255.0).contiguous(memory_format=torch.channels_last)
          for images, _ in job["images"]]
    with torch.inference_mode():
        if use_jit:
            net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, xs[0][:batch])))
        return [torch.cat([pytorch_cnn.classify(net, x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()
                for x in xs]


def plain(job):
    net, batch, out = build(job), job["batch"], []
    with torch.no_grad():
        for images, _ in job["images"]:
            out.append(np.concatenate([pytorch_cnn.classify(net, torch.from_numpy(
                np.asarray(images[i:i + batch], dtype=np.float32) / 255.0)).numpy()
                for i in range(0, len(images), batch)]))
    return out


import warnings
warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit's deprecation notices
seconds, preds = [], []
for job in jobs:
    t = time.monotonic()
    preds.append(fast(job))
    seconds.append(time.monotonic() - t)
t_end = time.monotonic()
t = time.monotonic()
want = [plain(job) for job in jobs]  # the check, not timed: plain float32 evaluation
t_plain = time.monotonic() - t
same = [bool(np.array_equal(a, b)) for got, ref in zip(preds, want) for a, b in zip(got, ref)]
print(json.dumps({
    "floor_s": t_end - t_spawn, "start_import_s": t_import - t_spawn, "data_s": t_data - t_import,
    "models_s": seconds, "plain_eval_s": t_plain, "same": same,
    "accuracy": [[round(float((p == labels).mean()), 4) for p, (_, labels) in zip(got, job["images"])]
                 for got, job in zip(preds, jobs)]}))
"""

FLOOR_BATCH = {"MyNet": 128, "FinetuneNet": 32}
"""The floor's batch sizes: the fastest on this VM (channels_last; measured 64-500 and 8-400, 2026-12-02)."""


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


def floor_jobs() -> list[dict]:
    """The rpz-cnn spec's two accuracy checks as the floor's jobs: model, checkpoint, the grading's batch size and
    the hidden sets exactly as the grading loads and shows them."""
    from grader.assignments import load_assignment
    from grader.judge.params import TorchAccuracyParams, params_as

    spec = load_assignment("rpz-cnn")
    jobs = []
    for c in ("pytorch_cnn.MyNet.accuracy", "pytorch_cnn.FinetuneNet.accuracy"):
        p = params_as(spec.check(c).params, TorchAccuracyParams)
        jobs.append({"class": p.class_, "file": p.file, "batch": p.batch, "floor_batch": FLOOR_BATCH[p.class_],
                     "sets": [{"hidden": d.hidden, "load": d.load, "dither": d.dither} for d in p.datasets]})
    return jobs


def run_floor(jobs: list[dict], *, jit: bool) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", FLOOR, str(REFERENCE), json.dumps(jobs), repr(t0),
                        "jit" if jit else "eager"], capture_output=True, text=True, check=False,
                       env={**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)})
    if p.returncode:
        sys.exit(f"floor failed: {p.stderr[-2000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if not all(out["same"]):
        sys.exit(f"the floor's classes differ from plain float32 evaluation (per set: {out['same']}); "
                 "drop the trick that changed them")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-attacks", action="store_true", help="skip the judge-memory attacks")
    ap.add_argument("--no-jit", action="store_true", help="floor without TorchScript freezing")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from grader.assignments.build import build_submission_zip

    jobs = floor_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = build_submission_zip("rpz-cnn", Path(tmp) / "reference.zip")
        grade_times, floor_times, peaks = [], [], []
        result: dict = {}
        for i in range(args.repeat):
            load = os.getloadavg()[0]
            wall, result, judge_rss = run_grade(zip_path)
            sandbox_peak = result["metrics"].get("sandbox.peak_memory_mb", 0.0) * 2**20
            grade_times.append(wall)
            peaks.append(judge_rss + sandbox_peak)
            f = run_floor(jobs, jit=not args.no_jit)
            floor_times.append(f["floor_s"])
            print(f"run {i + 1} (load {load:.2f}): grade {wall:6.2f} s (score {result['score']}/{result['max_score']}, "
                  f"sandbox {result['timings']['sandbox_s']:.2f} s, starts {result['metrics'].get('sandbox.starts')}; "
                  f"judge peak RSS {judge_rss / 2**20:.0f} MiB, sandbox peak {sandbox_peak / 2**20:.0f} MiB)",
                  flush=True)
            print(f"       floor {f['floor_s']:6.2f} s (start + imports {f['start_import_s']:.2f}, data "
                  f"{f['data_s']:.2f}, MyNet {f['models_s'][0]:.2f}, FinetuneNet {f['models_s'][1]:.2f}; "
                  f"{f['accuracy']}); plain evaluation of the same images {f['plain_eval_s']:.2f} s, "
                  f"same classes on every set", flush=True)
    g, fl = statistics.median(grade_times), statistics.median(floor_times)
    peak = max(peaks)
    print(f"\nautograder grade (median of {args.repeat}): {g:.2f} s")
    print(f"floor (median of {args.repeat}): {fl:.2f} s")
    print(f"ratio grade / floor: {g / fl:.3f}  (target <= 1.10)")
    print(f"peak memory of the grading (judge max RSS + sandbox cgroup peak): {peak / 2**30:.2f} GiB  (target <= 2 GiB)")
    print(f"metrics: {json.dumps({k: v for k, v in result['metrics'].items()})}")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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
