"""A cheap scan of how deep a cell's expressions nest, before the parser sees it (which would exhaust the
recursion limit on a 200,000-term expression)."""

from __future__ import annotations

import re

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


