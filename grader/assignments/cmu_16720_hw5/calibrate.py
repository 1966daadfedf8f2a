"""Calibrate Q3.1's bar on the NIST36-like stand-in (instructor side: it reads the hidden set's labels).

    PYTHONPATH=$PWD .venv/bin/python -m grader.assignments.cmu_16720_hw5.calibrate    # writes calibration.json (~10 min)
    ... calibrate --reuse    # keeps the drawn-once rows of calibration.json (deterministic), trains the rest

Networks trained the way the handout trains (train.train: run_q3.py's loop and hyper-parameters, one per seed)
on a different split than the hidden set (EMNIST-balanced-small's TRAINING split in NIST36's conventions; the
hidden set is its TEST split), graded as the grader grades them (the hidden images shuffled and dithered by
HiddenSet.for_sandbox, /255, flattened, run through forward); then the same seeds with new random batches every
epoch (the handout's other strategy, "resampled"). For each network it also records what the same
weights score when the outputs are read in EMNIST's order (0-9 then A-Z) or the images are fed upright: the
two convention slips Q3.1 must fail.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from grader.assignments.cmu_16720_hw5.train import HANDOUT, HERE, load_splits, nn, predict, train
from grader.data import load_hidden
from grader.settings import settings

SEEDS = (1, 2, 3, 4, 5)
OUT = HERE / "calibration.json"


def emnist_order(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same network with its outputs in EMNIST's order (output i = 0-9 then A-Z): what training on
    EMNIST-ordered labels gives, up to the random draws."""
    return {**params, "Woutput": np.roll(params["Woutput"], 10, axis=1), "boutput": np.roll(params["boutput"], 10)}


def upright(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same network trained on upright images (rows of Wlayer1 transposed back): what a student gets who
    forgets that NIST36 is stored transposed."""
    w = params["Wlayer1"]
    return {**params, "Wlayer1": w.reshape(32, 32, -1).transpose(1, 0, 2).reshape(1024, -1)}


def hidden_accuracy(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray) -> float:
    return round(float(np.mean(predict(x, params).argmax(axis=1) == labels)), 4)


def main(path: Path = OUT, reuse: bool = False) -> None:
    hidden = load_hidden(settings(), "nist36_like")
    images, labels = hidden.for_sandbox(rng=np.random.default_rng(0))
    x = (images.astype(np.float32) / np.float32(255)).reshape(len(images), -1).astype(np.float64)
    splits = load_splits()
    rows = json.loads(path.read_text())["networks"] if reuse else []
    resampled: list[dict[str, Any]] = []
    for seed, resample in [(s, False) for s in SEEDS if not reuse] + [(s, True) for s in SEEDS]:
        t0 = time.perf_counter()
        params = train(*splits["train"], seed=seed, resample=resample, log=None)
        row = {
            "seed": seed,
            "train": round(nn.compute_loss_and_acc(splits["train"][1], predict(splits["train"][0], params))[1], 4),
            "valid": round(nn.compute_loss_and_acc(splits["valid"][1], predict(splits["valid"][0], params))[1], 4),
            "hidden": hidden_accuracy(params, x, labels),
            "hidden_emnist_order": hidden_accuracy(emnist_order(params), x, labels),
            "hidden_upright": hidden_accuracy(upright(params), x, labels),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        (resampled if resample else rows).append(row)
        print(json.dumps({"resampled": resample, **row}), flush=True)
    result = {
        "method": "run_q3.py's loop (batches drawn once), seeds " + ", ".join(map(str, SEEDS)) + "; "
                  + ", ".join(f"{k} {v:g}" for k, v in HANDOUT.items())
                  + f"; trained on {len(splits['train'][0])} EMNIST-balanced-small TRAIN images (NIST36 "
                  f"conventions), validated on {len(splits['valid'][0])} held out; hidden = the stand-in "
                  f"({len(labels)} TEST images), dithered as graded",
        "hidden_set": {"count": len(labels), "stand_in": hidden.stand_in},
        "networks": rows,
        "hidden_min": min(r["hidden"] for r in rows),
        "hidden_mean": round(float(np.mean([r["hidden"] for r in rows])), 4),
        "resampled": resampled,
        "resampled_hidden_min": min(r["hidden"] for r in resampled),
    }
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"min {result['hidden_min']}, mean {result['hidden_mean']} -> {path}")


if __name__ == "__main__":
    main(reuse="--reuse" in sys.argv[1:])
