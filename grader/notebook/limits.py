"""Bounds on reading untrusted notebooks, and what Jupyter itself allows in a cell."""

from __future__ import annotations
import __future__

import ast
from dataclasses import dataclass

KEEP_CELL_MAGICS = frozenset({"time", "capture", "prun"})
"""Cell magics that run their body in the notebook's namespace; any other one's cell is left out."""
MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_NOTICES = 10
"""Cells named one by one in the notices; the rest are counted."""

_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag
_CELL_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # IPython runs cells with top-level await (autoawait)


@dataclass(frozen=True, slots=True)
class NotebookLimits:
    """Bounds on reading one untrusted notebook (each was measured; see tests/test_notebook_limits.py)."""

    notebook_bytes: int = MAX_NOTEBOOK_BYTES
    json_items: int = 1_000_000
    """Upper bound of the JSON values the file may hold, counted from its bytes before decoding: a value costs
    up to about 75 bytes once decoded (an empty ``{}`` in 3 bytes of JSON)."""
    cells: int = 10_000
    """Cells of any kind."""
    code_chars: int = 1_000_000
    """All code cells together."""
    cell_chars: int = 200_000
    cell_lines: int = 10_000
    depth: int = 500
    """How deep one statement's expressions may nest (estimated from its tokens, an upper bound); CPython's
    parser exhausts the recursion limit near 1000."""
    transform_chars: int = 2_000_000
    """Text IPython's transformers may tokenize (every pass counts; they retokenize after each magic line)."""
    transforms_per_cell: int = 500
    """IPython's own limit (TRANSFORM_LOOP_LIMIT): Jupyter refuses a cell with more magic and shell lines."""
    cpu_seconds: float = 30.0
    """Reading time (CPU time of the reading thread, so that a busy machine does not count); cells not reached
    are left out. The other bounds keep the worst notebook near 5 s."""


