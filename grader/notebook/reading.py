"""Reading a notebook file: bounded JSON, nbformat (older versions upgraded), the code cells' sources."""

from __future__ import annotations

import json
import warnings
from typing import Any

from grader.notebook.limits import NotebookLimits


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
            read = nbformat.convert(nbformat.reader.reads(json.dumps(slim)), 4)  # type: ignore[no-untyped-call]
        sources = [str(c.source) for c in read.cells if c.cell_type == "code"]
    except Exception as exc:  # nbformat's errors on odd input are of many kinds
        raise ValueError(f"not a notebook nbformat can read ({type(exc).__name__}: {str(exc)[:200]})") from None
    if len(sources) != len(texts):
        raise ValueError("not a notebook nbformat can read (its code cells got lost in the conversion)")
    return [s if t is not None else None for s, t in zip(sources, texts, strict=True)]


