"""Train the Q3.1 network (1024-64-36, sigmoid then softmax, plain SGD on summed gradients) as run_q3.py does.

    python -m reference.cmu_16720_hw5.train    # writes q3_weights.npz (about a minute)

Data: the NIST36-like training set, EMNIST-balanced-small's training split (classes 0-9, A-Z) converted
exactly like the hidden test set (grader.data.extra.nist36_from_emnist), 10 % of it held out for validation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from grader.data.extra import nist36_from_emnist
from reference.cmu_16720_hw5.nn import (
    backwards,
    compute_loss_and_acc,
    forward,
    get_random_batches,
    initialize_weights,
    linear_deriv,
    softmax,
)

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("AUTOGRADER_SHARED_DATA", HERE.parents[2] / "shared" / "data"))


def load() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SHARED / "emnist_balanced_small" / "emnist_balanced_small_train.npz") as z:
        images, labels = nist36_from_emnist(z["X"], z["y"].astype(np.int64))
    return images.reshape(len(images), -1) / 255.0, np.eye(36)[labels]


def main(epochs: int = 100, batch_size: int = 32, learning_rate: float = 5e-3, hidden: int = 64) -> None:
    np.random.seed(1)
    x, y = load()
    order = np.random.permutation(len(x))
    n_val = len(x) // 10
    valid_x, valid_y, train_x, train_y = x[order[:n_val]], y[order[:n_val]], x[order[n_val:]], y[order[n_val:]]
    params: dict[str, np.ndarray] = {}
    initialize_weights(x.shape[1], hidden, params, "layer1")
    initialize_weights(hidden, y.shape[1], params, "output")
    t0 = time.perf_counter()
    for itr in range(epochs):
        total_loss, total_acc = 0.0, 0.0
        batches = get_random_batches(train_x, train_y, batch_size)
        for xb, yb in batches:
            h1 = forward(xb, params, "layer1")
            probs = forward(h1, params, "output", softmax)
            loss, acc = compute_loss_and_acc(yb, probs)
            total_loss += loss
            total_acc += acc / len(batches)
            delta2 = backwards(probs - yb, params, "output", linear_deriv)
            backwards(delta2, params, "layer1")
            for name in ("output", "layer1"):
                params["W" + name] -= learning_rate * params["grad_W" + name]
                params["b" + name] -= learning_rate * params["grad_b" + name]
        if itr % 10 == 0 or itr == epochs - 1:
            probs = forward(forward(valid_x, params, "layer1"), params, "output", softmax)
            _, valid_acc = compute_loss_and_acc(valid_y, probs)
            print(f"itr {itr:3d} loss {total_loss:.1f} acc {total_acc:.3f} valid {valid_acc:.3f}")
    saved = {k: v for k, v in params.items() if "_" not in k}
    np.savez(HERE / "q3_weights.npz", **saved)
    print(f"saved {sorted(saved)} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
