"""What a student who copies does to the file, as text transformations of real source (tests/test_similarity.py,
bench/similarity.py): rename identifiers, reorder classes and methods, rewrite comments and layout."""

from __future__ import annotations

import ast
import io
import keyword
import random
import re
import tokenize

KEEP = {"self", "np", "numpy", "plt", "matplotlib", "pyplot", "annotations", "__future__", "__init__", "dict", "str",
        "int", "float", "None", "True", "False", "range", "len", "zip", "print", "super", "object", "forward",
        "backward", "params", "grads", "Linear", "ReLU", "Sigmoid", "SE"}
"""Names a copier cannot change without breaking the graded interface or the library calls."""


def renamed(source: str, rng: random.Random) -> str:
    """Every local name, argument and attribute the file defines itself gets a new name (as a rename in an
    editor would: consistently, strings and comments untouched). Library attributes (np.zeros) are kept."""
    tree = ast.parse(source)
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("__"):
            own.add(node.name)
    own -= KEEP
    words = ["val", "tmp", "acc", "buf", "data", "arr", "res", "q", "cache", "thing", "mat", "vec", "inp", "z"]
    mapping = {n: f"{rng.choice(words)}_{i}" for i, n in enumerate(sorted(own))}
    lines = source.splitlines(keepends=True)
    hits = [tok for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.NAME and tok.string in mapping and not keyword.iskeyword(tok.string)]
    for tok in reversed(hits):  # right to left, so earlier columns stay valid
        (row, col), (_, end) = tok.start, tok.end
        lines[row - 1] = lines[row - 1][:col] + mapping[tok.string] + lines[row - 1][end:]
    return "".join(lines)


def _blocks(body: list[ast.stmt], lines: list[str]) -> tuple[list[str], list[tuple[str, ast.stmt]]]:
    """Leading statements (imports, constants) as text, then each def/class with its text (decorators in)."""
    head: list[str] = []
    blocks: list[tuple[str, ast.stmt]] = []
    for node in body:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        text = "\n".join(lines[start - 1:node.end_lineno])
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            blocks.append((text, node))
        elif not blocks:
            head.append(text)
        else:
            blocks.append((text, node))
    return head, blocks


def reordered(source: str, rng: random.Random) -> str:
    """Top-level classes and functions in another order, and the methods inside each class shuffled too."""
    lines = source.splitlines()
    head, blocks = _blocks(ast.parse(source).body, lines)
    out = []
    for text, node in blocks:
        if isinstance(node, ast.ClassDef) and len(node.body) > 1:
            first = node.body[0]
            doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            members = node.body[1:] if doc else node.body
            cls_start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            top = lines[cls_start - 1:members[0].lineno - 1 if not getattr(members[0], "decorator_list", None)
                        else min(d.lineno for d in members[0].decorator_list) - 1]
            parts = []
            for m in members:
                start = min([m.lineno, *(d.lineno for d in getattr(m, "decorator_list", []))])
                parts.append("\n".join(lines[start - 1:m.end_lineno]))
            rng.shuffle(parts)
            text = "\n".join(top).rstrip() + "\n" + "\n\n".join(parts)
        out.append(text)
    rng.shuffle(out)
    return "\n".join(head) + "\n\n\n" + "\n\n\n".join(out) + "\n"


def recommented(source: str, rng: random.Random) -> str:
    """Comments removed or rewritten, docstrings reworded, blank lines and spacing around operators changed."""
    notes = ["# my solution", "# TODO check shapes", "# works, do not touch", "# see lecture 5", ""]
    out = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            note = rng.choice(notes)
            if note:
                out.append(line[: len(line) - len(line.lstrip())] + note)
            continue
        line = re.sub(r"\s+#.*$", "", line) if "#" in line and "'" not in line and '"' not in line else line
        line = re.sub(r"(?<=\w) = (?=\w)", "=", line) if rng.random() < 0.5 else line
        out.append(line)
        if stripped.startswith("def ") and rng.random() < 0.3:
            indent = line[: len(line) - len(line.lstrip())] + "    "
            if not stripped.endswith(":"):
                continue
            out.append(f"{indent}# {rng.choice(['here we go', 'step', 'compute'])}")
    text = "\n".join(out) + "\n"
    text = re.sub(r'"""[^"]*"""', lambda m: '"""' + rng.choice(["Does the thing.", "Layer.", "See handout."]) + '"""',
                  text)
    return re.sub(r"\n{3,}", lambda m: "\n" * rng.choice([2, 3, 4]), text)


def disguised(source: str, seed: int = 0) -> str:
    """All three: what a copier who wants to hide it does in ten minutes."""
    rng = random.Random(seed)
    return recommented(reordered(renamed(source, rng), rng), rng)
