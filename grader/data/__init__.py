"""Hidden test data: `prepare` builds hidden_data/ (instructor side), `load_hidden` serves the judge; the sets
are entries of `grader.data.registry` (`register` adds one).

Importing this package is cheap (numpy only); PIL and torchvision are imported by `prepare` when needed.
"""

from __future__ import annotations

from typing import Any

from grader.data.catalog import DOGS_AND_CATS_CLASSES, FASHION_MNIST_CLASSES
from grader.data.errors import DataUnavailable
from grader.data.hidden import HiddenSet, load_hidden
from grader.data.prepare import prepare
from grader.data.registry import HiddenSetEntry, register

__all__ = [
    "ALL_SETS",
    "DOGS_AND_CATS_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DataUnavailable",
    "HiddenSet",
    "HiddenSetEntry",
    "load_hidden",
    "prepare",
    "register",
]


def __getattr__(name: str) -> Any:
    if name == "ALL_SETS":  # the registered sets, read when asked (registering a set adds to it)
        from grader.data.registry import names

        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
