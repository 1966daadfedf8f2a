"""Hidden image sets of one grading: staged on the host where the sandbox cannot see them, and linked into the
folder the sandbox sees as /job/data only while the op that needs them runs.

So student code imported at the start of a grading, or run by any other check, never sees a hidden image;
the sandbox process that has seen one is "tainted" for the rest of its life (see `student_text`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from grader.harness.op_messages import OpRequest, PredictOp


def op_datasets(op: OpRequest) -> set[str]:
    """Names of the hidden sets an op reads: a predict op's ``data``, and every ``{"$data": name}`` value."""
    names: set[str] = set()
    if isinstance(op, PredictOp) and isinstance(op.data, str):
        names.add(op.data)

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if isinstance(v.get("$data"), str):
                names.add(v["$data"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for key in ("args", "kwargs", "value"):
        walk(getattr(op, key, None))
    return names


class HiddenFiles:
    """The staged sets (``job/staged``, never bound) and the shown folder (``job/data``, bound read-only)."""

    def __init__(self, job_dir: Path, datasets: Mapping[str, np.ndarray]) -> None:
        self.staged = job_dir / "staged"
        self.shown = job_dir / "data"
        self.staged.mkdir(mode=0o700)
        self.shown.mkdir(mode=0o755)
        for name, images in datasets.items():
            np.save(self.staged / f"{name}.npy", images, allow_pickle=False)
            os.chmod(self.staged / f"{name}.npy", 0o644)  # read by the sandbox's user once linked in
        self.names = frozenset(datasets)

    def show(self, names: Iterable[str]) -> bool:
        """Link the named sets into the shown folder; True when any hidden set is now visible."""
        shown = False
        for name in names:
            if name not in self.names:
                continue
            target = self.shown / f"{name}.npy"
            if not target.exists():
                os.link(self.staged / f"{name}.npy", target)
            shown = True
        return shown

    def hide(self) -> None:
        """Unlink everything from the shown folder (a process that mapped a file keeps only its own copy)."""
        for f in self.shown.iterdir():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
