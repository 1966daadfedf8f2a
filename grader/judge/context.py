"""What a check kind gets while planning ops and while judging their raw results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from grader.harness.op_messages import In
from grader.harness.protocol import Failure, OpRequest
from grader.result import CheckStatus
from grader.settings import GraderSettings

F = TypeVar("F")


@dataclass(slots=True)
class OpResult:
    """Raw outcome of one op: a value, or a failure (raised by student code, or the sandbox's verdict)."""

    value: Any = None
    error: Failure | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class GroupRun:
    """Results of a check's ops, in order; stops at the first error."""

    results: list[OpResult] = field(default_factory=list)

    @property
    def error(self) -> Failure | None:
        return self.results[-1].error if self.results and self.results[-1].error else None

    def value(self, i: int) -> Any:
        return self.results[i].value


@dataclass(slots=True)
class Plan:
    """Ops of one check, and the judge-only facts its kind needs to judge their results."""

    ops: list[OpRequest]
    facts: object = None
    """The kind's own frozen dataclass of judge-only facts (which op holds which output, labels, permutations,
    expected literals), read back with `facts_as`. Never sent."""
    use_reference: bool = True

    def facts_as(self, cls: type[F]) -> F:
        """The facts, as the kind that made this plan typed them."""
        if not isinstance(self.facts, cls):
            raise TypeError(f"the plan holds {type(self.facts).__name__}, not {cls.__name__}")
        return self.facts


@dataclass(frozen=True, slots=True)
class Verdict:
    status: CheckStatus
    message: str = ""
    fraction: float | None = None
    """Share of the check's points earned; default 1 when passed, 0 otherwise."""
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def ok(cls, message: str = "", **metrics: float) -> Verdict:
        return cls(CheckStatus.PASSED, message, metrics=metrics)

    @classmethod
    def fail(cls, message: str, **metrics: float) -> Verdict:
        return cls(CheckStatus.FAILED, message, metrics=metrics)

    @classmethod
    def err(cls, message: str) -> Verdict:
        return cls(CheckStatus.ERROR, message)


class Inputs:
    """Input arrays shared by all checks of one grading (sent to the sandbox in inputs.npz)."""

    def __init__(self, settings: GraderSettings) -> None:
        self.settings = settings
        self.arrays: dict[str, np.ndarray] = {}
        self.datasets: dict[str, np.ndarray] = {}

    def add(self, array: np.ndarray) -> dict[str, Any]:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.asarray(array)
        return In(name)

    def add_dataset(self, name: str, images: np.ndarray) -> None:
        self.datasets[name] = images
