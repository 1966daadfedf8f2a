"""The messages across the sandbox boundary, as both sides see them (INGInious-style typed messages).

The judge sends a `Request` (groups of ops, each a typed op of op_messages.py, one class per `OpKind`); the harness
answers with frames: `Hello`, then per op `Start` and either `ResultValue` or `ResultFailure`, then `Done`.
Every way an op or a process can end is one `Outcome`; a `Failure` is any end but PASSED, on either side.

`to_wire()` gives the JSON-able body that wire.py frames; `from_wire()` is strict: an unknown kind, a missing
or extra field or a field of the wrong type raises `WireError` (the judge makes that a MALFORMED failure). This
module runs inside the sandbox too: the standard library, numpy (through wire.py) and its own folder only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from .op_messages import COMMON_FIELDS as COMMON_FIELDS  # the ops themselves: op_messages.py
from .op_messages import OP_FIELDS as OP_FIELDS
from .op_messages import OpBase as OpBase
from .op_messages import OpKind as OpKind
from .op_messages import OpRequest as OpRequest
from .op_messages import op_from_wire as op_from_wire
from .op_messages import op_kind as op_kind
from .wire import WireError


class Outcome(StrEnum):
    """How an op, or a sandbox process, ended: the one closed set both sides use."""

    PASSED = "passed"  # the op returned a value; the process said it was done
    RAISED = "raised"  # the student's code raised an exception (type, message, place)
    FAILED = "failed"  # the harness found the student's code breaking the contract (a missing module, ...)
    TIMEOUT = "timeout"
    KILLED = "killed"  # by the kernel: over the memory or process limit of its cgroup
    CRASH = "crash"  # exited or died by a signal before it said it was done
    OVERFLOW = "overflow"  # sent more than the output cap, or than the judge keeps
    MALFORMED = "malformed"  # a message that does not follow this protocol (either direction)
    NOT_RUN = "not_run"  # the judge did not run it (time used up, too many restarts, a call that hung before)


HARNESS_OUTCOMES = frozenset({Outcome.RAISED, Outcome.FAILED, Outcome.MALFORMED})
"""The failures the harness may report for an op; every other one is the judge's verdict on the process."""


Op: TypeAlias = OpRequest
"""One op of a script, typed (op_messages.py); the judge's planners build them."""
RawOp: TypeAlias = Mapping[str, Any]
"""One op as request.json carries it (``{"op": kind, ...its fields}``), decoded by `op_from_wire` when it runs."""


# -- fields -----------------------------------------------------------------------------------------------------
def _fields(body: Mapping[str, Any], kind: str, names: frozenset[str]) -> None:
    keys = set(body)
    if missing := sorted(names - keys):
        raise WireError(f"{kind} message lacks {', '.join(missing)}")
    if extra := sorted(keys - names):
        raise WireError(f"{kind} message has unknown fields {', '.join(map(str, extra))[:80]}")


def _int(body: Mapping[str, Any], key: str) -> int:
    v = body[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise WireError(f"{key} is not a count")
    return v


def _str(body: Mapping[str, Any], key: str) -> str:
    v = body[key]
    if not isinstance(v, str):
        raise WireError(f"{key} is not a string")
    return v


# -- failures ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Failure:
    """Why an op did not give a value. `type` is the exception's class name when the harness reports it, and
    empty for the judge's own verdicts on the sandbox process (timeout, killed, crash, ...)."""

    outcome: Outcome
    message: str
    type: str = ""
    where: str = ""
    """The innermost place in the student's files (``file.py line N, in name``), or ""."""

    FIELDS: ClassVar[frozenset[str]] = frozenset({"outcome", "type", "message", "where"})

    def __str__(self) -> str:
        return f"{self.type or self.outcome}: {self.message}" + (f" ({self.where})" if self.where else "")

    @property
    def sandbox(self) -> bool:
        """Whether this is the judge's verdict on the sandbox (no exception of the student's code behind it)."""
        return not self.type

    @property
    def harness(self) -> bool:
        """Whether the harness found a problem itself (a contract the student's code broke), not an exception."""
        return bool(self.type) and self.outcome is not Outcome.RAISED

    def to_wire(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "type": self.type, "message": self.message, "where": self.where}

    @classmethod
    def from_wire(cls, body: Any) -> Failure:
        """A failure the harness reported: one of HARNESS_OUTCOMES, naming the exception type."""
        if not isinstance(body, Mapping):
            raise WireError("failure is not an object")
        _fields(body, "failure", cls.FIELDS)
        try:
            outcome = Outcome(body["outcome"])
        except ValueError:
            raise WireError(f"failure of unknown outcome {str(body['outcome'])[:40]!r}") from None
        if outcome not in HARNESS_OUTCOMES:
            raise WireError(f"the harness cannot report the outcome {outcome}")
        kind = _str(body, "type")
        if not kind:
            raise WireError("failure lacks its exception type")
        return cls(outcome=outcome, type=kind, message=_str(body, "message"), where=_str(body, "where"))


# -- harness -> judge -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hello:
    """The harness has started (and has not yet run student code)."""

    pid: int
    T: ClassVar[str] = "hello"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "pid": self.pid}


