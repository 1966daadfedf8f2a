"""What the dither of the hidden images costs a real network: accuracy of the reference models on the
bit-exact hidden sets vs. on the copies dithered with `--keys` random dither keys (`HiddenSet.for_sandbox()`,
the images a grading shows the sandbox; an installation has one key), and how close each model is to its pass
threshold.

    .venv/bin/python bench/dither.py [--keys 10]

Needs `autograder data prepare`. No sandbox: the reference code is trusted and runs in this process.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "grader" / "assignments"

Predict = Callable[[torch.Tensor], torch.Tensor]


def _load(module: object, cls: str, ckpt: Path) -> torch.nn.Module:
    net = getattr(module, cls)()
    net.load_state_dict(torch.load(ckpt, weights_only=True, map_location="cpu"), strict=True)
    return net.eval()


def _scratch(hw04: object) -> Predict:
    """nd-hw04's NeuralNetwork with the tensors of scratch_ffn.pt put in place, as the judge's `assign` does."""
    net = hw04.NeuralNetwork()  # type: ignore[attr-defined]
    for key, value in torch.load(REF / "nd_hw04" / "reference" / "scratch_ffn.pt", weights_only=True).items():
        *path, last = key.split(".")
        obj = net
        for part in path:
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        setattr(obj, last, value)
    return lambda x: net.forward(x.reshape(len(x), -1)).argmax(1)


def models() -> list[tuple[str, list[tuple[str, float]], float, Predict, int]]:
    """(name, [(hidden set, weight)], threshold, predict, batch) of each reference model graded on hidden data."""
    sys.path[:0] = [str(REF / "rpz_cnn" / "reference"), str(REF / "nd_hw04" / "reference"), str(REF / "gt_hw5" / "reference"), str(REF / "cmu_16720_hw5" / "reference")]
    import hw04  # noqa: PLC0415 - reference modules, importable only after the path is set
    import hw5  # noqa: PLC0415
    import nn as cmu  # noqa: PLC0415
    import pytorch_cnn  # noqa: PLC0415

    mynet = _load(pytorch_cnn, "MyNet", REF / "rpz_cnn" / "reference" / "model.pt")
    finetune = _load(pytorch_cnn, "FinetuneNet", REF / "rpz_cnn" / "reference" / "finetuned.pt")
    ffn = _load(hw04, "FFN", REF / "nd_hw04" / "reference" / "ffn.pt")
    cnn = _load(hw04, "CNN", REF / "nd_hw04" / "reference" / "cnn.pt")
    rng = np.random.default_rng(0)
    mlp = hw5.MLP(rng.uniform(size=(10, 784)), np.arange(10), rng.uniform(size=(10, 784)), np.arange(10), L=1, N_l=16)
    with np.load(REF / "gt_hw5" / "reference" / "mlp_weights.npz", allow_pickle=False) as z:
        mlp.weights = [z[f"arr_{i}"] for i in range(len(z.files))]
    with np.load(REF / "cmu_16720_hw5" / "reference" / "q3_weights.npz", allow_pickle=False) as z:
        q3 = dict(z)

    def flat64(x: torch.Tensor) -> np.ndarray:
        return x.numpy().reshape(len(x), -1).astype(np.float64)

    def q3_predict(x: torch.Tensor) -> torch.Tensor:
        h1 = cmu.forward(flat64(x), q3, "layer1")
        return torch.from_numpy(cmu.forward(h1, q3, "output", cmu.softmax).argmax(1))

    dogs = [("dogs_and_cats/orig", 0.6), ("dogs_and_cats/aug", 0.3), ("dogs_and_cats/new", 0.1)]
    emnist = [("emnist_balanced_small", 1.0)]
    return [
        ("rpz-cnn MyNet", [("fashion_mnist", 1.0)], 0.75, lambda x: pytorch_cnn.classify(mynet, x), 1000),
        ("rpz-cnn FinetuneNet (weighted)", dogs, 0.70, lambda x: pytorch_cnn.classify(finetune, x), 100),
        ("nd-hw04 scratch FFN", emnist, 0.75, _scratch(hw04), 1000),
        ("nd-hw04 FFN", emnist, 0.70, lambda x: ffn(x).argmax(1), 1000),
        ("nd-hw04 CNN", emnist, 0.80, lambda x: cnn(x).argmax(1), 1000),
        ("gt-hw5 MLP", [("mnist", 1.0)], 0.85, lambda x: torch.as_tensor(mlp.predict(flat64(x)).argmax(1)), 1000),
        ("cmu-16720-hw5 Q3.1 network", [("nist36_like", 1.0)], 0.60, q3_predict, 1000),
    ]


def accuracy(predict: Predict, images: np.ndarray, labels: np.ndarray, batch: int) -> float:
    hits = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x = torch.from_numpy(np.asarray(images[i:i + batch], dtype=np.float32) / np.float32(255))
            hits += int((predict(x).numpy() == labels[i:i + batch]).sum())
    return hits / len(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=10)
    args = ap.parse_args()
    from grader.data import load_hidden
    from grader.settings import settings

    torch.set_num_threads(2)
    cfg = settings()
    print(f"{'model':32} {'exact':>7} {'dithered min / median / max':>28} {'max |delta|':>11} {'threshold':>9}")
    worst = 0.0
    for name, sets, threshold, predict, batch in models():
        hidden = [(load_hidden(cfg, s), w) for s, w in sets]
        exact = sum(w * accuracy(predict, h.images, h.labels, batch) for h, w in hidden)
        runs = []
        for _ in range(args.keys):
            seeds = {h.name: secrets.token_bytes(32) for h, _ in hidden}
            runs.append(sum(w * accuracy(predict, *replace(h, dither_seed=seeds[h.name]).for_sandbox(), batch)
                            for h, w in hidden))
        delta = max(abs(r - exact) for r in runs)
        worst = max(worst, delta)
        print(f"{name:32} {exact:7.4f} {min(runs):8.4f} / {statistics.median(runs):.4f} / {max(runs):.4f}"
              f" {delta:11.4f} {threshold:9.2f}", flush=True)
    print(f"largest change of a reference accuracy over {args.keys} dither keys: {worst:.4f}")


if __name__ == "__main__":
    main()
