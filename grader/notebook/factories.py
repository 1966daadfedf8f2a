"""Functions a notebook gets built from its own experiment loop (the spec's ``factories``).

a4-digits' handout builds each model inline: ``if name[0:14] == "classifier_mlp": classnet = nn.Sequential(...)``
inside the loop over the experiments (seed 004 lines 605-613), which the grader does not run. For such a branch the
module gets ``def make_mlp(*, D=D, M=M, ...): return (nn.Sequential(...))``: the assigned expression, verbatim, with
the notebook's constants it reads bound to their values at that point of the notebook (the handout sets ``M = 512``
again further down, for its second part). A notebook that defines the function itself keeps its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class FactorySpec(Protocol):
    """What a factory declaration gives (grader.assignments.spec.Factory, a frozen dataclass: read-only)."""

    @property
    def name(self) -> str: ...
    @property
    def assigns(self) -> str: ...
    @property
    def branch(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Found:
    """The branch's assigned expression: its text (lines of the cell's Python) and where it is."""

    factory: str
    branch: str
    lines: list[str]
    first: int
    """Line of the cell's Python where the expression starts (1-based)."""
    constants: tuple[str, ...]
    """The notebook's constants the expression reads, bound to their values of that point."""


def _branch_value(node: ast.stmt, assigns: str, branch: str) -> ast.expr | None:
    """The last value assigned to `assigns` directly in the body of an ``if``/``elif`` (anywhere in `node`) whose
    test holds the string `branch`."""
    found = None
    for n in ast.walk(node):
        if not isinstance(n, ast.If) or not any(
                isinstance(c, ast.Constant) and c.value == branch for c in ast.walk(n.test)):
            continue
        for stmt in n.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
                stmt, ast.AnnAssign) and stmt.value is not None else []
            if any(isinstance(t, ast.Name) and t.id == assigns for t in targets):
                found = stmt.value  # type: ignore[attr-defined]
    return found


def find(node: ast.stmt, lines: list[str], factories: Iterable[FactorySpec], constants: set[str]) -> list[Found]:
    """The factories top-level statement `node` (of a cell whose Python is `lines`) can give."""
    out = []
    for f in factories:
        value = _branch_value(node, f.assigns, f.branch)
        if value is None or value.end_lineno is None or value.end_col_offset is None:
            continue
        text = lines[value.lineno - 1 : value.end_lineno]
        text[-1] = text[-1].encode()[: value.end_col_offset].decode(errors="ignore")  # offsets count UTF-8 bytes
        text[0] = text[0].encode()[value.col_offset :].decode(errors="ignore")
        reads = sorted({n.id for n in ast.walk(value) if isinstance(n, ast.Name)} & constants)
        out.append(Found(factory=f.name, branch=f.branch, lines=text, first=value.lineno, constants=tuple(reads)))
    return out


def source(found: Found) -> list[tuple[str, int]]:
    """The function's lines, each with the line of the cell's Python it comes from."""
    binds = "".join(f"{n}={n}, " for n in found.constants).removesuffix(", ")
    head = f"def {found.factory}(*, {binds}):" if binds else f"def {found.factory}():"
    body = [(f"    {text}", found.first + i) for i, text in enumerate(found.lines)]
    return [(head, found.first), (f"    return (  # made by the grader from the branch for {found.branch!r}",
                                  found.first), *body, ("    )", found.first + len(found.lines) - 1)]
