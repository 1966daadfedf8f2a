"""Write stand-ins for the course's data/nist36_train.mat and data/nist36_valid.mat (for the student-style
reference's run_q3.py, which loads them with scipy.io.loadmat as the handout does).

    PYTHONPATH=$PWD .venv/bin/python -m grader.assignments.cmu_16720_hw5.nist36_mats /tmp/nist36_data

The same data train.py trains on: EMNIST-balanced-small's TRAINING split in NIST36's conventions
(train.load_splits), as train_data / train_labels and valid_data / valid_labels: float64 rows of 1024 in
[0, 1] and one-hot label rows in NIST36's order (A-Z then 0-9).
"""

from __future__ import annotations

import sys
from pathlib import Path

import scipy.io

from grader.assignments.cmu_16720_hw5.train import load_splits


def write_mats(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for split, (x, y) in load_splits().items():
        path = folder / f"nist36_{split}.mat"
        scipy.io.savemat(path, {f"{split}_data": x, f"{split}_labels": y})
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_mats(Path(sys.argv[1] if len(sys.argv) > 1 else "data")):
        print(p)
