"""Content-addressed reuse of verdicts: a check whose inputs are byte-identical to an earlier grading's is not
run again; its earlier verdict is reused and marked so.

The engine computes each sandboxed check's input key (`keys.check_key`, over what `reads.check_reads` says the
check can read), asks a `ReuseStore` for earlier verdicts under those keys, runs only the others, and hands the
store the keys of the verdicts worth keeping. The web app's store (server.services.reuse) keeps them per student:
a student's upload reuses only that student's own earlier verdicts; an instructor's regrade reuses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from grader.result import CheckResult


@dataclass(frozen=True, slots=True)
class Reused:
    """An earlier verdict offered for a key."""

    result: CheckResult
    metrics: Mapping[str, float] = field(default_factory=dict)
    """The metrics the check's verdict added to its grading's result (accuracies for the leaderboard)."""
    origin: str = ""
    """Where it comes from, in the student's words ("upload #3")."""


@dataclass(frozen=True, slots=True)
class Kept:
    """A verdict of this grading worth keeping for later reuse: judged in the sandbox, passed or failed, and
    not cut short by a time, memory or process limit (those depend on the machine's load)."""

    key: str
    result: CheckResult
    """As the final result shows it."""
    metrics: Mapping[str, float] = field(default_factory=dict)


class ReuseStore(Protocol):
    def lookup(self, keys: Mapping[str, str]) -> Mapping[str, Reused]:
        """Earlier verdicts by check id, for the checks whose key (check id -> key) is known."""
        ...

    def keep(self, kept: Sequence[Kept]) -> None:
        """Told once, at the end of a grading, which of its verdicts may be reused later."""
        ...


class MemoryStore:
    """A ReuseStore in memory, one student's uploads in turn (tests, benchmarks): key -> the last kept verdict."""

    def __init__(self) -> None:
        self.verdicts: dict[str, Reused] = {}
        self.uploads = 0

    def lookup(self, keys: Mapping[str, str]) -> Mapping[str, Reused]:
        self.uploads += 1
        return {cid: self.verdicts[key] for cid, key in keys.items() if key in self.verdicts}

    def keep(self, kept: Sequence[Kept]) -> None:
        for k in kept:
            if k.result.reused_from is None:  # a reused verdict keeps pointing at the upload that judged it
                self.verdicts[k.key] = Reused(result=k.result, metrics=dict(k.metrics), origin=f"upload #{self.uploads}")


__all__ = ["Kept", "MemoryStore", "ReuseStore", "Reused"]
