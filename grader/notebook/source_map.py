"""Where the lines of a module made from a notebook came from, and messages in the student's words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

Origin = tuple[int, int] | None
"""Where a line of a generated module came from: (code cell number, line in that cell); None for the grader's own."""


@dataclass(frozen=True, slots=True)
class Conversion:
    source: str
    """The generated module's text."""
    kept: int
    """Top-level definitions kept."""
    skipped: int
    """Top-level statements left out (training code, data loading, prints, ...) and cells of other cell magics."""
    bad_cells: tuple[int, ...] = ()
    """Numbers (1-based, code cells only) of the cells left out because Jupyter could not run them or they are
    beyond a bound."""
    origins: tuple[Origin, ...] = ()
    """For each line of `source` (the first line first): where in the notebook it came from."""
    notices: tuple[str, ...] = ()
    """What to tell the student (cells left out and why, a moved ``from __future__`` import), naming the notebook."""


@dataclass(frozen=True, slots=True)
class NotebookModule:
    """A module the grader made from a notebook the student uploaded."""

    notebook: str
    """The notebook's file name, e.g. ``hw04.ipynb``."""
    module: str
    """The generated module's file name, e.g. ``hw04.py``."""
    origins: tuple[Origin, ...] = ()

    def place(self, line: int) -> str:
        """Line `line` of the module in the student's words: ``hw04.ipynb, code cell 7, line 3``."""
        origin = self.origins[line - 1] if 0 < line <= len(self.origins) else None
        return f"{self.notebook}, code cell {origin[0]}, line {origin[1]}" if origin else self.notebook


@dataclass(frozen=True, slots=True)
class SourceMap:
    """The notebooks of one submission; turns messages about the generated modules into messages about them."""

    modules: tuple[NotebookModule, ...] = ()

    def student_text(self, message: str) -> str:
        """`message` naming the uploaded notebook (and its code cell, where a line is given) for each generated
        module: ``importing hw04.py failed: ... (hw04.py line 40, in Foo)`` becomes ``importing hw04.ipynb failed:
        ... (hw04.ipynb, code cell 3, line 2, in Foo)``."""
        for m in self.modules:
            name = re.escape(m.module)
            message = re.sub(rf"(?<![\w.-]){name} line (\d+)", partial(_place, m), message)
            message = re.sub(rf"(?<![\w.-]){name}\b", m.notebook, message)
        return message


# --- reading the notebook file -------------------------------------------------------------------------------


def _place(m: NotebookModule, hit: re.Match[str]) -> str:
    return m.place(int(hit.group(1)))
