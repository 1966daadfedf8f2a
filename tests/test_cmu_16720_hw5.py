"""cmu-16720-hw5: the statistical Xavier check, the batching partition check."""

from __future__ import annotations

import math

import numpy as np

from grader.assignments import load_assignment
from grader.judge.batching import partition_problem
from grader.judge.statistics import ks_uniform, xavier_problem

RNG = np.random.default_rng(0)


def test_xavier_accepts_glorot_uniform_and_rejects_look_alikes() -> None:
    n_in, n_out = 1024, 64
    a = math.sqrt(6 / (n_in + n_out))
    b = np.zeros(n_out)
    for _ in range(20):  # no false alarms on correct draws
        assert xavier_problem(RNG.uniform(-a, a, (n_in, n_out)), b, n_in, n_out, what="w") is None
    normal = RNG.normal(0, math.sqrt(2 / (n_in + n_out)), (n_in, n_out))
    assert "bound" in str(xavier_problem(normal, b, n_in, n_out, what="w"))
    assert "variance" in str(xavier_problem(RNG.uniform(-a / 2, a / 2, (n_in, n_out)), b, n_in, n_out, what="w"))
    assert "shape" in str(xavier_problem(RNG.uniform(-a, a, (n_out, n_in)), b, n_in, n_out, what="w"))
    assert "zeros" in str(xavier_problem(RNG.uniform(-a, a, (n_in, n_out)), b + 0.1, n_in, n_out, what="w"))
    bimodal = np.sign(RNG.uniform(-1, 1, (n_in, n_out))) * a * math.sqrt(1 / 3) * np.ones((n_in, n_out))
    assert "uniform" in str(xavier_problem(bimodal, b, n_in, n_out, what="w"))  # right variance, wrong law
    assert ks_uniform(RNG.uniform(-1, 1, 10_000), 1.0) < 0.02


def batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, size: int) -> dict:
    return {"$list": [{"$list": [x[order[i:i + size]], y[order[i:i + size]]], "type": "tuple"}
                      for i in range(0, len(x), size)], "type": "list"}


def test_partition_check() -> None:
    n, size = 23, 5
    x = np.concatenate([np.arange(n)[:, None], RNG.normal(size=(n, 2))], axis=1)
    y = np.eye(3)[RNG.integers(0, 3, n)]
    order = RNG.permutation(n)
    assert partition_problem(batches(x, y, order, size), x, y, size, what="g") == order.tolist()
    assert "left out" in str(partition_problem(batches(x, y, order[:-3], size), x, y, size, what="g"))
    assert "more than one batch" in str(partition_problem(batches(x, y, np.r_[order, order[:2]], size), x, y, size,
                                                          what="g"))
    assert "batches of" in str(partition_problem(batches(x, y, order, 4), x, y, size, what="g"))
    swapped = batches(x, y, order, size)
    swapped["$list"][0]["$list"][1] = swapped["$list"][0]["$list"][1][::-1].copy()
    assert "do not belong" in str(partition_problem(swapped, x, y, size, what="g"))


def test_spec_points_follow_the_handout() -> None:
    spec = load_assignment("cmu-16720-hw5")
    assert spec.max_score == 28
    points = {c.target: c.points for c in spec.checks}
    assert points["initialize_weights"] == 3 and points["backwards"] == 7 and points["Q3.1 network"] == 5
    assert "NIST36-like" in spec.page and "allow_pickle=False" in spec.page

