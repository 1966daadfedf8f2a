"""Names and classes of the rpz-cnn sets, and the on-disk layout of the hidden test sets.

Which sets exist, their sizes and conventions: the registry (`grader.data.registry`)."""

from __future__ import annotations

from pathlib import Path

FASHION_MNIST = "fashion_mnist"
DOGS_AND_CATS_PARTS = ("orig", "aug", "new")
DOGS_AND_CATS = tuple(f"dogs_and_cats/{part}" for part in DOGS_AND_CATS_PARTS)

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
"""torchvision.datasets.FashionMNIST.classes, in label order."""
DOGS_AND_CATS_CLASSES = ("cat", "dog")
"""ImageFolder order (sorted folder names): cat=0, dog=1."""

FASHION_MNIST_SIZE = (28, 28)
DEFAULT_IMAGE_SIZE = (96, 96)
"""The seed's transforms.Resize((96, 96)) for image-folder sets."""

ARRAYS_DIR = "arrays"
"""Sub-folder of hidden_data holding the preprocessed arrays (never inside an ImageFolder root)."""
PREPARE_HINT = "run `autograder data prepare`"


def arrays_dir(hidden_data: Path, name: str, size: tuple[int, int]) -> Path:
    """Where the arrays of set `name` at `size` (height, width) live, e.g. arrays/dogs_and_cats/orig/96x96."""
    return hidden_data / ARRAYS_DIR / name / f"{size[0]}x{size[1]}"
