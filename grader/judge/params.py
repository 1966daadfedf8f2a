"""Typed, validated params of every check kind (``[checks.params]`` in a spec), checked when the spec loads.

Each kind has one frozen pydantic model with ``extra="forbid"``: a misspelt key, a missing one or a value of the
wrong type is an error naming the key, at load time instead of a KeyError (or a silent default) while grading.
Defaults are those the kinds used before through ``.get``. Script steps (``steps``; see grader.judge.script) are
a small language of their own and stay mappings here, held to one step kind and the keys that kind reads; their
arguments are script.py's to check.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

STEP_KEYS: dict[str, frozenset[str]] = {
    "call": frozenset({"module", "args", "kwargs", "given", "unchanged", "unchanged_why"}),
    "new": frozenset({"module", "args", "kwargs", "unchanged", "unchanged_why"}),
    "method": frozenset({"on", "owner", "args", "kwargs", "unchanged", "unchanged_why"}),
    "item": frozenset(),
    "attr": frozenset({"on", "owner"}),
    "set": frozenset({"on", "owner", "value"}),
    "np_load": frozenset({"list"}),
    "torch_load": frozenset({"into", "owner", "whole_model_of"}),
    "assign": frozenset({"into", "owner"}),
    "eval": frozenset({"owner"}),
}
"""The step kinds of grader.judge.script (its key names the kind) and the keys each may hold besides
`STEP_COMMON`, as Script._step reads them."""
STEP_COMMON = frozenset({"check", "shape", "twin", "label", "as"})


def _step(step: dict[str, Any]) -> dict[str, Any]:
    """A step with one kind and only the keys that kind reads (its arguments are script.py's to check)."""
    kinds = [k for k in STEP_KEYS if k in step]
    if len(kinds) != 1:
        raise ValueError(f"a step is exactly one of {', '.join(STEP_KEYS)} (this one: {', '.join(kinds) or 'none'})")
    if unknown := sorted(set(step) - {kinds[0]} - STEP_COMMON - STEP_KEYS[kinds[0]]):
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in a {kinds[0]} step")
    return step


Step = Annotated[dict[str, Any], AfterValidator(_step)]
"""One step of an op script (see grader.judge.script)."""
Sizes = dict[str, int | list[int]]
"""A layer's constructor and shape sizes: names to an int or a whole shape (``shape = [2, 3]``)."""
DEFAULT_BATCH = 250
"""Images per call of fn(model, x) on a hidden set, unless the check says `batch`."""


class Params(BaseModel):
    """Base of every kind's params: unknown keys are errors, values are not changed after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def _described(name: str, info: ValidationInfo) -> str:
    """A layer name that the spec describes (``[layers.NAME]``), when the caller says which it describes."""
    layers = (info.context or {}).get("layers")
    if layers is not None and name not in layers:
        raise ValueError(f"no [layers.{name}] in this spec (described: {', '.join(sorted(layers)) or 'none'})")
    return name


class _Layer(Params):
    layer: str
    """Name of a ``[layers.NAME]`` description of the same spec."""

    @field_validator("layer")
    @classmethod
    def _layer_described(cls, name: str, info: ValidationInfo) -> str:
        return _described(name, info)


class LayerInterfaceParams(_Layer):
    pass


class LayerParamsParams(_Layer):
    pass


class Linspace(Params):
    """``np.linspace(*linspace).reshape(shape) * scale``: the seed's plot inputs."""

    linspace: list[int | float] = Field(min_length=3, max_length=3)
    """start, stop, num"""
    shape: list[int] | None = None
    scale: float = 1.0

    @field_validator("linspace")
    @classmethod
    def _whole_num(cls, value: list[int | float]) -> list[int | float]:
        if not isinstance(value[2], int):
            raise ValueError("linspace = [start, stop, num] takes a whole number num")
        return value


def _array_kind(value: Any) -> str:
    """Which member of `ArrayValue` a raw value is meant as, so that an error names only that one."""
    return "linspace" if isinstance(value, dict | Linspace) else "list" if isinstance(value, list) else "number"


def _arg_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else _array_kind(value)


_Arrays = (Annotated[Linspace, Tag("linspace")] | Annotated[list[Any], Tag("list")]
           | Annotated[float, Tag("number")])
ArrayValue = Annotated[_Arrays, Discriminator(_array_kind)]
"""An array of a notebook case: a literal (nested lists or a number) or a `Linspace`."""
CellArg = Annotated[Annotated[str, Tag("name")] | _Arrays, Discriminator(_arg_kind)]
"""An argument of a cell's call: the name of one of the case's arrays, or an array."""


class Cell(Params):
    """One call of the seed's cell sequence: ``forward = [args]`` or ``backward = [args]`` (args: names of the
    case's ``arrays`` or inline arrays), with the values the seed expects."""

    forward: list[CellArg] | None = None
    backward: list[CellArg] | None = None
    expect: ArrayValue | None = None
    attrs: dict[str, ArrayValue] = {}
    """Gradient attributes backward fills, with their expected values (backward cells only)."""

    @model_validator(mode="after")
    def _one_call(self) -> Self:
        if (self.forward is None) == (self.backward is None):
            raise ValueError("a cell calls exactly one of forward = [...] or backward = [...]")
        if self.forward is not None and self.attrs:
            raise ValueError("attrs are read after backward; this cell calls forward")
        return self

    @property
    def method(self) -> Literal["forward", "backward"]:
        return "forward" if self.forward is not None else "backward"

    @property
    def args(self) -> list[CellArg]:
        return self.forward if self.forward is not None else self.backward or []


class NotebookCase(Params):
    """The seed's sequence of cells for one layer (see grader.judge.layers.LayerCalls)."""

    cells: list[Cell] = Field(min_length=1)
    sizes: Sizes | None = None
    """Default: the layer's first sizes."""
    set: dict[str, ArrayValue] = {}
    """Parameter values set on the layer before the cells run."""
    arrays: dict[str, ArrayValue] = {}
    """The notebook's named arrays (one object wherever a cell names it)."""


class LayerCallsParams(_Layer):
    cases: list[NotebookCase] = []
    decimal: int = 6
    """Decimal places the seed's literal values are compared to."""


class LayerGradcheckParams(_Layer):
    sizes: Sizes | None = None
    """Default: the layer's first sizes."""


class NetworkLayer(Params):
    layer: str
    sizes: Sizes = {}

    @field_validator("layer")
    @classmethod
    def _layer_described(cls, name: str, info: ValidationInfo) -> str:
        return _described(name, info)


class NetworkParams(Params):
    batch: int
    lr: float = 0.1
    layers: list[NetworkLayer] = Field(min_length=1)
    head: str

    @field_validator("head")
    @classmethod
    def _head_described(cls, name: str, info: ValidationInfo) -> str:
        return _described(name, info)


class TorchModelParams(Params):
    """A model the check builds as ``module.class(**kwargs)``."""

    module: str
    class_: str = Field(alias="class")
    kwargs: dict[str, Any] = {}
    """Keyword arguments of the constructor (default: none, as the handouts build ``Model()``)."""


class TorchBuildParams(TorchModelParams):
    input_shape: list[int] = Field(min_length=1)
    output_shape: list[int] = Field(min_length=1)
    output_doc: str = ""


class TorchCheckpointParams(TorchModelParams):
    file: str


class TorchClassifyParams(TorchModelParams):
    fn: str
    fn_module: str
    input_shape: list[int] = Field(min_length=2)
    classes: int = Field(ge=1)


class HiddenSet(Params):
    hidden: str
    """Name of the prepared hidden set (grader.data)."""
    label: str
    metric: str
    weight: float = 1.0
    load: dict[str, Any] = {}
    """Keyword arguments of grader.data.load_hidden."""
    dither: int | None = None


class TorchAccuracyParams(TorchCheckpointParams):
    fn: str
    fn_module: str
    datasets: list[HiddenSet] = Field(min_length=1)
    threshold: float
    metric: str | None = None
    """Where a weighted sum of the sets' accuracies goes; without it the first set's accuracy is judged."""
    batch: int = Field(DEFAULT_BATCH, ge=1)


class FunctionCase(Params):
    """``steps`` (see grader.judge.script), or the shorthand: one call of the check's ``fn`` with these args."""

    steps: list[Step] | None = None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    label: str | None = None
    unchanged: dict[str, int | str] | None = None
    unchanged_why: str | None = None

    def as_steps(self, fn: str | None) -> list[Step]:
        if self.steps:
            return self.steps
        extra = {k: v for k, v in (("label", self.label), ("unchanged", self.unchanged),
                                   ("unchanged_why", self.unchanged_why)) if v is not None}
        return [{"call": fn, "args": self.args, "kwargs": self.kwargs, **extra}]


class FunctionParams(Params):
    fn: str | None = None
    cases: list[FunctionCase] = [FunctionCase()]
    rtol: float = 1e-5
    atol: float = 1e-7
    dtype: bool = False
    """Insist on the reference's tensor dtypes."""
    units: list[str] = []
    """The student's helper functions the subject calls that other checks judge (grader.judge.units)."""

    @model_validator(mode="after")
    def _fn_for_shorthand(self) -> Self:
        if self.fn is None and any(not c.steps for c in self.cases):
            raise ValueError("a case without steps calls fn, and this check names no fn")
        return self


class XavierParams(Params):
    fn: str
    sizes: list[Annotated[list[int], Field(min_length=2, max_length=2)]] = Field(min_length=1)
    """(in, out) pairs."""


class BatchCase(Params):
    n: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    dim: int = Field(5, ge=2)
    classes: int = Field(4, ge=1)


class BatchPartitionParams(Params):
    fn: str
    cases: list[BatchCase] = Field(min_length=1)
    near_equal: bool = False
    """Also accept k = N // batch_size batches of near-equal size (np.array_split)."""


class PredictionsParams(Params):
    steps: list[Step] = Field(min_length=1)
    threshold: float
    course_threshold: float | None = None
    """The handout's bar, used on the course's own test set (``threshold`` then applies to a stand-in)."""
    batch_mean: int | None = Field(None, ge=1)
    metric: str | None = None
    """Default: ``<check id>.accuracy``."""
    report: Literal["accuracy", "error"] = "accuracy"


class ClassifierParams(Params):
    steps: list[Step] = Field(min_length=1)
    owner: str
    input_shape: list[int] = Field(min_length=2, max_length=2)
    """(batch, features) of the random input."""
    classes: int = Field(ge=1)
    input_max: float = 1.0


class TorchParamShapesParams(Params):
    class_: str = Field(alias="class")
    kwargs: dict[str, Any] = {}


PARAMS: dict[str, type[Params]] = {
    "layer.interface": LayerInterfaceParams,
    "layer.forward": LayerCallsParams,
    "layer.backward": LayerCallsParams,
    "layer.gradcheck": LayerGradcheckParams,
    "layer.params": LayerParamsParams,
    "network": NetworkParams,
    "torch.build": TorchBuildParams,
    "torch.checkpoint": TorchCheckpointParams,
    "torch.classify": TorchClassifyParams,
    "torch.accuracy": TorchAccuracyParams,
    "function": FunctionParams,
    "init.xavier": XavierParams,
    "batches.partition": BatchPartitionParams,
    "predictions": PredictionsParams,
    "classifier.nll": ClassifierParams,
    "classifier.logsoftmax": ClassifierParams,
    "torch.param_shapes": TorchParamShapesParams,
}
"""The params model of every kind in grader.judge.kinds.KINDS (a test holds the two to the same keys)."""


P = TypeVar("P", bound=Params)


class ParamsError(ValueError):
    """A check's kind is unknown or its params do not validate; the message names what and where."""


def parse_params(kind: str, raw: dict[str, Any], *, layers: set[str] | None = None) -> Params:
    """The kind's typed params from a check's raw mapping; `layers` (the spec's layer names) checks references."""
    model = PARAMS.get(kind)
    if model is None:
        raise ParamsError(f"unknown kind {kind!r} (known: {', '.join(sorted(PARAMS))})")
    try:
        return model.model_validate(raw, context={"layers": layers})
    except ValidationError as exc:
        raise ParamsError("; ".join(_problem(e) for e in exc.errors())) from None


def _problem(error: Any) -> str:
    """One pydantic error as "params.KEY[0].KEY: what" (the key path as the TOML spells it)."""
    where = "params" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if error["type"] == "missing":
        return f"{where}: missing"
    if error["type"] == "value_error":  # ours: the message says what is wrong with the value
        return f"{where}: {error['msg'].removeprefix('Value error, ')}"
    return f"{where}: {error['msg']} (got {error['input']!r:.80})"


def params_as(params: Params, model: type[P]) -> P:
    """A check's params as its kind's model (what the spec validated them with)."""
    if not isinstance(params, model):
        raise TypeError(f"params {type(params).__name__} where {model.__name__} is needed")
    return params
