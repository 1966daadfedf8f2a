"""Train the Q3.1 network the way the handout's run_q3.py trains it, on the stand-in's training split.

    python -m grader.assignments.cmu_16720_hw5.train    # writes q3_weights.npz (about a minute)

The handout's way: 1024-64-36 (sigmoid, then softmax), plain SGD on gradients summed over the batch, the
batches drawn once before the loop ("The provided code samples batch only once"), and the hyper-parameters of
the handout's worked answer: np.random.seed(1), 50 epochs ("train for at least 50 epochs"), batch_size = 100,
learning_rate = 2e-3.

Data: NIST36's own .mat files are not available, so the training data is EMNIST-balanced-small's TRAINING
split (the hidden stand-in is built from its TEST split) converted exactly like the hidden set
(grader.data.extra.nist36_from_emnist: classes A-Z then 0-9, dark ink on white in [0, 1], stored transposed,
flattened to 1024); 20 images per class are held out as the validation set, like nist36_valid.mat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from grader.assignments.cmu_16720_hw5.reference import nn as _nn
from grader.data.extra import nist36_from_emnist
from grader.settings import settings

HERE = Path(__file__).resolve().parent
# The reference is written as the handout's students write it (untyped on purpose): used through Any.
nn: Any = _nn
HANDOUT: dict[str, Any] = {"epochs": 50, "batch_size": 100, "learning_rate": 2e-3, "hidden": 64}
"""The handout's hyper-parameters (its Q3.1 answer: batch_size = 100, learning_rate = 2e-3, 50 epochs)."""
VALID_PER_CLASS = 20
Params = dict[str, np.ndarray]


def load_splits(valid_per_class: int = VALID_PER_CLASS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (x, y), "valid": (x, y)}: EMNIST-balanced-small's training split in NIST36's conventions, x
    (N, 1024) floats in [0, 1], y one-hot (N, 36); the first valid_per_class images of each class are held out."""
    split = settings().shared_data / "emnist_balanced_small" / "emnist_balanced_small_train.npz"
    with np.load(split, allow_pickle=False) as z:
        images, labels = nist36_from_emnist(z["X"], z["y"].astype(np.int64))
    x, y = images.reshape(len(images), -1) / 255.0, np.eye(36)[labels]
    rank = np.zeros(len(labels), np.int64)
    for k in range(36):
        where = np.flatnonzero(labels == k)
        rank[where] = np.arange(len(where))
    valid = rank < valid_per_class
    return {"train": (x[~valid], y[~valid]), "valid": (x[valid], y[valid])}


def predict(x: np.ndarray, params: Params) -> np.ndarray:
    """Class probabilities, as run_q3.py evaluates: forward(forward(x, 'layer1'), 'output', softmax)."""
    probs: np.ndarray = nn.forward(nn.forward(x, params, "layer1"), params, "output", nn.softmax)
    return probs


def train(x: np.ndarray, y: np.ndarray, *, seed: int = 1, epochs: int = HANDOUT["epochs"],
          batch_size: int = HANDOUT["batch_size"], learning_rate: float = HANDOUT["learning_rate"],
          hidden: int = HANDOUT["hidden"], resample: bool = False,
          log: Callable[[str], None] | None = print) -> Params:
    """run_q3.py's training loop; with resample, new random batches every epoch (the handout's option)."""
    np.random.seed(seed)
    batches = nn.get_random_batches(x, y, batch_size)
    params: Params = {}
    nn.initialize_weights(x.shape[1], hidden, params, "layer1")
    nn.initialize_weights(hidden, y.shape[1], params, "output")
    for itr in range(epochs):
        if resample and itr:
            batches = nn.get_random_batches(x, y, batch_size)
        total_loss, avg_acc = 0.0, 0.0
        for xb, yb in batches:
            h1 = nn.forward(xb, params, "layer1")
            probs = nn.forward(h1, params, "output", nn.softmax)
            loss, acc = nn.compute_loss_and_acc(yb, probs)
            total_loss += loss
            avg_acc += acc / len(batches)
            delta2 = nn.backwards(probs - yb, params, "output", nn.linear_deriv)
            nn.backwards(delta2, params, "layer1", nn.sigmoid_deriv)
            for name in ("output", "layer1"):
                params["W" + name] -= learning_rate * params["grad_W" + name]
                params["b" + name] -= learning_rate * params["grad_b" + name]
        if log is not None and (itr % 10 == 0 or itr == epochs - 1):
            log(f"itr {itr:3d} loss {total_loss / len(x):.3f} acc {avg_acc:.3f}")
    return params


def weights(params: Params) -> Params:
    """What q3_weights.npz holds: the arrays whose names have no "_" (Wlayer1, blayer1, Woutput, boutput)."""
    return {k: v for k, v in params.items() if "_" not in k}


def main() -> None:
    splits = load_splits()
    t0 = time.perf_counter()
    params = train(*splits["train"])
    _, valid_acc = nn.compute_loss_and_acc(splits["valid"][1], predict(splits["valid"][0], params))
    np.savez(HERE / "reference" / "q3_weights.npz", **weights(params))  # type: ignore[arg-type]  # numpy's stub
    print(f"validation accuracy {valid_acc:.4f}; saved {sorted(weights(params))} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