@dataclass(frozen=True, slots=True)
class Start:
    """Op `op` of group `group` starts now."""

    group: int
    op: int
    T: ClassVar[str] = "start"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "g": self.group, "i": self.op}


@dataclass(frozen=True, slots=True)
class ResultValue:
    """The raw value op `op` of group `group` returned (see ops.describe), already decoded by wire.py."""

    group: int
    op: int
    value: Any
    T: ClassVar[str] = "result"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "g": self.group, "i": self.op, "value": self.value}


@dataclass(frozen=True, slots=True)
class ResultFailure:
    """Op `op` of group `group` failed (the group stops there)."""

    group: int
    op: int
    failure: Failure
    T: ClassVar[str] = "result"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "g": self.group, "i": self.op, "error": self.failure.to_wire()}


@dataclass(frozen=True, slots=True)
class Done:
    """Every group has run."""

    T: ClassVar[str] = "done"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T}


Frame: TypeAlias = Hello | Start | ResultValue | ResultFailure | Done

_HELLO, _START, _DONE = frozenset({"t", "pid"}), frozenset({"t", "g", "i"}), frozenset({"t"})
_VALUE, _FAILURE = _START | {"value"}, _START | {"error"}


def frame_from_wire(body: Mapping[str, Any]) -> Frame:
    """The frame a decoded message body holds. Raises WireError for anything but exactly one frame kind."""
    kind = body.get("t")
    if kind == Hello.T:
        _fields(body, "hello", _HELLO)
        return Hello(pid=_int(body, "pid"))
    if kind == Start.T:
        _fields(body, "start", _START)
        return Start(group=_int(body, "g"), op=_int(body, "i"))
    if kind == ResultValue.T:
        _fields(body, "result", _FAILURE if "error" in body else _VALUE)
        if "error" in body:
            return ResultFailure(group=_int(body, "g"), op=_int(body, "i"), failure=Failure.from_wire(body["error"]))
        return ResultValue(group=_int(body, "g"), op=_int(body, "i"), value=body["value"])
    if kind == Done.T:
        _fields(body, "done", _DONE)
        return Done()
    raise WireError(f"message of unknown kind {str(kind)[:20]!r}")


# -- judge -> harness -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Group:
    """One check's ops, run in order until the first failure."""

    index: int
    ops: tuple[Op | RawOp, ...]
    """Typed ops (the judge's), or ops as received (the harness's: each is decoded when it runs)."""


@dataclass(frozen=True, slots=True)
class Request:
    """What one sandbox process runs (request.json). Ops are decoded when they run (`op_from_wire`), so that an
    op the harness does not know fails that op alone, as MALFORMED."""

    groups: tuple[Group, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"groups": [{"index": g.index, "ops": [op.to_wire() if isinstance(op, OpBase) else op for op in g.ops]}
                           for g in self.groups]}

    @classmethod
    def from_wire(cls, body: Any) -> Request:
        if not isinstance(body, Mapping):
            raise WireError("request is not an object")
        _fields(body, "request", frozenset({"groups"}))
        if not isinstance(body["groups"], list):
            raise WireError("groups is not a list")
        groups = []
        for g in body["groups"]:
            if not isinstance(g, Mapping):
                raise WireError("group is not an object")
            _fields(g, "group", frozenset({"index", "ops"}))
            if not isinstance(g["ops"], list):
                raise WireError("ops is not a list")
            groups.append(Group(index=_int(g, "index"), ops=tuple(g["ops"])))
        return cls(groups=tuple(groups))
