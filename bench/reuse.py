"""Content-addressed reuse (grader.reuse): what a re-upload costs against a fresh grading.

For each solution of rpz-cnn (the student-style one, students/loops, whose pytorch_cnn.py provably cannot read
numpy_nn.py; and the reference, whose pytorch_cnn.py reads a file (torch.load of its optional ImageNet weights),
so that every check of its process depends on every file), `--repeat` times:
  * a fresh grading (empty store),
  * the same files again (nothing changed),
  * numpy_nn.py changed (a comment appended),
each through the real engine and sandbox with an in-memory store. Prints wall time and CPU seconds (the machine's busy time: the
judge and its sandboxes) of each, medians, and their ratios to the fresh grading.

    .venv/bin/python bench/reuse.py [--repeat 3] [--solution loops|reference|both]

Figures (2026-12-02, load 1.25, medians of 3): loops: fresh 15.57 s wall / 27.66 s CPU; nothing changed 0.30 /
0.29 s (ratios 0.019 / 0.010, 24/24 reused); numpy_nn.py changed 0.74 / 0.84 s (0.048 / 0.030, the 7 network
checks reused). Reference: fresh 16.42 / 30.23 s; nothing changed 0.35 / 0.35 s (0.021 / 0.012); numpy_nn.py
changed 16.66 / 30.71 s (1.015 / 1.016, nothing reused: its pytorch_cnn.py can read any file).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOLUTIONS = {"loops": ROOT / "grader/assignments/rpz_cnn/students/loops",
             "reference": ROOT / "grader/assignments/rpz_cnn/reference"}
FILES = ("numpy_nn.py", "pytorch_cnn.py", "model.pt", "finetuned.pt")


def cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (/proc/stat): the judge and its sandboxes, whose processes
    bubblewrap reaps in their own PID namespace (so getrusage's children do not see them), plus whatever else
    runs - hence an idle machine."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def build(folder: Path, dest: Path, *, touch_numpy: bool) -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for name in FILES:
            data = (folder / name).read_bytes()
            if touch_numpy and name == "numpy_nn.py":
                data += f"\n# edited {time.time_ns()}\n".encode()
            z.writestr(name, data)
    return dest


def run(folder: Path, tmp: Path, repeat: int) -> dict[str, list[tuple[float, float, int, int]]]:
    from grader.api import grade_submission
    from grader.reuse import MemoryStore

    out: dict[str, list[tuple[float, float, int, int]]] = {"fresh": [], "nothing changed": [], "numpy_nn.py changed": []}
    for i in range(repeat):
        store = MemoryStore()
        for case, touch in (("fresh", False), ("nothing changed", False), ("numpy_nn.py changed", True)):
            z = build(folder, tmp / f"{i}-{case.split()[0]}.zip", touch_numpy=touch)
            c0, t0 = cpu_seconds(), time.perf_counter()
            r = grade_submission(zip_path=z, assignment="rpz-cnn", reuse=store)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            assert r.status == "graded", r.message
            reused = sum(1 for c in r.checks if c.reused_from)
            out[case].append((wall, cpu, reused, len(r.checks)))
            print(f"  run {i + 1} {case:<20} wall {wall:6.2f} s  cpu {cpu:6.2f} s  reused {reused}/{len(r.checks)}"
                  f"  score {r.score:g}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--solution", choices=("loops", "reference", "both"), default="both")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (benchmarks mean something on an idle machine)")
    names = ("loops", "reference") if args.solution == "both" else (args.solution,)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"{name} ({SOLUTIONS[name].relative_to(ROOT)}):")
            out = run(SOLUTIONS[name], Path(tmp), args.repeat)
            fresh_wall = statistics.median(w for w, _, _, _ in out["fresh"])
            fresh_cpu = statistics.median(c for _, c, _, _ in out["fresh"])
            for case, rows in out.items():
                wall, cpu = statistics.median(w for w, _, _, _ in rows), statistics.median(c for _, c, _, _ in rows)
                print(f"  {case:<20} median wall {wall:6.2f} s, cpu {cpu:6.2f} s; ratio to fresh: wall "
                      f"{wall / fresh_wall:.3f}, cpu {cpu / fresh_cpu:.3f}; reused {rows[0][2]}/{rows[0][3]} checks")


if __name__ == "__main__":
    main()
