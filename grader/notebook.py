"""Jupyter/Colab notebooks as submissions: turn `NAME.ipynb` into a module `NAME.py` of its definitions.

Reading: nbformat reads the notebook (nbformat 1 to 3 are upgraded to 4 by nbformat's own conversion); only code
cells count. Each code cell is read the way Jupyter runs it, on its own: IPython's own input transformers turn ``!cmd``,
``files = !ls``, ``%magic`` and ``obj?`` into Python calls (a ``%`` inside a string stays text); a cell run by
``%%time``, ``%%capture`` or ``%%prun`` keeps its Python, a cell run by any other cell magic (``%%bash``,
``%%writefile``, ``%%timeit`` whose body runs inside a function) is left out; the cell is compiled as IPython
compiles it (top-level ``await`` allowed, ``from __future__`` imports of earlier cells in force). A cell that Jupyter
could not run is left out with a notice naming it.

Of every cell's top-level statements a filter keeps imports, function and class definitions and assignments of
simple constants; top-level training code, data loading, prints, shell and magic lines do not run. An import that
fails in the grader (``google.colab``, ...) binds a stand-in whose use raises an ImportError naming the cell.
``from __future__`` imports move to the top of the module, so they apply to every cell (in Jupyter: to their cell
and the cells run after it); a notice says so when that reaches definitions of earlier cells. A function that
contains a shell or magic line gets a stand-in ``get_ipython()`` that refuses to run it.

Everything is read under bounds (`NotebookLimits`): the file's size and JSON item count before decoding, the
number of cells, each cell's length, line count and expression nesting (a cheap scan before the parser, which
would otherwise exhaust the recursion limit), the text IPython's transformers may tokenize, the whole code's
length, and a time budget. A cell over a bound is left out with a notice, like a cell with a syntax error; a
notebook over a bound gets a module that fails with the reason. No exception leaves `with_notebook_modules`.
Measured (tests/test_notebook_limits.py): the 200,000-term cell is refused in under 0.01 s; the worst notebooks
within the bounds take about 5 s of CPU and 160 MiB.

The sandbox only sees `NAME.py`; the judge's messages name the notebook the student uploaded instead, and for
a line of the module its code cell and line there (`SourceMap`, applied by the engine to every message).
"""

from __future__ import annotations
import __future__

import ast
import json
import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.archive import Unpacked

if TYPE_CHECKING:
    from IPython.core.inputtransformer2 import TransformerManager

log = logging.getLogger(__name__)

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
            message = re.sub(rf"(?<![\w.-]){name} line (\d+)", lambda hit, m=m: m.place(int(hit.group(1))), message)
            message = re.sub(rf"(?<![\w.-]){name}\b", m.notebook, message)
        return message


# --- reading the notebook file -------------------------------------------------------------------------------


def _json_items(data: bytes) -> int:
    """An upper bound of the values and keys in JSON text `data`: each one but the first follows a `[`, `{`, `,`
    or `:` (counted everywhere, strings included, so that the count is cheap)."""
    return sum(data.count(c) for c in (b"[", b"{", b",", b":")) + 1


_SOURCE_KEY = {1: "code", 2: "input", 3: "input", 4: "source"}
"""Where a code cell keeps its text, per nbformat major version."""


def _text(source: object) -> str | None:
    """A cell's source as one text (nbformat stores it as a string or a list of lines), or None if it is neither."""
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return source if isinstance(source, str) else None


