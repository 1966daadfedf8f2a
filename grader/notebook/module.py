"""The module of a notebook's definitions: which statements are kept, guarded imports, the written module."""

from __future__ import annotations

import ast
import builtins
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.archive import Unpacked
from grader.notebook import factories as made
from grader.notebook.cells import _Budget, _Cell, _LeftOut, _OtherCellMagic
from grader.notebook.factories import FactorySpec
from grader.notebook.limits import MAX_NOTICES, NotebookLimits
from grader.notebook.reading import notebook_cells
from grader.notebook.source_map import Conversion, NotebookModule, Origin, SourceMap

log = logging.getLogger(__name__)

# --- which statements a module of definitions keeps ------------------------------------------------------------


def _simple(node: ast.AST) -> bool:
    """A constant expression: literals, names, attributes, containers and operators over them, no calls."""
    todo = [node]  # a loop, not recursion: a long literal must not exhaust the recursion limit
    while todo:
        n = todo.pop()
        kind = type(n)
        if kind is ast.Constant or kind is ast.Name:
            continue
        if kind is ast.Attribute:
            todo.append(n.value)  # type: ignore[attr-defined]
        elif kind is ast.Tuple or kind is ast.List or kind is ast.Set:
            todo += n.elts  # type: ignore[attr-defined]
        elif kind is ast.Dict:
            todo += [k for k in n.keys if k is not None]  # type: ignore[attr-defined]
            todo += n.values  # type: ignore[attr-defined]
        elif kind is ast.UnaryOp:
            todo.append(n.operand)  # type: ignore[attr-defined]
        elif kind is ast.BinOp:
            todo += [n.left, n.right]  # type: ignore[attr-defined]
        else:
            return False
    return True


_BUILTINS = frozenset(dir(builtins))


