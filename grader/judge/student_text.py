"""Text written by student code that leaves a grading (exception types, messages, places), and its bounds.

Student code can put anything in an exception message, and check messages carry it to the student. While no
hidden image has been shown to the sandbox process, that is the student's own text: each error keeps up to
1,500 characters, and one grading at most `total` characters of it. Once a process has seen hidden images it
is tainted: its errors keep only the exception type (an identifier), the place (file and line) and a short
message, in printable ASCII, from a small budget per grading - so that hidden images cannot be carried out in
messages (`tests/test_hostile_round2.py` measures how many pixels an attacker gets out per grading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from grader.harness.protocol import Failure

MESSAGE_CHARS = 1500
TOTAL_CHARS = 24_000
TAINTED_MESSAGE_CHARS = 80
TAINTED_TOTAL_CHARS = 200
WITHHELD = "(not shown: your code had been given the hidden test images)"

_IDENT = re.compile(r"[^A-Za-z0-9_.]")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def ascii_text(text: str, limit: int) -> str:
    """Printable ASCII only (anything else becomes '?'), at most `limit` characters."""
    return _PRINTABLE.sub("?", text[: limit])


@dataclass(slots=True)
class TextBudget:
    """What is left of one grading's allowance of student text."""

    total: int = TOTAL_CHARS
    tainted: int = TAINTED_TOTAL_CHARS

    def clean(self, err: Failure, *, tainted: bool) -> Failure:
        """A failure the harness reported, as the judge keeps it: every string bounded."""
        kind, message, where = err.type, err.message, err.where
        if tainted:
            kind = _IDENT.sub("", kind)[:40] or "Error"
            where = ascii_text(where, 80)
            message = ascii_text(message, TAINTED_MESSAGE_CHARS)
            cost = len(kind) + len(where) + len(message)
            if cost > self.tainted:
                kind, where, message = kind[:40], "", WITHHELD
            else:
                self.tainted -= cost
            return replace(err, type=kind, message=message, where=where)
        kind, where, message = kind[:100], where[:200], message[:MESSAGE_CHARS]
        cost = len(kind) + len(where) + len(message)
        if cost > self.total:
            keep = max(0, self.total - len(kind) - len(where))
            message = message[:keep] + ("... (shortened: your code's messages in one grading are limited to "
                                        f"{TOTAL_CHARS} characters)" if keep < len(message) else "")
            cost = min(cost, self.total)
        self.total -= cost
        return replace(err, type=kind, message=message, where=where)

    def clean_place(self, where: str, *, tainted: bool) -> str:
        """A place in the student's files (from a stack dump) for a judge message."""
        text = ascii_text(where, 130)
        budget = self.tainted if tainted else self.total
        if len(text) > budget:
            return ""
        if tainted:
            self.tainted -= len(text)
        else:
            self.total -= len(text)
        return text
