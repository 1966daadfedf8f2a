"""A small assignment written into a temporary folder, as a newcomer adds one, with no code: a spec, a NumPy
reference (`relu`, checked by the existing `function` kind against the reference on judge-chosen inputs, and
`classify`, checked by the existing `predictions` kind on a hidden set) and the hidden set itself, shipped in the
folder and declared in the spec (``[[hidden_sets]]``, grader.data.folder_sets)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

NAME = "tiny-relu"
SET = "tiny_blobs"
"""The hidden set the folder brings: 4x4 grey images, dark (label 0) or light (label 1)."""
SET_CLASSES = ("dark", "light")
SET_COUNT = 24
SHA256 = "@SHA256@"
"""Stands for the sha256 of the set's file in SPEC; `write_tiny` puts in the file's."""

SPEC = '''\
[assignment]
name = "tiny-relu"
title = "Tiny: ReLU in NumPy"
points = 3
files = ["tiny.py"]
page = """
## What to submit

One zip with `tiny.py` at the zip root, defining `relu(x)`: the elementwise max(x, 0) of a NumPy array, and
`classify(x)`: for grey images x of shape (N, 1, 4, 4) with values in [0, 1], the class of each (0 dark, 1 light).
"""

[[checks]]
id = "tiny.relu"
kind = "function"
target = "relu"
module = "tiny"
points = 2.0
[checks.params]
fn = "relu"
cases = [
  { args = [{ array = [[-1.0, 0.0, 2.5]] }], label = "relu(np.array([[-1.0, 0.0, 2.5]]))" },
  { args = [{ normal = [4, 3], scale = 2.0 }], label = "relu(x) for x of shape (4, 3)" },
]

[[checks]]
id = "tiny.classify"
kind = "predictions"
target = "classify"
module = "tiny"
points = 1.0
[checks.params]
threshold = 0.9
metric = "tiny.accuracy"
steps = [
  { call = "classify", args = [{ data = "tiny_blobs", label = "tiny blobs" }], label = "classify(x) on the hidden tiny blobs" },
]

[[hidden_sets]]
name = "tiny_blobs"
about = "24 grey 4x4 blobs made for this assignment"
source = "data/tiny_blobs.npz"
format = "npz"
images = "x"
labels = "y"
layout = "NHW"
classes = ["dark", "light"]
image_size = [4, 4]
channels = 1
count = 24
sha256 = "@SHA256@"
[[hidden_sets.conventions]]
topic = "label order"
rule = "0 is dark, 1 is light"
[[hidden_sets.conventions]]
topic = "image orientation"
rule = "as stored, row by row"
[[hidden_sets.conventions]]
topic = "scaling"
rule = "uint8 0..255; divided by 255 for the student"
'''

REFERENCE = '''\
import numpy as np


def relu(x):
    return np.maximum(x, 0)


def classify(x):
    return (x.reshape(len(x), -1).mean(axis=1) > 0.5).astype(np.int64)
'''

MUTANTS = '''\
[[mutants]]
name = "relu keeps the negative values"
target = "relu"
message = "relu(np.array([[-1.0, 0.0, 2.5]]))"
replace = { file = "tiny.py", find = "np.maximum(x, 0)", with = "x" }

[[mutants]]
name = "classify swaps dark and light"
target = "classify"
message = "accuracy"
replace = { file = "tiny.py", find = "> 0.5", with = "< 0.5" }
'''


def blobs(n: int = SET_COUNT) -> tuple[np.ndarray, np.ndarray]:
    """The hidden set's images (N, 4, 4) uint8 and labels: dark ones 0..60, light ones 190..255."""
    rng = np.random.default_rng(12)
    y = np.arange(n) % 2
    low = np.where(y == 1, 190, 0)[:, None, None]
    x = (low + rng.integers(0, 61, (n, 4, 4))).astype(np.uint8)
    return x, y.astype(np.int64)


def blobs_npz(**arrays: np.ndarray) -> bytes:
    """An npz file's bytes (the default: `blobs()` as keys x and y)."""
    if not arrays:
        x, y = blobs()
        arrays = {"x": x, "y": y}
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def write_tiny(root: Path, *, folder: str = "tiny_relu", spec: str = SPEC, data: bytes | None = None) -> Path:
    """The tiny assignment's folder under `root` (spec, reference/tiny.py, mutants.toml, data/tiny_blobs.npz);
    `@SHA256@` in the spec becomes the data file's sha256. Returns the folder."""
    path = root / folder
    (path / "reference").mkdir(parents=True)
    (path / "data").mkdir()
    data = blobs_npz() if data is None else data
    (path / "data" / "tiny_blobs.npz").write_bytes(data)
    (path / "assignment.toml").write_text(spec.replace(SHA256, hashlib.sha256(data).hexdigest()))
    (path / "reference" / "tiny.py").write_text(REFERENCE)
    (path / "mutants.toml").write_text(MUTANTS)
    return path
