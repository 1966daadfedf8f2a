"""Hostile notebooks (issue 11, item 4): reading untrusted notebook text is bounded in size, nesting and time, and a
cell beyond a bound is left out with a notice naming it; the converter never raises and the worker never crashes.

Each test builds the notebook it is about; the ones on a limit measure it (CPU time of the reading thread, so that
a busy machine does not make them flaky)."""

from __future__ import annotations

import ast
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager

from grader.archive import Unpacked
from grader.notebook import (
    NotebookLimits,
    _Budget,
    _Cell,
    _LeftOut,
    _nesting,
    _OtherCellMagic,
    convert,
    notebook_cells,
    with_notebook_modules,
)
from grader.result import CheckStatus, Status
from tests.conftest import check
from tests.test_notebook import REFERENCE, make_notebook, run_module

TERMS_200K = "x = " + "+".join(["1"] * 200_000)
"""The cell of the issue: 200,000 terms, 400,001 characters; the old converter's ast.parse raised RecursionError."""


def timed(build: Callable[[], object]) -> tuple[object, float]:
    """build()'s result and the CPU seconds it took."""
    start = time.thread_time()
    out = build()
    return out, time.thread_time() - start


def test_the_200000_term_cell_is_left_out_and_the_rest_kept() -> None:
    nb = make_notebook("import math", TERMS_200K, "def f(x):\n    return math.sqrt(x)")
    conv, seconds = timed(lambda: convert(nb, name="hw04.ipynb"))
    assert conv.bad_cells == (2,)  # type: ignore[attr-defined]
    assert conv.notices == ("hw04.ipynb, code cell 2: it is longer than 200,000 characters; "  # type: ignore[attr-defined]
                            "the cell was left out",)
    assert run_module(conv)["f"](4.0) == 2.0  # type: ignore[arg-type]
    assert seconds < 1.0, seconds
    # Without the length bound the nesting scan refuses it, before the parser sees it, in about the same time.
    conv, seconds = timed(lambda: convert(nb, name="hw04.ipynb", limits=NotebookLimits(cell_chars=10**6)))
    assert conv.notices == ("hw04.ipynb, code cell 2, line 1: an expression nests more than 500 levels deep (a "  # type: ignore[attr-defined]
                            "very long chain of operators, calls or attributes); split it into several statements; "
                            "the cell was left out",)
    assert seconds < 1.0, seconds


DEEP = {  # each one nests about 5,000 levels in under 200,000 characters
    "sum": lambda n: "x = " + "+".join(["1"] * n),
    "sum over lines": lambda n: "x = (" + " +\n".join(["1"] * n) + ")",
    "minus": lambda n: "x = " + "-" * n + "1",
    "not": lambda n: "x = " + "not " * n + "1",
    "attributes": lambda n: "x = a" + ".b" * n,
    "calls": lambda n: "x = f" + "()" * n,
    "subscripts": lambda n: "x = a" + "[0]" * n,
    "power": lambda n: "x = " + "**".join(["2"] * n),
    "lambdas": lambda n: "x = " + "lambda: " * n + "1",
    "conditionals": lambda n: "x = " + "1 if a else " * n + "1",
    "keywords": lambda n: "x = " + "f(a=" * n + "1" + ")" * n,
    "f-string": lambda n: "x = f'{" + "+".join(["1"] * n) + "}'",
    "brackets": lambda n: "x = " + "[" * n + "]" * n,
    "in a def": lambda n: "def f():\n    return " + "+".join(["1"] * n),
}


