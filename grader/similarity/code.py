"""Pairwise similarity of students' source files, by winnowing (MOSS's algorithm), with copydetect's fingerprints.

What is compared: per file name of the assignment (``numpy_nn.py`` with ``numpy_nn.py``, ``hw04.ipynb`` with
``hw04.ipynb``), each student's text of that file: a ``.py`` file as it is, a notebook as its code cells (read
with grader.notebook.reading, the grader's bounded reader) joined under ``# %% [cell N]`` lines.

How (copydetect 0.5.0 does the fingerprinting):

1. **Normalisation**: copydetect's ``filter_code`` tokenizes with pygments' Python lexer and replaces every
   variable, attribute and argument name by ``V``, function names by ``F``, class names by ``O``, string
   contents by ``S``, and drops comments and whitespace. A copy with renamed variables, other comments, other
   docstrings or other layout has the same filtered text.
2. **Fingerprints**: hashes of every ``noise``-character k-gram of the filtered text, winnowed (window
   ``guarantee - noise + 1``): any shared run of at least ``guarantee`` filtered characters is found, none
   shorter than ``noise`` is. A fingerprint is a set member, so reordered functions or classes keep theirs.
3. **Template**: every k-gram of the assignment's template code (see `template_sources`) is dropped from
   everyone's fingerprints (copydetect's boilerplate), and so is every fingerprint that more than
   ``common_share`` of the students (and at least ``common_min``) have: code that nearly everyone writes the
   same way (``def params(self): return {}``) says nothing about copying (MOSS's ``-m``).
4. **Candidates by an inverted index, not all pairs**: copydetect's ``CopyDetector`` compares every pair of
   files in a Python loop (about 50 µs a pair here, and it keeps an n x n matrix of slices); 1,000 students
   are 499,500 pairs per file. Here one sparse product (students x fingerprints) counts the fingerprints
   every two students share, and only pairs sharing at least ``threshold / 2`` of the smaller side's
   fingerprints are compared with copydetect's ``compare_files``, which gives the exact overlap and the
   matching regions. Pairs below that bound cannot reach the threshold in practice (the score counts the
   tokens the shared fingerprints cover, which rises and falls with the shared fingerprints).
5. **Score** of a file pair: the tokens in matching regions over the tokens fingerprinted, of both sides
   together (``(overlap_a + overlap_b) / (coverage_a + coverage_b)``, so that a side that is nearly empty
   after the template is taken out does not make a pair look copied); ``share_a`` and ``share_b`` are each
   side's own fraction. A pair of students scores its best file; pairs at or above ``threshold`` are returned,
   best first.

The matching regions are mapped back from the filtered text to line ranges of each side's text. Fingerprints
use Python's ``hash`` of strings (copydetect's choice), which differs between processes: compare them within
one call only, never store them.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CODE_SUFFIXES = (".py", ".ipynb")
TEMPLATE_FOLDER = "template"
"""An assignment's template code: ``grader/assignments/<name>/template/`` (optional), every .py and .ipynb in
it, at any depth: the starter files students are given (skeletons, helpers, the handout notebook)."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: "fingerprint" per student, "compare" per candidate pair."""


@dataclass(frozen=True, slots=True)
class Params:
    noise: int = 35
    """Shortest match that counts, in filtered characters (one normalised line of NumPy code is about 20 to 40)."""
    guarantee: int = 40
    """Matches at least this long are always found (winnowing window ``guarantee - noise + 1``)."""
    threshold: float = 0.7
    """Pairs scoring at least this are returned (bench/similarity.py: disguised whole-file copies score 0.95 to
    1.0, copies with two methods rewritten about 0.65 to 0.8, the closest of 500,000 synthetic honest pairs up
    to 0.85, and the hand-written honest pairs of tests/test_similarity.py below 0.3)."""
    common_share: float = 0.05
    """A fingerprint more than this share of the students have is common code, not evidence ..."""
    common_min: int = 10
    """... provided that at least this many students have it (small classes keep everything)."""
    normalise: bool = True
    """Replace identifiers and drop comments (copydetect's filter); off only to show what it buys."""

    def __post_init__(self) -> None:
        if not 1 <= self.noise <= self.guarantee:
            raise ValueError("need 1 <= noise <= guarantee")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class FileMatch:
    name: str
    score: float
    share_a: float
    share_b: float
    lines_a: tuple[tuple[int, int], ...]
    """Matching line ranges (1-based, inclusive) of student a's text of the file."""
    lines_b: tuple[tuple[int, int], ...]
    spans_a: tuple[tuple[int, int], ...]
    """Matching character ranges (start, end) of student a's text, for highlighting."""
    spans_b: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Pair:
    student_a: str
    student_b: str
    score: float
    files: tuple[FileMatch, ...]
    """The files that matched, best first."""


