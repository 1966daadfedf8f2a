"""The ops the judge asks the harness to run, as typed messages (one frozen class per `OpKind`).

The judge's planners build these; `to_wire()` gives the JSON object request.json carries for the op (``{"op":
kind, ...its fields}``, an optional field only when it is set) and `op_from_wire()` decodes one strictly: an
unknown kind, a missing or extra field or a field of the wrong type raises `WireError` (the harness makes that
a MALFORMED failure of that op alone). Op values (``args``, ``kwargs``, ``value``) stay JSON values: literals,
``{"$in": name}``, ``{"$ref": name}``, ... (see ops.py; `In` and `Ref` build the two common ones).

This module runs inside the sandbox too: the standard library and its own folder only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from .wire import WireError


class OpKind(StrEnum):
    """The ops the harness interpreter knows (grader/harness/ops.py has one method per kind)."""

    IMPORT = "import"
    NEW = "new"
    CALL = "call"
    VALUE = "value"
    GET = "get"
    NP_LOAD = "np_load"
    ASSIGN_STATE = "assign_state"
    SETATTR = "setattr"
    GETATTR = "getattr"
    GETITEM = "getitem"
    ISUB = "isub"
    SGD = "sgd"
    TORCH_PROBE = "torch_probe"
    KNOWN_NET = "known_net"
    TENSOR = "tensor"
    STATE_KEYS = "state_keys"
    TORCH_LOAD = "torch_load"
    LOAD_STATE_DICT = "load_state_dict"
    EVAL = "eval"
    PREDICT = "predict"


COMMON_FIELDS = frozenset({"op", "as", "report", "what"})
"""Fields any op may have: its kind, the name its result is kept as, whether its result is sent back, and the
words a message uses for it (judge-only, harmless to send)."""
_TARGET = frozenset({"module", "name", "ref"})
OP_FIELDS: dict[OpKind, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required fields, optional fields)
    OpKind.IMPORT: (frozenset({"module"}), frozenset()),
    OpKind.NEW: (frozenset(), _TARGET | {"args", "kwargs"}),
    OpKind.CALL: (frozenset(), _TARGET | {"method", "args", "kwargs"}),
    OpKind.VALUE: (frozenset({"value"}), frozenset()),
    OpKind.GET: (frozenset(), _TARGET),
    OpKind.NP_LOAD: (frozenset({"file"}), frozenset({"list"})),
    OpKind.ASSIGN_STATE: (frozenset({"ref", "state"}), frozenset()),
    OpKind.SETATTR: (frozenset({"ref", "attr", "value"}), frozenset()),
    OpKind.GETATTR: (frozenset({"ref", "attr"}), frozenset()),
    OpKind.GETITEM: (frozenset({"ref", "key"}), frozenset()),
    OpKind.ISUB: (frozenset({"ref", "key", "value"}), frozenset()),
    OpKind.SGD: (frozenset({"lr", "layers"}), frozenset()),
    OpKind.TORCH_PROBE: (frozenset({"ref", "seed", "shape"}), frozenset()),
    OpKind.KNOWN_NET: (frozenset({"classes"}), frozenset()),
    OpKind.TENSOR: (frozenset({"value"}), frozenset({"dtype"})),
    OpKind.STATE_KEYS: (frozenset({"ref"}), frozenset()),
    OpKind.TORCH_LOAD: (frozenset({"file", "as_state"}), frozenset({"whole_model_of"})),
    OpKind.LOAD_STATE_DICT: (frozenset({"ref", "state"}), frozenset()),
    OpKind.EVAL: (frozenset({"ref"}), frozenset()),
    OpKind.PREDICT: (frozenset({"ref", "fn_module", "fn", "data"}), frozenset({"scale", "batch", "limit"})),
}


def op_kind(op: Any) -> OpKind:
    """The kind of an op whose fields are the ones its kind has (OP_FIELDS). Raises WireError otherwise."""
    if not isinstance(op, Mapping):
        raise WireError(f"an op is a {type(op).__name__}, not an object")
    raw = op.get("op")
    try:
        kind = OpKind(str(raw)) if isinstance(raw, str) else OpKind("")
    except ValueError:
        raise WireError(f"op of unknown kind {str(raw)[:40]!r}") from None
    required, optional = OP_FIELDS[kind]
    keys = set(op)
    if missing := sorted(required - keys):
        raise WireError(f"op {kind} lacks {', '.join(missing)}")
    if extra := sorted(keys - required - optional - COMMON_FIELDS):
        raise WireError(f"op {kind} has unknown fields {', '.join(map(str, extra))[:80]}")
    return kind


# -- values -----------------------------------------------------------------------------------------------------
def In(name: str) -> dict[str, Any]:  # noqa: N802 - reads as the value it stands for
    """A fresh copy of the judge-provided input array `name` (the ``{"$in": name}`` value)."""
    return {"$in": name}


def Ref(name: str) -> dict[str, Any]:  # noqa: N802
    """The object an earlier op kept as `name` (the ``{"$ref": name}`` value)."""
    return {"$ref": name}


# -- field types --------------------------------------------------------------------------------------------------
def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_list(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str | bytes)


def _is_object(v: Any) -> bool:
    return isinstance(v, Mapping) and all(isinstance(k, str) for k in v)


def _is_any(v: Any) -> bool:
    return True


_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # wire key: (check, what it must be)
    "as": (_is_str, "a string"), "report": (lambda v: isinstance(v, bool), "a boolean"), "what": (_is_str, "a string"),
    "module": (_is_str, "a string"), "name": (_is_str, "a string"), "ref": (_is_str, "a string"),
    "method": (_is_str, "a string"), "args": (_is_list, "a list"), "kwargs": (_is_object, "an object"),
    "value": (_is_any, "a value"), "file": (_is_str, "a string"), "list": (lambda v: isinstance(v, bool), "a boolean"),
    "state": (_is_str, "a string"), "attr": (_is_str, "a string"),
    "key": (lambda v: _is_str(v) or _is_int(v), "a string or an integer"),
    "lr": (_is_number, "a number"), "layers": (lambda v: _is_list(v) and all(map(_is_str, v)), "a list of strings"),
    "seed": (_is_int, "an integer"), "shape": (lambda v: _is_list(v) and all(map(_is_int, v)), "a list of integers"),
    "classes": (_is_int, "an integer"), "dtype": (_is_str, "a string"), "as_state": (_is_str, "a string"),
    "whole_model_of": (_is_str, "a string"), "fn_module": (_is_str, "a string"), "fn": (_is_str, "a string"),
    "data": (_is_str, "a string"), "scale": (_is_number, "a number"), "batch": (_is_int, "an integer"),
    "limit": (_is_int, "an integer"),
}
"""The type of every field an op may have (OP_FIELDS and COMMON_FIELDS), by its name on the wire."""
_WIRE_NAME = {"as_": "as", "as_list": "list"}
"""Attributes named otherwise than their wire field (``as`` is a keyword, ``list`` a builtin)."""


# -- ops ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class OpBase:
    """What every op has: the name its result is kept as, whether its result is sent back (unset: it is), and the
    words messages use for it. A field that is None is not sent."""

    as_: str | None = None
    report: bool | None = None
    what: str | None = None

    KIND: ClassVar[OpKind]

    @property
    def reported(self) -> bool:
        return self.report is not False

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"op": self.KIND.value}
        required = OP_FIELDS[self.KIND][0]
        for f in fields(self):
            key = _WIRE_NAME.get(f.name, f.name)
            value = getattr(self, f.name)
            if value is not None or key in required:
                body[key] = value
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOp(OpBase):
    module: str
    KIND: ClassVar[OpKind] = OpKind.IMPORT


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOp(OpBase):
    """``cls(*args, **kwargs)`` for the class `name` of `module` (or the kept object `ref`)."""

    module: str | None = None
    name: str | None = None
    ref: str | None = None
    args: Sequence[Any] | None = None
    kwargs: Mapping[str, Any] | None = None
    KIND: ClassVar[OpKind] = OpKind.NEW


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOp(OpBase):
    """``target.method(*args, **kwargs)``, or ``target(...)`` without a method; the target as for NewOp."""

    module: str | None = None
    name: str | None = None
    ref: str | None = None
    method: str | None = None
    args: Sequence[Any] | None = None
    kwargs: Mapping[str, Any] | None = None
    KIND: ClassVar[OpKind] = OpKind.CALL


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueOp(OpBase):
    value: Any
    KIND: ClassVar[OpKind] = OpKind.VALUE


@dataclass(frozen=True, slots=True, kw_only=True)
class GetOp(OpBase):
    module: str | None = None
    name: str | None = None
    ref: str | None = None
    KIND: ClassVar[OpKind] = OpKind.GET


@dataclass(frozen=True, slots=True, kw_only=True)
class NpLoadOp(OpBase):
    file: str
    as_list: bool | None = None
    KIND: ClassVar[OpKind] = OpKind.NP_LOAD


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignStateOp(OpBase):
    ref: str
    state: str
    KIND: ClassVar[OpKind] = OpKind.ASSIGN_STATE


@dataclass(frozen=True, slots=True, kw_only=True)
class SetattrOp(OpBase):
    ref: str
    attr: str
    value: Any
    KIND: ClassVar[OpKind] = OpKind.SETATTR


@dataclass(frozen=True, slots=True, kw_only=True)
class GetattrOp(OpBase):
    ref: str
    attr: str
    KIND: ClassVar[OpKind] = OpKind.GETATTR


@dataclass(frozen=True, slots=True, kw_only=True)
class GetitemOp(OpBase):
    ref: str
    key: str | int
    KIND: ClassVar[OpKind] = OpKind.GETITEM


@dataclass(frozen=True, slots=True, kw_only=True)
class IsubOp(OpBase):
    ref: str
    key: str | int
    value: Any
    KIND: ClassVar[OpKind] = OpKind.ISUB


@dataclass(frozen=True, slots=True, kw_only=True)
class SgdOp(OpBase):
    lr: float
    layers: Sequence[str]
    KIND: ClassVar[OpKind] = OpKind.SGD


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchProbeOp(OpBase):
    ref: str
    seed: int
    shape: Sequence[int]
    KIND: ClassVar[OpKind] = OpKind.TORCH_PROBE


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownNetOp(OpBase):
    classes: int
    KIND: ClassVar[OpKind] = OpKind.KNOWN_NET


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorOp(OpBase):
    value: Any
    dtype: str | None = None
    KIND: ClassVar[OpKind] = OpKind.TENSOR


@dataclass(frozen=True, slots=True, kw_only=True)
class StateKeysOp(OpBase):
    ref: str
    KIND: ClassVar[OpKind] = OpKind.STATE_KEYS


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchLoadOp(OpBase):
    file: str
    as_state: str
    whole_model_of: str | None = None
    KIND: ClassVar[OpKind] = OpKind.TORCH_LOAD


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadStateDictOp(OpBase):
    ref: str
    state: str
    KIND: ClassVar[OpKind] = OpKind.LOAD_STATE_DICT


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalOp(OpBase):
    ref: str
    KIND: ClassVar[OpKind] = OpKind.EVAL


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictOp(OpBase):
    """``fn(net, x)`` of `fn_module` over hidden set `data`, in batches."""

    ref: str
    fn_module: str
    fn: str
    data: str
    scale: float | None = None
    batch: int | None = None
    limit: int | None = None
    KIND: ClassVar[OpKind] = OpKind.PREDICT


OpRequest: TypeAlias = (ImportOp | NewOp | CallOp | ValueOp | GetOp | NpLoadOp | AssignStateOp | SetattrOp
                        | GetattrOp | GetitemOp | IsubOp | SgdOp | TorchProbeOp | KnownNetOp | TensorOp | StateKeysOp
                        | TorchLoadOp | LoadStateDictOp | EvalOp | PredictOp)
"""One op of a check's script, as the judge plans it and the harness runs it."""

OP_CLASSES: dict[OpKind, type[OpBase]] = {cls.KIND: cls for cls in (
    ImportOp, NewOp, CallOp, ValueOp, GetOp, NpLoadOp, AssignStateOp, SetattrOp, GetattrOp, GetitemOp, IsubOp,
    SgdOp, TorchProbeOp, KnownNetOp, TensorOp, StateKeysOp, TorchLoadOp, LoadStateDictOp, EvalOp, PredictOp)}


def op_from_wire(body: Any) -> OpRequest:
    """The op a request carries. Raises WireError for an unknown kind, a missing or extra field (`op_kind`) or
    a field of the wrong type."""
    kind = op_kind(body)
    cls = OP_CLASSES[kind]
    values: dict[str, Any] = {}
    for f in fields(cls):
        key = _WIRE_NAME.get(f.name, f.name)
        if key in body:
            check, want = _TYPES[key]
            if not check(body[key]):
                raise WireError(f"op {kind}: {key} is not {want}")
            values[f.name] = body[key]
    op = cls(**values)
    assert isinstance(op, OpRequest)  # every class of OP_CLASSES is one of OpRequest's
    return op
