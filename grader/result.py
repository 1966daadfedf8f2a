"""Typed grading results: the JSON of DESIGN.md ("schema": 1) and nothing else.

A `GradeResult` is what `grade_submission` returns, what `autograder grade --json` prints and what the
server stores. Outcomes form a closed set; infrastructure failures become values, not exceptions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class Status(StrEnum):
    """Outcome of a whole grading."""

    GRADED = "graded"  # unpacked and checked; failed checks are still "graded"
    REJECTED = "rejected"  # the upload itself is unusable (not a zip, unsafe paths, too big, ...)
    ERROR = "error"  # the grader failed, not the student


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the student's code raised, crashed, hung or returned garbage
    SKIPPED = "skipped"  # not run (e.g. a prerequisite is missing)


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    target: str
    status: CheckStatus
    points: float
    max_points: float
    message: str = ""
    seconds: float | None = None
    """Time the student's code ran in the sandbox for this check, by the judge's clock (absent when nothing ran)."""

    def __post_init__(self) -> None:  # every float finite: a result must always be storable as JSON
        object.__setattr__(self, "points", _finite_or(self.points, 0.0))
        object.__setattr__(self, "max_points", _finite_or(self.max_points, 0.0))
        object.__setattr__(self, "seconds", _finite_or(self.seconds, None))

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED


@dataclass(frozen=True, slots=True)
class GradeResult:
    assignment: str
    status: Status
    message: str = ""
    score: float = 0.0
    max_score: float = 0.0
    passed: bool = False
    checks: tuple[CheckResult, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    deterministic: bool = False
    """An error that grading again would give again (a spec that cannot be graded with): not to be retried.
    In the JSON only when true."""
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:  # every float finite or dropped: a result must always be storable as JSON
        object.__setattr__(self, "score", _finite_or(self.score, 0.0))
        object.__setattr__(self, "max_score", _finite_or(self.max_score, 0.0))
        object.__setattr__(self, "metrics", _finite_only(self.metrics))
        object.__setattr__(self, "timings", _finite_only(self.timings))

    @classmethod
    def from_checks(
        cls,
        *,
        assignment: str,
        checks: list[CheckResult],
        metrics: dict[str, float],
        timings: dict[str, float],
        notices: list[str],
        required: frozenset[str] | None = None,
    ) -> GradeResult:
        """Sum points; `passed` when every required check (default: every check) passed."""
        score = round(sum(c.points for c in checks), 4)
        max_score = round(sum(c.max_points for c in checks), 4)
        needed = [c for c in checks if required is None or c.id in required]
        return cls(
            assignment=assignment,
            status=Status.GRADED,
            score=score,
            max_score=max_score,
            passed=all(c.passed for c in needed),
            checks=tuple(checks),
            metrics=metrics,
            timings=timings,
            notices=tuple(notices),
        )

    @classmethod
    def rejected(cls, *, assignment: str, message: str, max_score: float,
                 timings: dict[str, float] | None = None) -> GradeResult:
        return cls(assignment=assignment, status=Status.REJECTED, message=message,
                   max_score=max_score, timings=timings or {})

    @classmethod
    def error(cls, *, assignment: str, message: str, max_score: float = 0.0,
              deterministic: bool = False) -> GradeResult:
        return cls(assignment=assignment, status=Status.ERROR, message=message, max_score=max_score,
                   deterministic=deterministic)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Field order as in DESIGN.md, "schema" first.
        ordered = {"schema": d.pop("schema")}
        ordered.update(d)
        ordered["checks"] = [{k: (str(v) if k == "status" else v) for k, v in c.items()
                              if not (k == "seconds" and v is None)} for c in ordered["checks"]]
        ordered["status"] = str(self.status)
        ordered["notices"] = list(self.notices)
        if not self.deterministic:
            del ordered["deterministic"]
        return ordered

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradeResult:
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema {d.get('schema')!r}")
        checks = tuple(
            CheckResult(id=c["id"], target=c["target"], status=CheckStatus(c["status"]),
                        points=float(c["points"]), max_points=float(c["max_points"]),
                        message=c.get("message", ""),
                        seconds=float(c["seconds"]) if c.get("seconds") is not None else None)
            for c in d.get("checks", [])
        )
        return cls(
            assignment=d["assignment"], status=Status(d["status"]), message=d.get("message", ""),
            score=float(d.get("score", 0.0)), max_score=float(d.get("max_score", 0.0)),
            passed=bool(d.get("passed", False)), checks=checks,
            metrics=_numbers(d.get("metrics", {})),
            timings=_numbers(d.get("timings", {})),
            notices=tuple(d.get("notices", ())),
            deterministic=d.get("deterministic") is True,
        )

    @property
    def exit_code(self) -> int:
        """CLI convention: 0 graded (even with failed checks), 2 rejected, 1 internal error."""
        return {Status.GRADED: 0, Status.REJECTED: 2, Status.ERROR: 1}[self.status]


def _finite_or(v: Any, default: Any) -> Any:
    """`v` as a float when it is a finite number, else `default`."""
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return f if math.isfinite(f) else default


def _finite_only(values: dict[str, Any]) -> dict[str, float]:
    """The entries that are finite numbers (NaN, infinities and None are dropped)."""
    out = {}
    for k, v in values.items():
        f = _finite_or(v, None)
        if f is not None:
            out[str(k)] = f
    return out


def _numbers(values: Any) -> dict[str, float]:
    """A stored metrics/timings mapping; null (older results stored NaN as null) is dropped."""
    if not isinstance(values, dict):
        raise TypeError("metrics and timings must be objects")
    return _finite_only({k: v for k, v in values.items() if v is not None})