@dataclass(slots=True)
class _Doc:
    text: str
    fp: _Fingerprint
    lines: list[int] = field(default_factory=list)


def normalised_newlines(text: str) -> str:
    """LF line ends only (pygments reads text so; line numbers stay those of the student's editor)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def notebook_text(data: bytes) -> str:
    """A notebook's code cells as one text, each under a ``# %% [cell N]`` line (comments do not count in the
    comparison). Raises ValueError when the grader's reader refuses the notebook."""
    from grader.notebook.reading import notebook_cells

    cells = notebook_cells(data)
    return "".join(f"# %% [cell {n}]\n{c.rstrip()}\n\n" for n, c in enumerate(cells, start=1) if c is not None)


def source_text(path: Path) -> str | None:
    """The comparable text of a .py or .ipynb file (None for other files and unreadable notebooks)."""
    if path.suffix == ".py":
        return normalised_newlines(path.read_bytes().decode("utf-8", errors="replace"))
    if path.suffix == ".ipynb":
        try:
            return normalised_newlines(notebook_text(path.read_bytes()))
        except ValueError:
            return None
    return None


def sources_in(folder: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """The comparable files of an unpacked submission: `names` (the assignment's files) or every file directly
    in `folder`, .py and .ipynb only, by name. Reads text, never imports or runs anything."""
    paths = [folder / n for n in names] if names is not None else sorted(folder.iterdir())
    out: dict[str, str] = {}
    for p in paths:
        if p.suffix in CODE_SUFFIXES and p.is_file() and not p.is_symlink():
            text = source_text(p)
            if text is not None:
                out[p.name] = text
    return out


def template_sources(assignment_folder: Path) -> dict[str, str]:
    """The assignment's template code (`TEMPLATE_FOLDER`), by path relative to it; empty when there is none."""
    root = assignment_folder / TEMPLATE_FOLDER
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix in CODE_SUFFIXES and p.is_file():
            text = source_text(p)
            if text is not None:
                out[p.relative_to(root).as_posix()] = text
    return out


class _Fingerprint:
    """A file's fingerprints, unit by unit (see `units`): copydetect's ``get_document_fingerprints`` (k-gram
    hashes, winnowed, boilerplate removed) of each unit's part of the filtered text, joined. It has the
    attributes copydetect's ``compare_files`` reads (hashes, hash_idx, k, filtered_code, token_coverage,
    offsets), and `starts` / `ends`: the range of the file's text that each filtered character stands for."""

    def __init__(self, text: str, params: Params, boilerplate: Any) -> None:
        from copydetect.utils import get_document_fingerprints, get_token_coverage

        self.k = params.noise
        self.offsets = np.array([])  # compare_files then leaves slices in filtered coordinates
        self.filtered_code, self.starts, self.ends = filtered(text, params.normalise)
        self.hashes: set[int] = set()
        self.hash_idx: dict[int, list[int]] = {}
        for a, b in units(text):
            lo, hi = bisect.bisect_left(self.starts, a), bisect.bisect_left(self.starts, b)
            if hi - lo < self.k:
                continue
            hashes, idx = get_document_fingerprints(self.filtered_code[lo:hi], self.k,
                                                    params.guarantee - params.noise + 1, boilerplate)
            for h, where in idx.items():
                self.hash_idx.setdefault(int(h), []).extend(int(i) + lo for i in where)
            self.hashes |= {int(h) for h in hashes}
        # get_document_fingerprints drops boilerplate with np.intersect1d(assume_unique=True) on hashes that
        # can repeat, which may keep a repeated one: take out whatever is left
        _drop(self, {int(h) for h in boilerplate} & self.hashes, self.k, recount=False)
        self.token_coverage = get_token_coverage(self.hash_idx, self.k, len(self.filtered_code))


CELL_MARK = "# %% [cell "


def units(text: str) -> list[tuple[int, int]]:
    """`text` cut into consecutive character ranges at line starts: every function and method its own unit,
    the code around them units too, and each notebook cell (`CELL_MARK`) at least one.

    Fingerprints never span two units, so that a file whose methods come in another order keeps all its
    fingerprints: in layer code most methods are a few lines, shorter than two k-grams, and k-grams across
    method boundaries would be most of a file's fingerprints. A cell that does not parse (IPython magics, a
    syntax error) is one unit."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n" and i + 1 < len(text)]
    cells = [n for n, s in enumerate(starts) if text.startswith(CELL_MARK, s)]
    bounds = sorted({0, *cells, len(starts)})
    cuts: set[int] = set(bounds)
    for first, stop in zip(bounds, bounds[1:], strict=False):
        chunk = text[starts[first]:starts[stop] if stop < len(starts) else len(text)]
        try:
            tree = ast.parse(chunk)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                cuts |= {first + line - 1, first + node.end_lineno}
    lines = sorted(c for c in cuts if 0 <= c <= len(starts))
    out = []
    for a, b in zip(lines, lines[1:], strict=False):
        lo, hi = starts[a], starts[b] if b < len(starts) else len(text)
        if hi > lo:
            out.append((lo, hi))
    return out or [(0, len(text))]


def _boilerplate(template: Mapping[str, str], params: Params) -> Any:
    """Every k-gram hash of the template code (all of them, not winnowed, as copydetect takes boilerplate)."""
    from copydetect.utils import hashed_kgrams

    hashes = [np.asarray(hashed_kgrams(filtered(normalised_newlines(t), params.normalise)[0], params.noise),
                         dtype=np.int64) for t in template.values()]
    return np.unique(np.concatenate([np.array([], dtype=np.int64), *hashes]))


def _drop(fp: Any, common: set[int], k: int, recount: bool = True) -> None:
    """Take the `common` fingerprints out of `fp` (its hash set, positions and token coverage)."""
    from copydetect.utils import get_token_coverage

    gone = fp.hashes & common
    if gone:
        fp.hashes = fp.hashes - gone
        fp.hash_idx = {h: i for h, i in fp.hash_idx.items() if h not in gone}
        if recount:
            fp.token_coverage = get_token_coverage(fp.hash_idx, k, len(fp.filtered_code))


def filtered(text: str, normalise: bool = True) -> tuple[str, list[int], list[int]]:
    """copydetect's normalised text of Python source `text` (the rules of copydetect.utils.filter_code:
    pygments' tokens, names to V / F / O, string contents to S, comments and whitespace dropped), and for each
    of its characters the range (start, end) of `text` it stands for.

    Lexed here rather than by filter_code, whose offsets table (meant for this mapping) is wrong at class
    names in 0.5.0 (it records the name's length instead of the running offset, which sends regions after a
    ``class`` line to the file's top); tests/test_similarity.py checks the text is filter_code's."""
    if not normalise:
        return text, list(range(len(text))), list(range(1, len(text) + 1))
    from pygments import token

    variable = {token.Name, token.Name.Variable, token.Name.Attribute}
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = len(text) - len(text.lstrip("\n"))  # pygments strips leading newlines (stripnl)
    for kind, tok in _lexer().get_tokens(text):
        n = len(tok)
        if kind in variable:
            out.append("V")
        elif kind in token.Name.Function:
            out.append("F")
        elif kind in token.Name.Class:
            out.append("O")
        elif kind == token.Comment.Preproc or kind == token.Comment.Hashbang:
            out.append("P")
        elif kind in token.Text or kind in token.Comment:
            pos += n
            continue
        elif kind in token.Literal.String:
            out.append('"' if tok in ("'", '"') else "S")
        else:
            out.append(tok)
            starts.extend(range(pos, pos + n))
            ends.extend(range(pos + 1, pos + n + 1))
            pos += n
            continue
        starts.append(pos)
        ends.append(pos + n)
        pos += n
    return "".join(out), starts, ends


_LEXER: list[Any] = []


def _lexer() -> Any:
    if not _LEXER:
        from pygments import lexers

        _LEXER.append(lexers.get_lexer_by_name("python"))
    return _LEXER[0]


def _regions(doc: _Doc, slices: Any) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Line ranges and character spans of `doc`'s text for copydetect's slices of its filtered text."""
    if not doc.lines:
        doc.lines = [i for i, c in enumerate(doc.text) if c == "\n"]
    starts, ends = doc.fp.starts, doc.fp.ends
    spans: list[tuple[int, int]] = []
    for a, b in zip(slices[0].tolist(), slices[1].tolist(), strict=True):
        span = (starts[min(int(a), len(starts) - 1)], ends[min(int(b), len(ends)) - 1])
        if spans and span[0] <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(span[1], spans[-1][1]))
        else:
            spans.append(span)
    lines: list[tuple[int, int]] = []
    for a, b in spans:
        first = bisect.bisect_right(doc.lines, a - 1) + 1
        last = bisect.bisect_right(doc.lines, max(a, b - 1) - 1) + 1
        if lines and first <= lines[-1][1] + 1:
            lines[-1] = (lines[-1][0], max(last, lines[-1][1]))
        else:
            lines.append((first, last))
    return tuple(lines), tuple(spans)


def _candidates(fps: list[Any], threshold: float) -> list[tuple[int, int]]:
    """Index pairs (i < j) sharing at least threshold / 2 of the smaller side's fingerprints: one sparse
    product of the students x fingerprints incidence matrix (the inverted index) instead of all pairs."""
    from scipy import sparse

    column: dict[int, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, fp in enumerate(fps):
        for h in fp.hashes:
            rows.append(i)
            cols.append(column.setdefault(int(h), len(column)))
    if not column:
        return []
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(fps), len(column)))
    shared = sparse.triu(x @ x.T, k=1).tocoo()
    sizes = np.array([len(fp.hashes) for fp in fps])
    smaller = np.minimum(sizes[shared.row], sizes[shared.col])
    keep = shared.data >= np.maximum(1, threshold / 2 * smaller)
    return sorted(zip(shared.row[keep].tolist(), shared.col[keep].tolist(), strict=True))


