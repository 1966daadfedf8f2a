"""Names, classes and on-disk layout of the hidden test sets."""

from __future__ import annotations

from pathlib import Path

FASHION_MNIST = "fashion_mnist"
DOGS_AND_CATS_PARTS = ("orig", "aug", "new")
DOGS_AND_CATS = tuple(f"dogs_and_cats/{part}" for part in DOGS_AND_CATS_PARTS)
EXTRA_SIZES = {"emnist_balanced_small": (28, 28), "nist36_like": (32, 32), "mnist": (28, 28), "digits": (8, 8)}
"""Sets of the notebook-era assignments (grader.data.extra) and their image sizes."""
EXTRA_SETS = tuple(EXTRA_SIZES)
ALL_SETS = (FASHION_MNIST, *DOGS_AND_CATS, *EXTRA_SETS)

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


def default_size(name: str) -> tuple[int, int]:
    """The image size a set is graded at unless an assignment asks for another."""
    if name in EXTRA_SIZES:
        return EXTRA_SIZES[name]
    return FASHION_MNIST_SIZE if name == FASHION_MNIST else DEFAULT_IMAGE_SIZE


def arrays_dir(hidden_data: Path, name: str, size: tuple[int, int]) -> Path:
    """Where the arrays of set `name` at `size` (height, width) live, e.g. arrays/dogs_and_cats/orig/96x96."""
    return hidden_data / ARRAYS_DIR / name / f"{size[0]}x{size[1]}"