@pytest.mark.parametrize("kind", DEEP)
@pytest.mark.parametrize("scan", [True, False], ids=["scan", "parser only"])
def test_deeply_nested_cells_are_left_out_with_a_notice(kind: str, scan: bool) -> None:
    """With the nesting scan the cell is refused before parsing; without it (depth bound off) the parser's own
    RecursionError, MemoryError or SyntaxError is caught: either way a notice, never an exception."""
    cell = DEEP[kind](5_000)
    assert len(cell) < 200_000
    limits = NotebookLimits() if scan else NotebookLimits(depth=10**9)
    conv, seconds = timed(lambda: convert(make_notebook("A = 1", cell, "B = 2"), name="hw.ipynb", limits=limits))
    assert conv.bad_cells == (2,), conv.notices  # type: ignore[attr-defined]
    (notice,) = conv.notices  # type: ignore[attr-defined]
    assert notice.startswith("hw.ipynb, code cell 2") and notice.endswith("; the cell was left out")
    if scan:
        assert "nests more than 500 levels" in notice or "too many nested parentheses" in notice
    else:  # the parser's own refusal, in words, not "the grader failed"
        assert "it nests too deeply for Python to compile it" in notice or "SyntaxError: too many nested" in notice
    assert run_module(conv).keys() >= {"A", "B"}  # type: ignore[arg-type]
    assert seconds < 1.0, seconds


LONG_BUT_FLAT = {  # big, yet nesting little: kept
    "list of floats": ("W = [" + ", ".join(["-1.5e-3"] * 20_000) + "]", lambda v: len(v) == 20_000),
    "dict": ("D = {" + ", ".join(f"{i}: -{i}" for i in range(10_000)) + "}", lambda v: v[9_999] == -9_999),
    "sum of 400": ("S = " + " + ".join(["1"] * 400), lambda v: v == 400),
    "nested rows": ("M = [" + ", ".join(["[" + ", ".join(["0.5"] * 28) + "]"] * 280) + "]", lambda v: len(v) == 280),
    "f-string template": ("T = f'''" + "<td>{a}</td>: {b:.3f}. " * 2_000 + "'''", None),  # computed: not kept
    "string pieces": ("P = (" + "\n".join(['"part, (of) [a] {text} + - * /"'] * 3_000) + ")",
                      lambda v: v.count("part") == 3_000),
    "comparison chain": ("C = " + " < ".join(map(str, range(600))), None),
}


@pytest.mark.parametrize("kind", LONG_BUT_FLAT)
def test_long_flat_literals_are_kept(kind: str) -> None:
    cell, ok = LONG_BUT_FLAT[kind]
    conv, seconds = timed(lambda: convert(make_notebook("a, b = 1, 2.0", cell), name="hw.ipynb"))
    assert conv.bad_cells == () and conv.notices == (), conv.notices  # type: ignore[attr-defined]
    name, ns = cell.split(" ", 1)[0], run_module(conv)  # type: ignore[arg-type]
    assert ok(ns[name]) if ok else name not in ns, kind  # not a simple constant: left out, but not refused
    assert seconds < 2.0, seconds


def ast_depth(tree: ast.AST) -> int:
    """How deep `tree` nests (operators and load/store markers do not count), without recursion."""
    skip = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    best, todo = 0, [(tree, 0)]
    while todo:
        node, depth = todo.pop()
        best = max(best, depth)
        todo += [(c, depth + 1) for c in ast.iter_child_nodes(node) if not isinstance(c, skip)]
    return best


LEAVES = st.sampled_from(["x", "1", "2.5", '"s"', "None", "xs"])


def combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    one = [lambda a: f"-{a}", lambda a: f"not {a}", lambda a: f"({a}).b", lambda a: f"f({a})", lambda a: f"f(k={a})",
           lambda a: f"f(*{a})", lambda a: f"({a})()", lambda a: f"xs[{a}]", lambda a: f"xs[{a}:]",
           lambda a: f"lambda: {a}", lambda a: f"lambda q={a}: q", lambda a: f"[{a}]", lambda a: f"({a},)",
           lambda a: f"{{{a}}}", lambda a: f"[*{a}]", lambda a: f"f'{{{a}}}'", lambda a: f"(q := {a})",
           lambda a: f"await {a}", lambda a: f"[q for q in {a}]", lambda a: f"{{q: {a} for q in xs}}"]
    two = [lambda a, b: f"{a} + {b}", lambda a, b: f"{a} ** {b}", lambda a, b: f"{a} < {b}",
           lambda a, b: f"{a} and {b}", lambda a, b: f"{a} or {b}", lambda a, b: f"{a} if x else {b}",
           lambda a, b: f"xs[{a}, {b}]", lambda a, b: f"{{{a}: {b}}}", lambda a, b: f"f({a}, k={b})",
           lambda a, b: f"({a}, {b})", lambda a, b: f"xs[{a}:{b}]"]
    return st.one_of(st.tuples(st.sampled_from(one), inner).map(lambda t: t[0](t[1])),
                     st.tuples(st.sampled_from(two), inner, inner).map(lambda t: t[0](t[1], t[2])))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(LEAVES, combine, max_leaves=60))
def test_the_nesting_scan_bounds_the_syntax_tree_from_above(expression: str) -> None:
    """The scan must never see less nesting than the parser will build (up to the module, statement and leaf
    levels): a cell that passes it cannot exhaust the parser's recursion limit."""
    source = f"r = {expression}"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        assume(False)
        return
    estimate, _ = _nesting(source, 10**6)
    assert ast_depth(tree) <= estimate + 4, (ast_depth(tree), estimate)


FRAGMENTS = ["!ls", "!pip install \\", "%time", "%%bash", "%%time", "%%capture", "files = !ls", "x = %env", "x?",
             "??", "def f():", "    return 1", "  ", "\t", "(", ")", "[", "]", "{", "}", "'''", '"""', "'", '"', "\\",
             "#", "# %magic", "from __future__ import annotations", "await x", "async def g():", "@dec", "class A:",
             "lambda:", "\x00", "é", "\u2028", "\x0c", "\r", ">>> ", "... ", "In [1]: ", "   ...: ", "if x:",
             "else:", "1+", "import os", "from google.colab import drive", ",", ";", "/print x", "%%writefile a.py",
             "x = 1", "    pass", "f'{", "}'", "get_ipython()", "__grader_missing__", "return"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join), min_size=1, max_size=12)
       .map("\n".join), st.integers(1, 3))
def test_any_cell_text_gives_a_module_that_compiles(cell: str, copies: int) -> None:
    conv = convert(make_notebook(*[cell] * copies, "def last():\n    return 7"), name="hw.ipynb")
    compile(conv.source, "hw.py", "exec", dont_inherit=True)
    assert len(conv.origins) == len(conv.source.splitlines())
    assert all(n.startswith("hw.ipynb") for n in conv.notices)
    assert "def last():" in conv.source


def test_cell_length_and_line_bounds() -> None:
    conv = convert(make_notebook("A = 1", "x = 1\n" * 10_001, "# " + "x" * 200_000, "B = 2"), name="hw.ipynb")
    assert conv.notices == ("hw.ipynb, code cell 2: it has more than 10,000 lines; the cell was left out",
                            "hw.ipynb, code cell 3: it is longer than 200,000 characters; the cell was left out")
    assert run_module(conv).keys() >= {"A", "B"}


def test_notices_stop_naming_cells_after_ten() -> None:
    conv = convert(make_notebook(*["def broken(:"] * 25, "OK = 1"), name="hw.ipynb")
    assert len(conv.bad_cells) == 25 and len(conv.notices) == 11
    assert conv.notices[-1] == "hw.ipynb: 15 more code cell(s) were left out"


