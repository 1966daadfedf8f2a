r"""Text a student controls, made safe to print on a terminal.

Every character that `str.isprintable` rejects is shown as its Python escape (``\x1b``, ``\r``, ``\u202e``)
instead of being sent to the terminal: C0 and C1 controls (ESC and so every CSI / OSC sequence, CR, backspace,
DEL, tab, newline), format characters (the bidi embeddings, overrides and isolates U+202A-202E and
U+2066-2069, zero-width spaces and joiners, soft hyphen, BOM, tag characters), line and paragraph separators,
surrogates, private-use and unassigned code points, and spaces other than U+0020. So student text cannot move
the cursor, clear the screen, recolour or retitle the terminal, reorder what follows it, or hide itself.
Zero-width joiners are escaped too: they are invisible, let two different names look alike, and a grading
report loses nothing without them (an emoji sequence shows as its parts and ``\u200d``).
"""

from __future__ import annotations


def visible(text: str) -> str:
    """`text` as one terminal line: every non-printable character, newlines included, shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def visible_lines(text: str) -> list[str]:
    """`text` split at its newlines, each line as `visible` shows it (for messages that have lines)."""
    return [visible(line) for line in text.split("\n")]
