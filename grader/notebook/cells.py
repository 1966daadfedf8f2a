"""One code cell, read as Jupyter runs it: cell magics, IPython's input transformers, compiled on its own."""

from __future__ import annotations
import __future__

import ast
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from grader.notebook.limits import _CELL_FLAGS, _FUTURE_FLAGS, KEEP_CELL_MAGICS, NotebookLimits
from grader.notebook.nesting import _IPYTHON_SYNTAX, _masked, _too_deep

if TYPE_CHECKING:
    from IPython.core.inputtransformer2 import TransformerManager


# --- one cell, as Jupyter runs it ------------------------------------------------------------------------------


class _LeftOut(Exception):
    """A cell that is not graded: why (in the student's words) and the line of the cell it is about."""

    def __init__(self, why: str, line: int | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.line = line


class _OtherCellMagic(Exception):
    """A cell run by a cell magic whose body does not define anything in the notebook (``%%bash``, ...)."""


def _pieces(lines: list[str]) -> list[tuple[int, int, bool]]:
    """The cell's top-level pieces as (first line, end line, may hold IPython syntax), 0-based, end exclusive.

    A piece starts at a line that begins a statement at column 0 outside brackets, strings and continued lines,
    where tokenizing starts afresh: IPython's transformers give the same result on each piece as on the whole
    cell. Only a piece with a `!` or `?`, a line starting with one of ``% , ; /`` or a ``= %`` outside strings and
    comments (where IPython's syntax can be) needs them."""
    code = _masked("".join(lines), 0).split("\n")
    pieces: list[tuple[int, int, bool]] = []
    start, special, depth, continued = 0, False, 0, False
    for i, line in enumerate(code[: len(lines)]):
        if i and depth == 0 and not continued and line[:1] not in ("", " ", "\t", "\f", "\x01"):
            pieces.append((start, i, special))
            start, special = i, False
        special = special or _IPYTHON_SYNTAX.search(line) is not None
        opened = line.count("(") + line.count("[") + line.count("{")
        depth = max(0, depth + opened - line.count(")") - line.count("]") - line.count("}"))
        continued = line.endswith("\\")
    return [*pieces, (start, len(lines), special)]


def _lines(text: str) -> list[str]:
    """`text` split into lines that keep their ``\\n`` (only ``\\n`` ends a line, as for the tokenizer here)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    return [*out, parts[-1]] if parts[-1] else out


def _remap(old: list[str], origins: list[int], new: list[str]) -> list[int]:
    """The origins of `new`, made from `old` by replacing one run of lines (as IPython's transformers do)."""
    if len(new) == len(old):
        return origins
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    s = 0
    while s < n - p and old[-1 - s] == new[-1 - s]:
        s += 1
    fill = origins[min(p, len(origins) - 1)] if origins else 1
    return [*origins[:p], *[fill] * (len(new) - p - s), *origins[len(old) - s:]]


@dataclass(slots=True)
class _Budget:
    """What the whole notebook may still cost: text tokenized by IPython's transformers, and time."""

    limits: NotebookLimits
    deadline: float
    """Of time.thread_time()."""
    tokenized: int = 0

    def tokenize(self, chars: int) -> None:
        self.tokenized += chars
        if self.tokenized > self.limits.transform_chars:
            raise _LeftOut("too many shell and magic lines (!, %) in too long a text for the grader to read; "
                           "move them into a cell of their own")


class _Cell:
    """One code cell as Jupyter runs it: its Python (after IPython's transformers) and, for each line, the cell line
    it came from."""

    def __init__(self, raw: str, ipython: TransformerManager, limits: NotebookLimits, budget: _Budget) -> None:
        if len(raw) > limits.cell_chars:
            raise _LeftOut(f"it is longer than {limits.cell_chars:,} characters")
        text = raw.replace("\r\n", "\n").replace("\r", "\n")
        if text.count("\n") + (not text.endswith("\n")) > limits.cell_lines:
            raise _LeftOut(f"it has more than {limits.cell_lines:,} lines")
        self._ipython = ipython
        self.lines = _lines(text if text.endswith("\n") else text + "\n")
        self.origins = list(range(1, len(self.lines) + 1))
        self._clean()
        while self.lines and self.lines[0].startswith("%%") and not re.match(r"%%\w+\?", self.lines[0]):
            magic = self.lines[0][2:].rstrip().partition(" ")[0]
            if magic not in KEEP_CELL_MAGICS:
                raise _OtherCellMagic(magic)
            self.lines, self.origins = self.lines[1:], self.origins[1:]  # its body is a cell of its own
            self._clean()
        self._transform(limits, budget)

    def _step(self, new: list[str]) -> None:
        new = _lines("".join(new))
        self.origins = _remap(self.lines, self.origins, new)
        self.lines = new

    def _clean(self) -> None:
        """IPython's clean-up: leading blank lines, common indentation, ``>>>`` and ``In [1]:`` prompts."""
        transforms = cast(list[Callable[[list[str]], list[str]]], self._ipython.cleanup_transforms)
        for transform in transforms:
            self._step(transform(self.lines))

    def _transform(self, limits: NotebookLimits, budget: _Budget) -> None:
        """IPython's token transformers (magics, shell and help lines), piece by piece."""
        out: list[str] = []
        origins: list[int] = []
        done = 0
        for start, end, special in _pieces(self.lines):
            lines, where = self.lines[start:end], self.origins[start:end]
            while special:
                budget.tokenize(sum(map(len, lines)))
                try:
                    changed, new = self._ipython.do_one_token_transform(lines)  # type: ignore[no-untyped-call]
                except SyntaxError as exc:  # the tokenizer's, e.g. an unindent that matches no outer level
                    raise _LeftOut(f"{type(exc).__name__}: {str(exc.msg)[:200]}",
                                   where[min(max((exc.lineno or 1) - 1, 0), len(where) - 1)] if where else None
                                   ) from None
                except Exception as exc:  # IPython's own failure on odd text: Jupyter could not run the cell either
                    raise _LeftOut(f"IPython cannot read it ({type(exc).__name__})") from None
                if not changed:
                    break
                done += 1
                if done > limits.transforms_per_cell:
                    raise _LeftOut(f"it has more than {limits.transforms_per_cell} shell and magic lines, which "
                                   "Jupyter refuses too")
                new = _lines("".join(new))
                where = _remap(lines, where, new)
                lines = new
            out += lines
            origins += where
        self.lines, self.origins = out, origins

    def origin(self, line: int | None) -> int | None:
        """The cell line of line `line` (1-based) of the cell's Python."""
        if not line or not self.origins:
            return None
        return self.origins[min(max(line, 1), len(self.origins)) - 1]

    def parse(self, limits: NotebookLimits, future: int) -> tuple[ast.Module, int]:
        """The cell's syntax tree, and the ``__future__`` flags in force after it: the cell is compiled as IPython
        compiles it, with the flags `future` of the cells before (raises _LeftOut when it cannot be)."""
        source = "".join(self.lines)
        deep = _too_deep(source, limits.depth)
        if deep is not None:
            raise _LeftOut(f"an expression nests more than {limits.depth} levels deep (a very long chain of "
                           "operators, calls or attributes); split it into several statements", self.origin(deep))
        flags = _CELL_FLAGS | future
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning and the like: Jupyter shows them and runs the cell
                tree = compile(source, "<cell>", "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
                code = compile(source, "<cell>", "exec", flags, dont_inherit=True)  # faster than from `tree`
        except SyntaxError as exc:
            raise _LeftOut(f"{type(exc).__name__}: {str(exc.msg)[:200]}", self.origin(exc.lineno)) from None
        except (RecursionError, MemoryError):
            raise _LeftOut("it nests too deeply for Python to compile it") from None
        except (ValueError, OverflowError) as exc:  # e.g. a null byte in the source
            raise _LeftOut(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if code.co_flags & __future__.barry_as_FLUFL.compiler_flag:  # moved to the top it would break every `!=`
            raise _LeftOut("`from __future__ import barry_as_FLUFL` cannot be graded")
        return tree, future | (code.co_flags & _FUTURE_FLAGS)


