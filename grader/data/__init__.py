"""Hidden test data: `prepare` builds hidden_data/ (instructor side), `load_hidden` serves the judge.

Importing this package is cheap (numpy only); PIL and torchvision are imported by `prepare` when needed.
"""

from __future__ import annotations

from grader.data.catalog import ALL_SETS, DOGS_AND_CATS_CLASSES, FASHION_MNIST_CLASSES
from grader.data.errors import DataUnavailable
from grader.data.hidden import HiddenSet, load_hidden
from grader.data.prepare import prepare

__all__ = [
    "ALL_SETS",
    "DOGS_AND_CATS_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DataUnavailable",
    "HiddenSet",
    "load_hidden",
    "prepare",
]