def notebook_cells(data: bytes, limits: NotebookLimits | None = None) -> list[str | None]:
    """The sources of a notebook's code cells, in order; None for a cell whose source is not text.

    The file is checked against `limits` before it is decoded; nbformat then reads a copy that holds only the code
    cells' sources (nbformat 1 to 3 are upgraded to 4 by nbformat's own conversion). Raises ValueError saying why
    the notebook cannot be read.
    """
    import nbformat  # noqa: PLC0415 (only gradings of notebooks need it)

    lim = limits or NotebookLimits()
    if len(data) > lim.notebook_bytes:
        raise ValueError(f"larger than {lim.notebook_bytes // 2**20} MiB (clear the outputs: Edit > Clear all outputs)")
    if _json_items(data) > lim.json_items:
        raise ValueError(f"it holds more than {lim.json_items:,} JSON values (clear the outputs: "
                         "Edit > Clear all outputs)")
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("not a notebook (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a notebook (invalid JSON: {exc})") from None
    except RecursionError:
        raise ValueError("not a notebook (its JSON nests too deeply)") from None
    except MemoryError:
        raise ValueError("too large for the grader to read (clear the outputs: Edit > Clear all outputs)") from None
    if not isinstance(nb, dict):
        raise ValueError("not a notebook (no list of cells; save it as an nbformat 4 .ipynb)")
    version = nb.get("nbformat", 4 if "cells" in nb else 3)
    if isinstance(version, bool) or version not in _SOURCE_KEY:
        raise ValueError(f"not a notebook nbformat can read (nbformat {str(version)[:20]!r}; "
                         "save it as an nbformat 4 .ipynb)")
    if version in (2, 3):
        sheets = nb.get("worksheets")
        cells = [c for ws in sheets if isinstance(ws, dict) and isinstance(ws.get("cells"), list)
                 for c in ws["cells"]] if isinstance(sheets, list) else None
    else:
        cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError("not a notebook (no list of cells; save it as an nbformat 4 .ipynb)")
    if len(cells) > lim.cells:
        raise ValueError(f"it has {len(cells):,} cells; at most {lim.cells:,} can be graded")
    key = _SOURCE_KEY[version]
    texts = [_text(c.get(key)) for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    minor = nb.get("nbformat_minor")
    slim: dict[str, Any] = {"nbformat": version, "metadata": {},
                            "nbformat_minor": minor if type(minor) is int and 0 <= minor <= 5 else 0}
    code: list[dict[str, Any]] = [{"cell_type": "code", key: t or "", "metadata": {}, "outputs": []} for t in texts]
    if version == 4:
        for n, c in enumerate(code, start=1):
            c.update(id=f"cell-{n}", execution_count=None)
        slim["cells"] = code
    elif version == 1:
        slim["cells"] = code
    else:
        slim["worksheets"] = [{"cells": code, "metadata": {}}]
    try:  # nbformat reads only this copy: no outputs, no metadata, no deep JSON
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read = nbformat.convert(nbformat.reader.reads(json.dumps(slim)), 4)
        sources = [str(c.source) for c in read.cells if c.cell_type == "code"]
    except Exception as exc:  # nbformat's errors on odd input are of many kinds
        raise ValueError(f"not a notebook nbformat can read ({type(exc).__name__}: {str(exc)[:200]})") from None
    if len(sources) != len(texts):
        raise ValueError("not a notebook nbformat can read (its code cells got lost in the conversion)")
    return [s if t is not None else None for s, t in zip(sources, texts, strict=True)]


# --- one cell, as Jupyter runs it ------------------------------------------------------------------------------


class _LeftOut(Exception):
    """A cell that is not graded: why (in the student's words) and the line of the cell it is about."""

    def __init__(self, why: str, line: int | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.line = line


class _OtherCellMagic(Exception):
    """A cell run by a cell magic whose body does not define anything in the notebook (``%%bash``, ...)."""


_STRING_OR_COMMENT = re.compile(r"""
    (?P<str> [rRbBuUfF]{0,2} (?: '''(?:[^'\\]|\\.|'(?!''))*+(?:'''|\Z)
                               | \"\"\"(?:[^"\\]|\\.|"(?!""))*+(?:\"\"\"|\Z)
                               | '(?:[^'\\\n]|\\.)*+'
                               | "(?:[^"\\\n]|\\.)*+" ))
  | \#[^\n]*
""", re.VERBOSE | re.DOTALL)
"""A string (any prefix, triple-quoted or not) or a comment, as Python's tokenizer finds them: an unclosed
triple-quoted string runs to the end, an unclosed one-line string is only its quote (the rest of the line is
tokenized as code)."""

_FIELD_OPS = re.compile(r"[-+*/%@&|^~.(\[{]|\b(?:not|lambda|if|for|await|yield)\b")
_BRACES = re.compile(r"\{\{|\}\}|\{|\}")
_DEPTH_TOKEN = re.compile(r"""
    (?P<cont> \\\n )
  | (?P<end> [\n;] )
  | (?P<comma> , )
  | (?P<open> [(\[{] )
  | (?P<close> [)\]}] )
  | (?P<name> [^\W\d]\w* )
  | (?P<number> \.?\d(?:[\w.]|(?<=[eE])[-+])* )
  | (?P<neutral> \.\.\.|->|\*\*=|//=|>>=|<<=|[-+*/%@&|^<>=!]= )
  | (?P<op> :=|\*\*|//|<<|>> )
  | (?P<neutral1> [<>=:] )
  | (?P<op1> [-+*/%@&|^~.!?$] )
""", re.VERBOSE)
"""The tokens that matter to `_nesting` (in text without strings and comments): operators that make a node of the
syntax tree (``+``, ``.``, ``**``, ...) apart from those that do not nest (comparisons, ``=``, ``:``)."""
_NESTING_WORDS = {"not": 1, "if": 1, "for": 1, "await": 1, "yield": 1, "lambda": 2}
"""Words that make a node (``lambda`` two: the function and its arguments); ``and``, ``or``, ``in``, ``is`` make
flat ones."""
_IPYTHON_SYNTAX = re.compile(r"!(?!=)|\?|^[ \t\f]*[%,;/]|=[ \t]*%")
"""Where IPython's special syntax can be, outside strings and comments: ``!``, ``?``, a line starting with one of
``% , ; /``, ``= %``."""


def _fstring_nesting(token: str) -> int:
    """An upper bound of how deep f-string `token` nests: three levels for the string, a field and its format
    spec, and the operators and brackets (two levels each) inside its deepest replacement field (the fields are
    siblings); comparisons are counted too."""
    fields: list[str] = []
    depth = start = 0
    for b in _BRACES.finditer(token):
        s = b.group()
        if depth == 0:
            if s == "{":
                depth, start = 1, b.end()
            continue
        depth += s.count("{") - s.count("}")
        if depth <= 0:
            fields.append(token[start : b.start()])
            depth = 0
    if depth:
        fields.append(token[start:])
    return max((3 + len(_FIELD_OPS.findall(f)) + sum(f.count(c) for c in "([{") + f.count("lambda")
                for f in fields), default=0)


def _masked(text: str, limit: int) -> str:
    """`text` with every comment removed and every string replaced by ``s`` (its lines kept, each line inside it
    starting with ``\\x01``); an f-string keeps its fields' operators as ``+`` (at most `limit` + 1 of them)."""

    def mask(m: re.Match[str]) -> str:
        if m.group("str") is None:
            return ""
        token = m.group()
        quote = min(i for i in (token.find("'"), token.find('"')) if i >= 0)
        ops = min(_fstring_nesting(token), limit + 1) if "f" in token[:quote].lower() else 0
        return "\n\x01".join(["s" + "+" * ops, *[""] * token.count("\n")])

    return _STRING_OR_COMMENT.sub(mask, text)


def _nesting(text: str, stop: int) -> tuple[int, int]:
    """An upper bound of how deep the expressions of `text` nest (the scan ends once it is above `stop`), and the
    line (1-based) where they nest deepest.

    Every operator and word that makes a node of the syntax tree adds a level to the chain it is part of, an
    opening bracket two (the call, subscript or display, and the tuple, slice, keyword or comprehension inside it);
    a comma ends the chain of its bracket level (the items of ``[-1, -2, ...]`` are siblings, not nested), the end
    of a statement every chain. Comparisons, ``and`` and ``or`` make flat nodes and do not count. Of strings only
    f-strings count (`_fstring_nesting`)."""
    code = _masked(text, stop)
    chain = [0]
    total = worst = at = 0
    for m in _DEPTH_TOKEN.finditer(code):
        kind = m.lastgroup
        if kind == "op" or kind == "op1":
            chain[-1] += 1
            total += 1
        elif kind == "name":
            weight = _NESTING_WORDS.get(m.group(), 0)
            chain[-1] += weight
            total += weight
        elif kind == "open":
            chain[-1] += 2
            total += 2
            chain.append(0)
        elif kind == "close":
            if len(chain) > 1:
                total -= chain.pop()
        elif kind == "comma":
            total -= chain[-1]
            chain[-1] = 0
        elif kind == "end" and len(chain) == 1:
            total = chain[0] = 0
        if total > worst:
            worst, at = total, m.start()
            if worst > stop:
                break
    return worst, code.count("\n", 0, at) + 1


def _too_deep(text: str, limit: int) -> int | None:
    """The line (1-based) of `text` where its expressions may nest deeper than `limit` (see `_nesting`), or None."""
    depth, line = _nesting(text, limit)
    return line if depth > limit else None


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
        for transform in self._ipython.cleanup_transforms:
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
                    changed, new = self._ipython.do_one_token_transform(lines)
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


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _simple(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None or _simple(node.value))
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


def convert(data: bytes, *, name: str, limits: NotebookLimits | None = None) -> Conversion:
    """The module made from notebook bytes `data` (named `name` in comments); raises ValueError if unreadable."""
    lim = limits or NotebookLimits()
    started = time.thread_time()
    cells = notebook_cells(data, lim)
    code_chars = sum(len(c) for c in cells if c)
    if code_chars > lim.code_chars:
        raise ValueError(f"its code cells hold {code_chars:,} characters; at most {lim.code_chars:,} can be graded")
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: PLC0415 (only notebooks need it)

    ipython = TransformerManager()
    budget = _Budget(lim, deadline=started + lim.cpu_seconds)
    notices = _Notices(name)
    kept: list[_Kept] = []
    futures: list[_Kept] = []
    skipped = 0
    bad: list[int] = []
    future = 0  # the __future__ flags in force, as IPython keeps them from cell to cell
    futures_moved = False
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
            if not _kept(node):
                skipped += 1
                continue
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
    source, origins = _write(name, futures, kept)
    return Conversion(source=source, kept=len(kept) + len(futures), skipped=skipped, bad_cells=tuple(bad),
                      origins=origins, notices=notices.all())


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


def with_notebook_modules(unpacked: Unpacked, limits: NotebookLimits | None = None) -> tuple[Unpacked, SourceMap]:
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
            conv = convert(path.read_bytes(), name=nb_name, limits=lim)
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
