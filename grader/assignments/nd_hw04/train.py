"""Train the reference networks on the course's EMNIST-balanced-small training split (9,400 images, 47 classes).

    python -m grader.assignments.nd_hw04.train [scratch] [ffn] [cnn]   # writes scratch_ffn.pt, ffn.pt, cnn.pt (minutes)

scratch_ffn.pt holds the hand-written NeuralNetwork's tensors as {"layers.<i>.W": ..., "layers.<i>.b": ...}.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from grader.assignments.nd_hw04.reference import hw04 as _hw04
from grader.settings import settings

HERE = Path(__file__).resolve().parent / "reference"  # the checkpoints belong to the reference solution
# The reference is written as the handout's students write it (untyped on purpose): used through Any.
hw04: Any = _hw04
Batches = DataLoader[tuple[torch.Tensor, ...]]


def loaders() -> tuple[Batches, Batches]:
    def load(split: str) -> TensorDataset:
        with np.load(settings().shared_data / "emnist_balanced_small" / f"emnist_balanced_small_{split}.npz") as z:
            x = torch.from_numpy(z["X"]).float().div(255.0).unsqueeze(1)
            return TensorDataset(x, torch.from_numpy(z["y"]).long())

    return DataLoader(load("train"), batch_size=64, shuffle=True), DataLoader(load("test"), batch_size=500)


def accuracy(predict: Callable[[torch.Tensor], torch.Tensor], loader: Batches) -> float:
    with torch.no_grad():
        return float(np.mean([(predict(x).argmax(1) == y).float().mean().item() for x, y in loader]))


def train_torch(model: torch.nn.Module, train: Batches, epochs: int,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for x, y in train:
            opt.zero_grad()
            loss_fn(model(x), y).backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward: no annotations
            opt.step()
    model.eval()


def main(parts: list[str]) -> None:
    torch.manual_seed(0)
    train, test = loaders()
    t0 = time.perf_counter()
    if "scratch" in parts:
        train_scratch(train, test)
    for name, model, epochs, loss_fn in (("ffn", hw04.FFN(), 15, F.cross_entropy), ("cnn", hw04.CNN(), 8, F.nll_loss)):
        if name in parts:
            t0 = time.perf_counter()
            train_torch(model, train, epochs, loss_fn)
            torch.save(model.state_dict(), HERE / f"{name}.pt")
            print(f"{name}: test accuracy {accuracy(model, test):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)


def train_scratch(train: Batches, test: Batches) -> None:
    """The hand-written network: 784-512-47, SGD with a learning rate decayed from 0.1 to 0.01."""
    t0 = time.perf_counter()
    net = hw04.NeuralNetwork()
    for lr in (0.1,) * 25 + (0.03,) * 10 + (0.01,) * 5:
        net.train(train, [], epochs=1, learning_rate=lr, verbose=False)
    torch.save({f"layers.{i}.{n}": getattr(layer, n) for i, layer in enumerate(net.layers) for n in ("W", "b")
                if hasattr(layer, n)}, HERE / "scratch_ffn.pt")
    print(f"scratch FFN: test accuracy {accuracy(lambda x: net.forward(x.flatten(1)), test):.4f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["scratch", "ffn", "cnn"])
