"""Typed grading results: the JSON of DESIGN.md ("schema": 1) and nothing else.

A `GradeResult` is what `grade_submission` returns, what `autograder grade --json` prints and what the
server stores. Outcomes form a closed set; infrastructure failures become values, not exceptions.

The two models below are the one definition of schema 1: the grader writes its JSON through them
(`to_dict` / `to_json`), the web app reads a worker's JSON and its stored results back through them
(`from_dict`), and the API serialises and describes (OpenAPI) a submission's report with them
(`server/schemas.py` uses `GradeResult` as the report's type). The rules every instance follows, however it is
made (in the engine, or from JSON a worker posted or an older grader stored):

- every float is finite: points, scores and a check's seconds that are NaN or infinite become 0 (seconds:
  absent); metrics and timings keep only their finite numbers (older graders stored a NaN metric as null);
- numbers given as something that is not a number (a string that does not parse, null for points, a list) and
  strings, statuses or flags of the wrong type are a validation error (a `ValueError`), as is a schema other
  than 1;
- keys the schema does not know are ignored;
- a check's ``seconds`` is in the JSON only when something ran, its ``reused_from`` only when its verdict was
  reused, ``deterministic`` only when true; the key order
  is the fields' order below ("schema" first).
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


_CONFIG = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True,
                     serialize_by_alias=True, use_attribute_docstrings=True)


class CheckResult(BaseModel):
    """One check's outcome."""

    model_config = _CONFIG

    id: str
    target: str
    """The class or function the check is about (Linear, MyNet, classify, ...)."""
    status: CheckStatus
    points: float
    max_points: float
    message: str = ""
    seconds: float | None = Field(default=None, exclude_if=lambda v: v is None)
    """Time the student's code ran in the sandbox for this check, by the judge's clock (absent when nothing ran)."""
    reused_from: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """Set when this verdict was not judged again but reused from an earlier grading whose inputs (every file
    the check can read, its spec, the hidden data, the grader) were byte-identical, e.g. "upload #3" (absent
    otherwise; nothing ran for it, so it has no `seconds`)."""

    @field_validator("points", "max_points", mode="before")
    @classmethod
    def _finite_points(cls, v: Any) -> Any:
        return _finite_or(v, 0.0)

    @field_validator("seconds", mode="before")
    @classmethod
    def _finite_seconds(cls, v: Any) -> Any:
        return _finite_or(v, None)

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED


class GradeResult(BaseModel):
    """A whole grading: the result JSON, schema 1."""

    model_config = _CONFIG

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")
    """Always 1 (a result of another schema does not validate)."""
    assignment: str
    status: Status
    message: str = ""
    """For the student: why the upload was rejected or the grader failed."""
    score: float = 0.0
    max_score: float = 0.0
    passed: bool = False
    checks: tuple[CheckResult, ...] = ()
    metrics: dict[str, float] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    notices: tuple[str, ...] = ()
    """What the unpacker skipped or changed."""
    deterministic: bool = Field(default=False, exclude_if=lambda v: not v)
    """An error that grading again would give again (a spec that cannot be graded with): not to be retried.
    In the JSON only when true."""

    @field_validator("schema_version", mode="before")
    @classmethod
    def _schema_1(cls, v: Any) -> Any:
        if v != SCHEMA_VERSION or isinstance(v, bool):
            raise ValueError(f"unsupported result schema {v!r}")
        return v

    @field_validator("score", "max_score", mode="before")
    @classmethod
    def _finite_score(cls, v: Any) -> Any:
        return _finite_or(v, 0.0)

    @field_validator("metrics", "timings", mode="before")
    @classmethod
    def _finite_values(cls, v: Any) -> Any:
        return _finite_only(v) if isinstance(v, dict) else v

    @field_validator("deterministic", mode="before")
    @classmethod
    def _only_true(cls, v: Any) -> bool:
        return v is True  # a worker's "deterministic": 1 or "yes" does not stop the retries

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
    def merged(cls, parts: list[GradeResult], *, order: tuple[str, ...],
               required: frozenset[str] | None = None) -> GradeResult:
        """One graded result of a grading done in parts (the server's quick and slow phases, each a graded result of
        some of the checks): each check from the last part that has it, in `order` (the spec's; checks it does not
        name go last), metrics united (the engine's counts, `sandbox.starts` and `sandbox.kills.*`, summed; its peaks,
        `*peak_memory_mb` and `*retained_mb`, the larger; any other a later part's), timings summed per key, notices
        united in order."""
        checks: dict[str, CheckResult] = {}
        metrics: dict[str, float] = {}
        timings: dict[str, float] = {}
        notices: dict[str, None] = {}
        for part in parts:
            checks.update((c.id, c) for c in part.checks)
            for k, v in part.metrics.items():
                if k in metrics and (k == "sandbox.starts" or k.startswith("sandbox.kills.")):
                    v = metrics[k] + v
                elif k in metrics and k.endswith(("peak_memory_mb", "retained_mb")):
                    v = max(metrics[k], v)
                metrics[k] = v
            for k, v in part.timings.items():
                timings[k] = round(timings.get(k, 0.0) + v, 3)
            notices.update(dict.fromkeys(part.notices))
        rank = {cid: i for i, cid in enumerate(order)}
        ordered = sorted(checks.values(), key=lambda c: rank.get(c.id, len(rank)))
        return cls.from_checks(assignment=parts[0].assignment if parts else "", checks=ordered, metrics=metrics,
                               timings=timings, notices=list(notices), required=required)

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

    @property
    def schema(self) -> int:  # type: ignore[override]  # BaseModel.schema is pydantic v1's deprecated classmethod
        """The JSON's "schema" (always SCHEMA_VERSION)."""
        return self.schema_version

    def to_dict(self) -> dict[str, Any]:
        """The result JSON as a mapping (key order as in DESIGN.md, "schema" first)."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Any) -> GradeResult:
        """A result JSON (a worker's, or one stored by this or an older grader) read back; raises ValueError (a
        pydantic ValidationError, or a schema other than 1) when it is not schema 1."""
        if not isinstance(d, dict):
            raise ValueError(f"a result is a JSON object, not {type(d).__name__}")
        if d.get("schema") != SCHEMA_VERSION:  # also when missing (the model's default is for results made here)
            raise ValueError(f"unsupported result schema {d.get('schema')!r}")
        return cls.model_validate(d)

    @classmethod
    def from_json(cls, text: str | bytes) -> GradeResult:
        """`from_dict` of a JSON text (NaN and infinities in it are read, then dropped or zeroed)."""
        return cls.from_dict(json.loads(text))

    @property
    def exit_code(self) -> int:
        """CLI convention: 0 graded (even with failed checks), 2 rejected, 1 internal error."""
        return {Status.GRADED: 0, Status.REJECTED: 2, Status.ERROR: 1}[self.status]


def _finite_or(v: Any, default: Any) -> Any:
    """`v` as a float when it is a finite number, `default` when it is NaN, infinite or too large for a float;
    anything that is no number is left as it is (the field's validation refuses it)."""
    if v is None:
        return v
    try:
        f = float(v)
    except OverflowError:
        return default
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else default


def _finite_only(values: dict[Any, Any]) -> dict[str, float]:
    """The entries that are finite numbers (NaN, infinities, null and anything that is no number are dropped)."""
    out = {}
    for k, v in values.items():
        f = _finite_or(v, None)
        if isinstance(f, float):
            out[str(k)] = f
    return out
