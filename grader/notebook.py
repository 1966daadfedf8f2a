"""Jupyter/Colab notebooks as submissions: turn `NAME.ipynb` into a module `NAME.py` of its definitions.

Only code cells count. Shell (``!cmd``) and magic (``%cmd``) lines become ``pass``; cells run by a cell
magic other than timing/capture (``%%bash``, ``%%writefile``, ...) are left out. Of every cell's top-level
statements an AST filter keeps imports (guarded, so a missing Colab-only package does not stop the import),
function and class definitions, and assignments of simple constants; top-level training code, data
loading and prints do not run. The module is then graded like any other, in the same sandbox.

The sandbox only sees `NAME.py`; the judge's messages name the notebook the student uploaded instead, and for
a line of the module its code cell and line there (`SourceMap`, applied by the engine to every message).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader.archive import Unpacked

KEEP_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")
MAX_NOTEBOOK_BYTES = 50 * 2**20


Origin = tuple[int, int] | None
"""Where a line of a generated module came from: (code cell number, line in that cell); None for the grader's own."""


@dataclass(frozen=True, slots=True)
class Conversion:
    source: str
    """The generated module's text."""
    kept: int
    """Top-level definitions kept."""
    skipped: int
    """Top-level statements left out (training code, data loading, prints, ...)."""
    bad_cells: tuple[int, ...] = ()
    """Numbers (1-based, code cells only) of cells with a syntax error; they are left out."""
    origins: tuple[Origin, ...] = ()
    """For each line of `source` (the first line first): where in the notebook it came from."""


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
            message = re.sub(rf"(?<![\w.-]){name} line (\d+)", lambda hit, m=m: m.place(int(hit.group(1))), message)
            message = re.sub(rf"(?<![\w.-]){name}\b", m.notebook, message)
        return message


def notebook_cells(data: bytes) -> list[str]:
    """The sources of a notebook's code cells, in order (nbformat 4; raises ValueError when unreadable)."""
    try:
        nb = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a notebook (invalid JSON: {exc})") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook (no list of cells; save it as an nbformat 4 .ipynb)")
    cells = []
    for cell in nb["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else str(src))
    return cells


def _strip_ipython(source: str) -> str | None:
    """The cell's Python: shell and magic lines become `pass`; None when a cell magic runs something else."""
    lines = source.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        if not first.startswith(KEEP_CELL_MAGICS):
            return None
        upto = [ln.strip() for ln in lines].index(first) + 1
        lines = [""] * upto + lines[upto:]  # blank, so that line numbers stay the cell's
    out = []
    for ln in lines:
        body = ln.lstrip()
        if body.startswith(("!", "%")) or (body.endswith("?") and body[:-1].replace(".", "").isidentifier()):
            out.append(ln[: len(ln) - len(body)] + "pass  # shell/magic line skipped by the grader")
        else:
            out.append(ln)
    return "\n".join(out)


def _simple(node: ast.AST) -> bool:
    """A constant expression: literals, names, attributes, containers and operators over them, no calls."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _simple(node.value)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_simple(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _simple(k) for k in node.keys) and all(_simple(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _simple(node.operand)
    if isinstance(node, ast.BinOp):
        return _simple(node.left) and _simple(node.right)
    return False


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _simple(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None or _simple(node.value))
    return False


def _segment(lines: list[str], node: ast.stmt, start: int) -> list[str]:
    """The statement's own text, lines `start` to its end (a neighbour after `;` on the same line left out)."""
    out = lines[start - 1 : node.end_lineno]
    out[-1] = out[-1].encode()[: node.end_col_offset].decode(errors="ignore")  # offsets count UTF-8 bytes
    if start == node.lineno:
        out[0] = out[0].encode()[node.col_offset :].decode(errors="ignore")
    return out


@dataclass(slots=True)
class _Module:
    """The generated module's lines, each with its origin in the notebook."""

    lines: list[str] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)

    def add(self, text: str, origin: Origin = None) -> None:
        self.lines.append(text)
        self.origins.append(origin)


def convert(data: bytes, *, name: str) -> Conversion:
    """The module made from notebook bytes `data` (named `name` in comments); raises ValueError if unreadable."""
    cells = notebook_cells(data)
    out = _Module()
    out.add(f'"""Definitions from {name}, extracted by the grader (top-level code is not run)."""')
    kept = skipped = 0
    bad: list[int] = []
    for number, raw in enumerate(cells, start=1):
        source = _strip_ipython(raw)
        if source is None:
            skipped += 1
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            bad.append(number)
            continue
        lines = source.splitlines()
        for node in tree.body:
            if not _kept(node):
                skipped += 1
                continue
            kept += 1
            decorators: list[Any] = getattr(node, "decorator_list", [])
            start = min([node.lineno, *(d.lineno for d in decorators)])
            guarded = isinstance(node, ast.Import | ast.ImportFrom)
            out.add("")
            out.add(f"# {name}, code cell {number}, line {start}")
            if guarded:
                out.add("try:")
            for i, text in enumerate(_segment(lines, node, start)):
                out.add(f"    {text}" if guarded else text, (number, start + i))
            if guarded:
                out.add("except ImportError:")
                out.add("    pass")
    return Conversion(source="\n".join(out.lines) + "\n", kept=kept, skipped=skipped, bad_cells=tuple(bad),
                      origins=tuple(out.origins))


def failing_module(name: str, reason: str) -> str:
    """A module whose import fails with a message that says why the notebook could not be used."""
    return f"raise ImportError({f'{name} could not be read: {reason}'!r})\n"


def with_notebook_modules(unpacked: Unpacked) -> tuple[Unpacked, SourceMap]:
    """Write `NAME.py` next to every submitted `NAME.ipynb` (unless a `NAME.py` was submitted too).

    :return: the submission with the new modules, and the map that names the notebooks in messages
    """
    found = set(unpacked.found)
    notices = list(unpacked.notices)
    modules: list[NotebookModule] = []
    for nb_name in sorted(n for n in unpacked.found if n.endswith(".ipynb")):
        module = nb_name.removesuffix(".ipynb") + ".py"
        if module in found:
            continue
        path: Path = unpacked.root / nb_name
        origins: tuple[Origin, ...] = ()
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB (clear the outputs)")
            conv = convert(path.read_bytes(), name=nb_name)
            text, origins = conv.source, conv.origins
            if conv.bad_cells:
                cells = ", ".join(map(str, conv.bad_cells))
                notices.append(f"{nb_name}: code cell(s) {cells} have a syntax error and were left out")
        except (OSError, ValueError) as exc:
            text = failing_module(nb_name, str(exc))
        (unpacked.root / module).write_text(text)
        found.add(module)
        modules.append(NotebookModule(notebook=nb_name, module=module, origins=origins))
    return (replace(unpacked, found=frozenset(found), notices=tuple(notices)), SourceMap(tuple(modules)))
