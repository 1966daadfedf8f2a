"""Reference notebooks: a course notebook (.ipynb) made from a reference module plus the notebook's own
top-level cells (installs, Drive mounts, data loading, training), which the grader must leave out."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def module_cells(source: str) -> list[str]:
    """A module's top-level statements grouped into cells: imports and constants together, one cell per def."""
    lines = source.splitlines()
    cells: list[list[str]] = []
    group: list[str] = []
    for node in ast.parse(source).body:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        text = lines[start - 1 : node.end_lineno]
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            if group:
                cells.append(group)
                group = []
            cells.append(text)
        else:
            group += text
    if group:
        cells.append(group)
    return ["\n".join(c) for c in cells]


def notebook(title: str, cells: Sequence[str]) -> dict[str, Any]:
    """An nbformat 4 notebook: a markdown title, then the code cells."""

    def cell(kind: str, text: str) -> dict[str, Any]:
        src = text.splitlines(keepends=True)
        base = {"cell_type": kind, "metadata": {}, "source": src}
        return base if kind == "markdown" else {**base, "execution_count": None, "outputs": []}

    return {"cells": [cell("markdown", f"# {title}"), *(cell("code", c) for c in cells)],
            "metadata": {"colab": {"provenance": []}, "kernelspec": {"display_name": "Python 3", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 0}


def render(title: str, module: Path, before: Sequence[str], after: Sequence[str]) -> str:
    """The notebook's JSON text: `before` cells, the module's cells, then `after` cells."""
    cells = [*before, *module_cells(module.read_text()), *after]
    return json.dumps(notebook(title, cells), indent=1) + "\n"


def write(path: Path, text: str) -> None:
    path.write_text(text)
    print(f"wrote {path}")