def find_pairs(students: Mapping[str, Mapping[str, str]], template: Mapping[str, str] | None = None,
               params: Params | None = None, progress: Progress | None = None) -> list[Pair]:
    """Pairs of students whose files are similar: score at or above ``params.threshold``, best first.

    `students`: username -> {file name -> text} (see `sources_in`); `template`: the assignment's template code
    (file name -> text, see `template_sources`), excluded from everyone's files."""
    from copydetect.detector import compare_files

    p = params or Params()
    boilerplate = _boilerplate(template or {}, p)
    names = sorted(students)
    docs: dict[str, dict[int, _Doc]] = {}
    for i, user in enumerate(names):
        for fname, text in students[user].items():
            text = normalised_newlines(text)
            docs.setdefault(fname, {})[i] = _Doc(text, _Fingerprint(text, p, boilerplate))
        if progress:
            progress("fingerprint", i + 1, len(names))
    limit = max(p.common_min, p.common_share * len(names))
    found: dict[tuple[int, int], list[FileMatch]] = {}
    todo: list[tuple[str, int, int]] = []
    for fname, by_user in sorted(docs.items()):
        counts: dict[int, int] = {}
        for d in by_user.values():
            for h in d.fp.hashes:
                counts[h] = counts.get(h, 0) + 1
        common = {h for h, c in counts.items() if c > limit}
        for d in by_user.values():
            _drop(d.fp, common, p.noise)
        users = sorted(by_user)
        todo += [(fname, users[a], users[b])
                 for a, b in _candidates([by_user[u].fp for u in users], p.threshold)]
    for n, (fname, i, j) in enumerate(todo, start=1):
        da, db = docs[fname][i], docs[fname][j]
        _, _, (slices_a, slices_b) = compare_files(da.fp, db.fp)
        if len(slices_a[0]) and da.fp.token_coverage and db.fp.token_coverage:
            over_a = float(np.sum(slices_a[1] - slices_a[0]))
            over_b = float(np.sum(slices_b[1] - slices_b[0]))
            score = (over_a + over_b) / float(da.fp.token_coverage + db.fp.token_coverage)
            if score >= p.threshold:
                lines_a, spans_a = _regions(da, slices_a)
                lines_b, spans_b = _regions(db, slices_b)
                found.setdefault((i, j), []).append(FileMatch(
                    name=fname, score=round(min(score, 1.0), 4),
                    share_a=round(min(over_a / float(da.fp.token_coverage), 1.0), 4),
                    share_b=round(min(over_b / float(db.fp.token_coverage), 1.0), 4),
                    lines_a=lines_a, lines_b=lines_b, spans_a=spans_a, spans_b=spans_b))
        if progress:
            progress("compare", n, len(todo))
    pairs = [Pair(student_a=names[i], student_b=names[j], score=max(f.score for f in fs),
                  files=tuple(sorted(fs, key=lambda f: (-f.score, f.name))))
             for (i, j), fs in found.items()]
    return sorted(pairs, key=lambda q: (-q.score, q.student_a, q.student_b))