class _Bound:
    """Names the kept statements bind, in notebook order: a constant assignment is kept only when every name it
    reads is bound by then (``B = A.T`` after a dropped ``A = torch.tensor(...)`` would fail the import)."""

    def __init__(self) -> None:
        self.names: set[str] = set(_BUILTINS)
        self.constants: set[str] = set()
        """Names bound by kept constant assignments (a factory binds them to their values)."""
        self.star = False  # after ``from x import *`` any name may be bound

    def readable(self, value: ast.AST) -> bool:
        return self.star or all(n.id in self.names for n in ast.walk(value) if isinstance(n, ast.Name))

    def add(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            self.star = self.star or any(a.name == "*" for a in node.names)
            self.names.update(name for name, _ in _bound_names(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.names.add(node.name)
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            self.names.update(names)
            self.constants.update(names)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            self.names.add(node.target.id)
            self.constants.add(node.target.id)


def _kept(node: ast.stmt, bound: _Bound) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _simple(node.value) and bound.readable(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None or (_simple(node.value)
                                                                              and bound.readable(node.value)))
    return False


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__" and node.level == 0


def _bound_names(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """(name bound, module it stands for) of each name an import binds (none for ``import *``)."""
    if isinstance(node, ast.Import):
        return [(a.asname or a.name.partition(".")[0], a.name if a.asname else a.name.partition(".")[0])
                for a in node.names]
    module = "." * node.level + (node.module or "")
    return [(a.asname or a.name, f"{module}.{a.name}" if module.strip(".") else module + a.name)
            for a in node.names if a.name != "*"]


def _segment(lines: list[str], node: ast.stmt, start: int) -> list[str]:
    """The statement's own text, lines `start` to its end (a neighbour after `;` on the same line left out)."""
    out = lines[start - 1 : node.end_lineno]
    out[-1] = out[-1].encode()[: node.end_col_offset].decode(errors="ignore")  # offsets count UTF-8 bytes
    if start == node.lineno:
        out[0] = out[0].encode()[node.col_offset :].decode(errors="ignore")
    return out


GRADER_FILE = "<grader>"
"""The file name of the grader's own helpers in the module: not the student's file, so that a failure inside them
is placed where the student's code called them."""

MISSING_IMPORT = """
class __grader_missing__:
    '''The grader's stand-in for a name whose import failed when graded: using it raises that import's error.'''

    def __init__(self, name, where, error):
        self._why = f"{name} cannot be imported in the grader ({where}): {error}"

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise ModuleNotFoundError(self._why)

    def __call__(self, *args, **kwargs):
        raise ModuleNotFoundError(self._why)

    def __mro_entries__(self, bases):
        raise ModuleNotFoundError(self._why)

    def __repr__(self):
        return f"<{self._why}>"
"""

NO_SHELL = """
class __grader_shell__:
    '''The grader's stand-in for Jupyter's shell: shell (!) and magic (%) lines do not run when graded.'''

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)

        def refuse(*args, **kwargs):
            raise RuntimeError("shell (!) and magic (%) lines do not run in the grader")

        return refuse

    def __repr__(self):
        return "<the grader's stand-in for IPython's shell>"


def get_ipython():
    return __grader_shell__()
"""


def _helpers(code: str) -> str:
    """A statement that defines the grader's helpers `code` in the module, as file `GRADER_FILE`."""
    return f"exec(compile({code.strip()!r}, {GRADER_FILE!r}, 'exec'), globals())  # the grader's helpers"


@dataclass(slots=True)
class _Module:
    """The generated module's lines, each with its origin in the notebook."""

    lines: list[str] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)

    def add(self, text: str, origin: Origin = None) -> None:
        self.lines.append(text)
        self.origins.append(origin)


@dataclass(slots=True)
class _Kept:
    """A kept top-level statement (not its syntax tree, which can be large): its code cell, its lines and their
    lines in the cell, and what it binds."""

    cell: int
    lines: list[str]
    origins: list[int]
    imports: list[tuple[str, str]] | None = None
    """For an import: (name bound, module it stands for) of each name it binds."""
    defines: str | None = None
    """For a function or class definition: its name."""
    made: bool = False
    """A function the grader made (a factory), not the student's statement."""

    @classmethod
    def of(cls, node: ast.stmt, cell: int, lines: list[str], origin: Callable[[int], int | None]) -> _Kept:
        """Statement `node` of code cell `cell`, whose Python is `lines` (``origin(line)`` its line in the cell)."""
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        end = node.end_lineno or node.lineno
        return cls(cell, _segment(lines, node, start), [origin(line) or 0 for line in range(start, end + 1)],
                   imports=_bound_names(node) if isinstance(node, ast.Import | ast.ImportFrom) else None,
                   defines=node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                   else None)


def _printable(name: str) -> str:
    """`name` fit for a comment line of the module."""
    return name.encode("unicode_escape").decode("ascii")


@dataclass(slots=True)
class _Notices:
    notebook: str
    left_out: list[str] = field(default_factory=list)
    more: int = 0
    other: list[str] = field(default_factory=list)

    def cell(self, number: int, line: int | None, why: str) -> None:
        if len(self.left_out) >= MAX_NOTICES:
            self.more += 1
            return
        where = f"code cell {number}" + (f", line {line}" if line else "")
        self.left_out.append(f"{self.notebook}, {where}: {why}; the cell was left out")

    def all(self) -> tuple[str, ...]:
        more = [f"{self.notebook}: {self.more} more code cell(s) were left out"] if self.more else []
        return (*self.left_out, *more, *self.other)


def convert(data: bytes, *, name: str, limits: NotebookLimits | None = None,
            factories: Sequence[FactorySpec] = ()) -> Conversion:
    """The module made from notebook bytes `data` (named `name` in comments); raises ValueError if unreadable.

    `factories`: functions to make from the notebook's experiment loop when it does not define them
    (grader.notebook.factories)."""
    lim = limits or NotebookLimits()
    started = time.thread_time()
    cells = notebook_cells(data, lim)
    code_chars = sum(len(c) for c in cells if c)
    if code_chars > lim.code_chars:
        raise ValueError(f"its code cells hold {code_chars:,} characters; at most {lim.code_chars:,} can be graded")
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: PLC0415 (only notebooks need it)

    ipython = TransformerManager()  # type: ignore[no-untyped-call]
    budget = _Budget(lim, deadline=started + lim.cpu_seconds)
    notices = _Notices(name)
    kept: list[_Kept] = []
    futures: list[_Kept] = []
    skipped = 0
    bad: list[int] = []
    future = 0  # the __future__ flags in force, as IPython keeps them from cell to cell
    futures_moved = False
    bound = _Bound()
    for number, raw in enumerate(cells, start=1):
        if time.thread_time() > budget.deadline:
            notices.other.append(f"{name}: reading the notebook took longer than {lim.cpu_seconds:g} s; code cells "
                                 f"{number} to {len(cells)} were left out")
            bad += range(number, len(cells) + 1)
            break
        try:
            if raw is None:
                raise _LeftOut("its source is not text")
            cell = _Cell(raw, ipython, lim, budget)
            tree, future = cell.parse(lim, future)
        except _OtherCellMagic:
            skipped += 1
            continue
        except _LeftOut as exc:
            bad.append(number)
            notices.cell(number, exc.line, exc.why)
            continue
        except Exception:  # a bug of ours on untrusted input costs the cell, not the notebook
            log.exception("reading code cell %d of %s failed", number, name)
            bad.append(number)
            notices.cell(number, None, "the grader failed to read it (not your fault)")
            continue
        lines = [ln.removesuffix("\n") for ln in cell.lines]
        for node in tree.body:
            if not _kept(node, bound):
                skipped += 1
                for found in made.find(node, lines, factories, bound.constants) if factories else ():
                    text = made.source(found)
                    kept.append(_Kept(number, [t for t, _ in text], [cell.origin(line) or 0 for _, line in text],
                                      defines=found.factory, made=True))
                continue
            bound.add(node)
            item = _Kept.of(node, number, lines, cell.origin)
            if _is_future(node):
                if kept and not futures_moved:
                    futures_moved = True  # one notice is enough
                    features = ", ".join(a.name for a in node.names)  # type: ignore[attr-defined]
                    notices.other.append(
                        f"{name}, code cell {number}: `from __future__ import {features}` was moved to the top of "
                        "the notebook, so it applies to the cells before it too (in Jupyter it applies from that "
                        "cell on)")
                futures.append(item)
            else:
                kept.append(item)
    kept = _factories_used(kept, name, notices)
    source, origins = _write(name, futures, kept)
    return Conversion(source=source, kept=len(kept) + len(futures), skipped=skipped, bad_cells=tuple(bad),
                      origins=origins, notices=notices.all())


def _factories_used(kept: list[_Kept], name: str, notices: _Notices) -> list[_Kept]:
    """The kept statements without the made functions the notebook defines itself (or made twice)."""
    own = {k.defines for k in kept if not k.made} | {n for k in kept for n, _ in k.imports or ()}
    out: list[_Kept] = []
    for k in kept:
        if k.made:
            if k.defines in own:
                continue
            own.add(k.defines)
            notices.other.append(f"{name}, code cell {k.cell}, line {k.origins[0]}: {k.defines}() was made from "
                                 "the model this branch of your experiment loop builds (the grader does not run the "
                                 "loop)")
        out.append(k)
    return out


def _write(name: str, futures: list[_Kept], kept: list[_Kept]) -> tuple[str, tuple[Origin, ...]]:
    """The module's text and line origins: docstring, ``from __future__`` imports, the grader's stand-ins where
    needed, then the kept statements in notebook order (imports guarded)."""
    out = _Module()
    out.add(repr(f"Definitions from {name}, extracted by the grader (top-level code is not run)."))
    label = _printable(name)
    for f in futures:
        out.add(f"# {label}, code cell {f.cell}, line {f.origins[0]} (moved to the top)")
        for text, line in zip(f.lines, f.origins, strict=True):
            out.add(text, (f.cell, line))
    if any(k.imports is not None for k in kept):
        out.add(_helpers(MISSING_IMPORT))
    bound = {n for k in kept for n, _ in k.imports or ()} | {k.defines for k in kept}
    if "get_ipython" not in bound and any("get_ipython" in text for k in kept for text in k.lines):
        out.add(_helpers(NO_SHELL))
    for k in kept:
        out.add("")
        out.add(f"# {label}, code cell {k.cell}, line {k.origins[0]}")
        guarded = k.imports is not None
        if guarded:
            out.add("try:")
        for text, line in zip(k.lines, k.origins, strict=True):
            out.add(f"    {text}" if guarded else text, (k.cell, line))
        if guarded:
            names = k.imports or []
            out.add("except ImportError as __grader_error__:")
            where = f"{name}, code cell {k.cell}, line {k.origins[0]}"
            for bound_name, module in names:
                out.add(f"    {bound_name} = __grader_missing__({module!r}, {where!r}, __grader_error__)")
            if not names:
                out.add("    pass")
    return "\n".join(out.lines) + "\n", tuple(out.origins)


def failing_module(name: str, reason: str) -> str:
    """A module whose import fails with a message that says why the notebook could not be used."""
    return f"raise ImportError({f'{name} could not be read: {reason}'!r})\n"


def with_notebook_modules(unpacked: Unpacked, limits: NotebookLimits | None = None,
                          factories: Sequence[FactorySpec] = ()) -> tuple[Unpacked, SourceMap]:
    """Write `NAME.py` next to every submitted `NAME.ipynb` (unless a `NAME.py` was submitted too).

    Never raises for what a notebook holds: a notebook that cannot be read gets a module that fails with the reason.

    :return: the submission with the new modules, and the map that names the notebooks in messages
    """
    lim = limits or NotebookLimits()
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
            if path.stat().st_size > lim.notebook_bytes:
                raise ValueError(f"larger than {lim.notebook_bytes // 2**20} MiB (clear the outputs: "
                                 "Edit > Clear all outputs)")
            conv = convert(path.read_bytes(), name=nb_name, limits=lim, factories=factories)
            text, origins = conv.source, conv.origins
            notices += conv.notices
        except (OSError, ValueError) as exc:
            text = failing_module(nb_name, str(exc))
        except Exception as exc:  # a bug of ours on untrusted input must not end the grading
            log.exception("converting %s failed", nb_name)
            text = failing_module(nb_name, f"the grader failed on it (not your fault): {type(exc).__name__}")
        (unpacked.root / module).write_text(text)
        found.add(module)
        modules.append(NotebookModule(notebook=nb_name, module=module, origins=origins))
    return (replace(unpacked, found=frozenset(found), notices=tuple(notices)), SourceMap(tuple(modules)))
