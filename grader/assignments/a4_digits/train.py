"""Train the reference classnets on Digits(mode="train") with early stopping on "val", as the notebook does.

    python -m grader.assignments.a4_digits.train     # writes classifier_mlp.pt and classifier_cnn.pt (about a minute)
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from grader.assignments.a4_digits.reference.assignment4 import (
    ClassifierNeuralNet,
    Digits,
    evaluation,
    lr,
    make_cnn,
    make_mlp,
    max_patience,
    training,
    wd,
)

HERE = Path(__file__).resolve().parent / "reference"  # the checkpoints belong to the reference solution


def main() -> None:
    torch.manual_seed(4)
    loaders = {m: DataLoader(Digits(mode=m), batch_size=64, shuffle=m == "train") for m in ("train", "val", "test")}
    for name, make in (("classifier_mlp", make_mlp), ("classifier_cnn", make_cnn)):
        t0 = time.perf_counter()
        model = ClassifierNeuralNet(make())
        optimizer = torch.optim.Adamax([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=wd)
        nll_val, _ = training(str(HERE / name), max_patience, 1000, model, optimizer, loaders["train"], loaders["val"])
        nll, err = evaluation(loaders["test"], name=str(HERE / name))
        print(f"{name}: {len(nll_val)} epochs, test nll={nll:.4f} ce={err:.4f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