def test_shell_and_magic_lines_are_bounded() -> None:
    """IPython's transformers retokenize the whole piece after each magic line: 600 of them is what Jupyter
    refuses too (its own limit is 500), and a long piece with many is stopped by the tokenizing budget."""
    conv, seconds = timed(lambda: convert(make_notebook("x?\n" * 600, "OK = 1"), name="hw.ipynb"))
    assert conv.notices == ("hw.ipynb, code cell 1: it has more than 500 shell and magic lines, which Jupyter "  # type: ignore[attr-defined]
                            "refuses too; the cell was left out",)
    assert seconds < 2.0, seconds
    many = "def f():\n" + ("    !ls " + "a" * 190 + "\n") * 499  # one piece: 499 passes over 100 kB
    conv, seconds = timed(lambda: convert(make_notebook(many, "OK = 1"), name="hw.ipynb"))
    assert conv.notices == ("hw.ipynb, code cell 1: too many shell and magic lines (!, %) in too long a text for "  # type: ignore[attr-defined]
                            "the grader to read; move them into a cell of their own; the cell was left out",)
    assert seconds < 3.0, seconds
    # Top-level pieces are transformed apart: many magic lines between long definitions cost little.
    spread = "\n".join(f"!echo {i}\ndef f{i}(x):\n" + "    x = x + 1\n" * 40 + "    return x" for i in range(200))
    conv, seconds = timed(lambda: convert(make_notebook(spread), name="hw.ipynb"))
    assert conv.bad_cells == () and conv.kept == 200  # type: ignore[attr-defined]
    assert seconds < 3.0, seconds


def test_the_reading_time_is_bounded() -> None:
    conv = convert(make_notebook("A = 1", "B = 2"), name="hw.ipynb", limits=NotebookLimits(cpu_seconds=0.0))
    assert conv.bad_cells == (1, 2) and conv.kept == 0
    assert conv.notices == ("hw.ipynb: reading the notebook took longer than 0 s; code cells 1 to 2 were left out",)


def refused(data: bytes, limits: NotebookLimits | None = None) -> str:
    with pytest.raises(ValueError) as info:
        convert(data, name="hw.ipynb", limits=limits)
    return str(info.value)


def compact(cells: int, source: str = "") -> bytes:
    """A notebook of `cells` minimal code cells, as small as JSON allows."""
    cell = json.dumps({"cell_type": "code", "source": source})
    return b'{"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [' + b",".join(
        [cell.encode()] * cells) + b"]}"


def test_absurd_but_valid_json_is_refused_before_it_is_decoded() -> None:
    million, seconds = timed(lambda: refused(compact(1_000_000)))
    assert million == "it holds more than 1,000,000 JSON values (clear the outputs: Edit > Clear all outputs)"
    assert seconds < 1.0, seconds
    assert refused(compact(10_001)) == "it has 10,001 cells; at most 10,000 can be graded"
    deep, seconds = timed(lambda: refused(b'{"nbformat": 4, "cells": [], "metadata": ' + b"[" * 200_000
                                          + b"]" * 200_000 + b"}"))
    assert deep == "not a notebook (its JSON nests too deeply)" and seconds < 1.0
    empties = b'{"nbformat": 4, "cells": [], "metadata": {"x": [' + b",".join([b"{}"] * 2_000_000) + b"]}}"
    assert refused(empties).startswith("it holds more than 1,000,000 JSON values")
    assert refused(b" " * (50 * 2**20 + 1)) == "larger than 50 MiB (clear the outputs: Edit > Clear all outputs)"
    cell = "x = 1  # " + "a" * 199_000
    assert refused(make_notebook(*[cell] * 6)) == (f"its code cells hold {6 * len(cell):,} characters; at most "
                                                    "1,000,000 can be graded")


def test_huge_outputs_and_metadata_are_not_read() -> None:
    nb = json.loads(make_notebook("def f():\n    return 5"))
    nb["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
        "image/png": "iVBORw0KGgo" * 3_500_000}}]  # about 38 MB of base64, as a plotted Colab notebook has
    nb["metadata"] = {"widgets": {"state": [[[[[[[[{"a": 1}]]]]]]]] * 1000}}
    data = json.dumps(nb).encode()
    conv, seconds = timed(lambda: convert(data, name="hw.ipynb"))
    assert run_module(conv)["f"]() == 5  # type: ignore[arg-type]
    assert seconds < 3.0, seconds


