"""A small assignment written into a temporary folder, as a newcomer adds one: a spec and a NumPy reference (one
function, checked by the existing `function` kind against the reference on judge-chosen inputs), no code."""

from __future__ import annotations

from pathlib import Path

NAME = "tiny-relu"

SPEC = '''\
[assignment]
name = "tiny-relu"
title = "Tiny: ReLU in NumPy"
points = 2
files = ["tiny.py"]
page = """
## What to submit

One zip with `tiny.py` at the zip root, defining `relu(x)`: the elementwise max(x, 0) of a NumPy array.
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
'''

REFERENCE = '''\
import numpy as np


def relu(x):
    return np.maximum(x, 0)
'''

MUTANTS = '''\
[[mutants]]
name = "relu keeps the negative values"
target = "relu"
message = "relu(np.array([[-1.0, 0.0, 2.5]]))"
replace = { file = "tiny.py", find = "np.maximum(x, 0)", with = "x" }
'''


def write_tiny(root: Path, *, folder: str = "tiny_relu", spec: str = SPEC) -> Path:
    """The tiny assignment's folder under `root` (spec, reference/tiny.py, mutants.toml); returns the folder."""
    path = root / folder
    (path / "reference").mkdir(parents=True)
    (path / "assignment.toml").write_text(spec)
    (path / "reference" / "tiny.py").write_text(REFERENCE)
    (path / "mutants.toml").write_text(MUTANTS)
    return path
