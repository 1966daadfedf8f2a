"""Train the reference classnets on Digits(mode="train") with early stopping on "val", as the notebook does.

    python -m grader.assignments.a4_digits.train     # writes classifier_mlp.pt and classifier_cnn.pt (about a minute)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from grader.assignments.a4_digits.reference import assignment4 as _a4

HERE = Path(__file__).resolve().parent / "reference"  # the checkpoints belong to the reference solution
# The reference is written as the handout's students write it (untyped on purpose): used through Any.
a4: Any = _a4


def main() -> None:
    torch.manual_seed(4)
    loaders = {m: DataLoader(a4.Digits(mode=m), batch_size=64, shuffle=m == "train") for m in ("train", "val", "test")}
    for name, make in (("classifier_mlp", a4.make_mlp), ("classifier_cnn", a4.make_cnn)):
        t0 = time.perf_counter()
        model = a4.ClassifierNeuralNet(make())
        optimizer = torch.optim.Adamax([p for p in model.parameters() if p.requires_grad], lr=a4.lr,
                                       weight_decay=a4.wd)
        nll_val, _ = a4.training(str(HERE / name), a4.max_patience, 1000, model, optimizer, loaders["train"],
                                 loaders["val"])
        nll, err = a4.evaluation(loaders["test"], name=str(HERE / name))
        print(f"{name}: {len(nll_val)} epochs, test nll={nll:.4f} ce={err:.4f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