def test_cells_whose_source_is_not_text_are_left_out() -> None:
    nb = json.loads(make_notebook("A = 1", "B = 2", "C = 3"))
    nb["cells"][0]["source"] = 12
    nb["cells"][1]["source"] = ["x = 1\n", {"evil": True}]
    conv = convert(json.dumps(nb).encode(), name="hw.ipynb")
    assert conv.bad_cells == (1, 2) and run_module(conv)["C"] == 3
    assert conv.notices[0] == "hw.ipynb, code cell 1: its source is not text; the cell was left out"
    assert notebook_cells(json.dumps(nb).encode())[:2] == [None, None]


def test_with_notebook_modules_never_raises_for_what_a_notebook_holds(tmp_path: Path) -> None:
    notebooks = {"a.ipynb": compact(1_000_000), "b.ipynb": b"[" * 100_000, "c.ipynb": b"\xff\xfe",
                 "d.ipynb": make_notebook(TERMS_200K, "def f(): pass"), "e.ipynb": json.dumps([1, 2]).encode()}
    for name, data in notebooks.items():
        (tmp_path / name).write_bytes(data)
    out, _ = with_notebook_modules(Unpacked(root=tmp_path, found=frozenset(notebooks), notices=()))
    for name in ("a", "b", "c", "e"):
        text = (tmp_path / f"{name}.py").read_text()
        assert text.startswith(f"raise ImportError('{name}.ipynb could not be read: "), text
    assert "def f(): pass" in (tmp_path / "d.py").read_text()
    assert out.notices == ("d.ipynb, code cell 1: it is longer than 200,000 characters; the cell was left out",)


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_200000_term_cell_in_gt_hw5_is_a_notice_and_the_rest_is_graded(grade) -> None:
    nb = json.loads((REFERENCE / "gt_hw5" / "reference" / "hw5.ipynb").read_text())
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "execution_count": 3, "outputs": [],
                           "source": [TERMS_200K]})
    code_cell = sum(c["cell_type"] == "code" for c in nb["cells"][:3])
    result = grade({"hw5.ipynb": json.dumps(nb), "mlp_weights.npz": (REFERENCE / "gt_hw5" / "reference" / "mlp_weights.npz")
                    .read_bytes()}, assignment="gt-hw5")
    assert result.status is Status.GRADED
    assert result.notices == (f"hw5.ipynb, code cell {code_cell}: it is longer than 200,000 characters; "
                              "the cell was left out",)
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if c.points < c.max_points]
    assert check(result, "hw5.sigmoid").status is CheckStatus.PASSED


SAME_AS_IPYTHON = [f for f in FRAGMENTS if f not in ("\r", "\u2028", "\x0c", "\x00")]  # line ends differ there


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(SAME_AS_IPYTHON), max_size=8).map(" ".join), min_size=1, max_size=14)
       .map("\n".join))
def test_transforming_piece_by_piece_gives_what_ipython_gives_for_the_cell(cell: str) -> None:
    """The converter hands IPython's transformers one top-level piece at a time (so that a magic line does not
    make them retokenize the whole cell); the Python must be what IPython makes of the whole cell, wherever that
    is Python."""
    ipython = TransformerManager()
    try:
        expected = ipython.transform_cell(cell)
    except (SyntaxError, RuntimeError):
        expected = None
    assume(not expected or not expected.startswith("get_ipython().run_cell_magic"))
    try:
        got = "".join(_Cell(cell, ipython, NotebookLimits(), _Budget(NotebookLimits(), deadline=1e9)).lines)
    except _LeftOut:
        got = None
    except _OtherCellMagic:
        return
    if compiles(expected):
        assert got == expected
    else:  # where IPython makes no Python of it (say an unclosed quote), neither does the converter
        assert not compiles(got)


def compiles(source: str | None) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source or "(", "cell", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                    dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
