"""A small declarative step language for specs: calls into student modules with judge-chosen inputs.

A check's ``steps`` (TOML) become harness ops. Step kinds::

    { call = "softmax", args = [...], kwargs = {...}, as = "out", label = "..." }   module-level function
    { new = "Digits", args = [...], as = "ds" }                                      construct a class
    { method = "forward", on = "L", args = [...] }                                   call a method of a kept object
    { item = ["params", "cache_layer1"] }                                            obj[key][key2]...
    { attr = "W", on = "L" }                                                         obj.W
    { set = "W", on = "L", value = <arg> }                                           obj.W = value
    { np_load = "weights.npz", list = true, as = "w" }                               np.load(allow_pickle=False)
    { torch_load = "model.pt", into = "net" }                                        weights_only + strict load
    { torch_load = "m.pt", whole_model_of = "nb", into = "net" }    also a whole pickled model (torch.save(model))
                                                                     whose __main__ is module nb: its state_dict
    { assign = "state", into = "net" }                                               obj.a.0.W = state["a.0.W"], ...
    { eval = "net" }                                                                 net.eval()

Arguments: literals; lists of arguments; ``{ normal = [shape], scale, shift }``, ``{ uniform = [shape], low, high }``,
``{ randint = [shape], high }``, ``{ onehot = [n, k] }``, ``{ array = [[...]] }`` (all numpy, ``dtype`` optional);
``{ ref = "name" }``; ``{ len = "name", add = k }`` and ``{ dim = ["name", index, axis] }`` (sizes of a kept
object, e.g. the weights a student saved); ``{ fn = "name" }`` (a function of the student's module); ``{ dict = {...}, as = "name" }``
and ``{ list = [...], as = "name" }`` (kept, so later steps can read what the student's code did to them);
``{ tensor = <arg>, dtype = "int64" }``; ``{ data = "hidden set", scale, flatten, torch, dither }`` (hidden
images, shuffled afresh and dithered with the installation's key; only for kinds that hold the labels). Steps
that read a value (call, method, item, attr) are compared with the reference unless ``check = false`` (only
their shapes with ``shape = true``).

``twin = "label"`` on a reading step: its value is what the labelled step should give by the handout's recipe
applied to the student's own other parts (e.g. backprop's gradients from the student's own layers driven by hand);
a labelled value that differs from the reference but equals its twin is the other parts' doing (their checks cost
it), one that differs from both is the step's own fault.

``given = ["params", "cache_layer1"]`` on a call step that only prepares later steps (``check = false``): what it
leaves in ``params["cache_layer1"]`` is read back (after all steps, which must leave it alone); where later values
differ from the reference, they are judged against the reference given that very state instead of its own
(another check judges the preparing call).

``unchanged = { X = 0, probs = "probs" }`` on a call, method or new step: the arguments at these positions (or
keywords), judge-made arrays or tensors, are read back after the call and must still hold what they were given:
where the handout's own code uses an array again after passing it, a function that changes it in place breaks
the handout's code although its result is right. ``unchanged_why`` says where the handout reuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec
from grader.harness.op_messages import (
    AssignStateOp,
    CallOp,
    EvalOp,
    GetattrOp,
    GetitemOp,
    GetOp,
    ImportOp,
    LoadStateDictOp,
    NewOp,
    NpLoadOp,
    OpRequest,
    Ref,
    SetattrOp,
    TensorOp,
    TorchLoadOp,
    ValueOp,
)
from grader.judge.compare import fmt_shape
from grader.judge.context import Inputs

READS = ("call", "method", "item", "attr")


@dataclass(slots=True)
class HiddenPart:
    """A hidden set shown to the sandbox by a ``{ data = ... }`` argument; its labels stay here."""

    name: str
    labels: np.ndarray
    classes: int
    names: tuple[str, ...] = ()
    """The classes' names, in label order."""
    images: np.ndarray | None = None
    """The images as shown (order and dither of this run), for a follow-up round (grader.judge.diagnose)."""
    scale: float = 255.0
    stand_in: bool = False
    """Whether the set is a stand-in for the course's own test set (a check may then have a calibrated bar)."""
    order: np.ndarray | None = None
    """The stored index of each image shown (None when a data source made the images)."""


DataSource = Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray, tuple[str, ...], float]]
"""A ``{ data = ... }`` argument -> (images to show, their labels, class names, divisor of the pixel values)."""


@dataclass(slots=True)
class Script:
    """Ops being built for one check, the labels of the ops whose values are compared, the hidden parts."""

    assignment: AssignmentSpec
    module: str
    inputs: Inputs
    rng: np.random.Generator
    ops: list[OpRequest] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    hidden: list[HiddenPart] = field(default_factory=list)
    data_source: DataSource | None = None
    """Where ``{ data = ... }`` arguments take their images from; None: the hidden set, shuffled and dithered."""
    shape_only: set[str] = field(default_factory=set)
    """Labels whose values are random by design (e.g. fresh weights): only their shapes are compared."""
    given: list[dict[str, Any]] = field(default_factory=list)
    """Preparing calls whose resulting state later steps are judged on (see the ``given`` step option)."""
    twins: dict[str, int] = field(default_factory=dict)
    """Label -> op of its twin (see the ``twin`` step option)."""
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    """Read-backs of arguments a call must leave as they were: op index, original array, name, call, why."""
    _n: int = 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"_{stem}{self._n}"

    def add(self, op: OpRequest, label: str | None = None) -> int:
        self.ops.append(op)
        if label is not None:
            while label in self.checked:
                label += " (again)"
            self.checked[label] = len(self.ops) - 1
        return len(self.ops) - 1

    def module_file(self, module: str | None = None) -> str:
        m = module or self.module
        return f"{m}.ipynb" if f"{m}.ipynb" in self.assignment.files else f"{m}.py"

    def import_module(self, module: str | None = None) -> None:
        m = module or self.module
        if not any(isinstance(o, ImportOp) and o.module == m for o in self.ops):
            self.add(ImportOp(module=m, what=f"importing {self.module_file(m)}"))

    # -- arguments ------------------------------------------------------------------------------
    def arg(self, spec: Any) -> tuple[Any, str]:
        """The op value of an argument spec, and a few words describing it."""
        if isinstance(spec, list):
            parts = [self.arg(s) for s in spec]
            return [p[0] for p in parts], "[" + ", ".join(p[1] for p in parts) + "]"
        if not isinstance(spec, dict):
            return spec, repr(spec)
        dtype = spec.get("dtype")
        if "normal" in spec:
            a = np.asarray(self.rng.normal(float(spec.get("shift", 0.0)), float(spec.get("scale", 1.0)),
                                           size=spec["normal"]))
            return self._array(a, dtype), f"an array of shape {fmt_shape(a.shape)}"
        if "uniform" in spec:
            a = np.asarray(self.rng.uniform(float(spec.get("low", 0.0)), float(spec.get("high", 1.0)),
                                            size=spec["uniform"]))
            return self._array(a, dtype), f"an array of shape {fmt_shape(a.shape)}"
        if "randint" in spec:
            a = np.asarray(self.rng.integers(int(spec.get("low", 0)), int(spec["high"]), size=spec["randint"]))
            return self._array(a, dtype or "int64"), f"integers of shape {fmt_shape(a.shape)}"
        if "onehot" in spec:
            n, k = spec["onehot"]
            a = np.eye(k)[self.rng.integers(0, k, size=n)]
            return self._array(a, dtype), f"one-hot labels of shape ({n}, {k})"
        if "array" in spec:
            a = np.asarray(spec["array"], dtype=dtype or np.float64)
            return self.inputs.add(a), f"an array of shape {fmt_shape(a.shape)}"
        if "ref" in spec:
            return Ref(spec["ref"]), spec["ref"]
        if "len" in spec:
            add = int(spec.get("add", 0))
            return {"$len": spec["len"], "add": add}, f"len({spec['len']}){add:+d}" if add else f"len({spec['len']})"
        if "dim" in spec:
            name, index, axis = spec["dim"]
            add = int(spec.get("add", 0))
            return ({"$dim": [name, int(index), int(axis)], "add": add},
                    f"{name}[{index}].shape[{axis}]" + (f"{add:+d}" if add else ""))
        if "fn" in spec:
            name = self.fresh("fn")
            module = spec.get("module", self.module)
            self.add(GetOp(module=module, name=spec["fn"], as_=name, report=False,
                           what=f"looking up {spec['fn']} in {self.module_file(module)}"))
            return Ref(name), spec["fn"]
        if "dict" in spec:
            name = spec.get("as") or self.fresh("dict")
            value = {k: self.arg(v)[0] for k, v in spec["dict"].items()}
            self.add(ValueOp(value=value, as_=name, report=False, what=f"preparing {name}"))
            return Ref(name), name
        if "list" in spec:
            name = spec.get("as") or self.fresh("list")
            items = [self.arg(v)[0] for v in spec["list"]]
            self.add(ValueOp(value=items, as_=name, report=False, what=f"preparing {name}"))
            return Ref(name), name
        if "tensor" in spec:
            name = spec.get("as") or self.fresh("t")
            value, desc = self.arg(spec["tensor"])
            self.add(TensorOp(value=value, dtype=dtype or "float32", as_=name, report=False,
                              what="preparing a tensor"))
            return Ref(name), desc.replace("an array", "a tensor").replace("integers", "an integer tensor")
        if "data" in spec:
            return self._data(spec)
        raise ValueError(f"unknown argument spec {spec!r}")

    def _array(self, a: np.ndarray, dtype: str | None) -> dict[str, str]:
        return self.inputs.add(a.astype(dtype) if dtype else a)

    def _data(self, spec: dict[str, Any]) -> tuple[Any, str]:
        from grader.data import load_hidden

        scale = float(spec.get("scale", 255.0))
        stand_in, order = False, None
        if self.data_source is not None:
            images, labels, names, scale = self.data_source(spec)
        else:
            hidden = load_hidden(self.inputs.settings, spec["data"], **spec.get("load", {}))
            images, labels, order = hidden.shown(dither=spec.get("dither"), scale=scale)
            names, stand_in = hidden.classes, hidden.stand_in
        name = f"d{len(self.inputs.datasets)}"
        self.inputs.add_dataset(name, images)
        self.hidden.append(HiddenPart(name=spec.get("label", spec["data"]), labels=labels, classes=len(names),
                                      names=tuple(names), images=images, scale=scale, stand_in=stand_in,
                                      order=order))
        value = {"$data": name, "scale": scale, "flatten": bool(spec.get("flatten")),
                 "torch": bool(spec.get("torch")), "float64": bool(spec.get("float64"))}
        return value, f"the hidden {spec.get('label', spec['data'])} images"

    # -- steps ----------------------------------------------------------------------------------
    def step(self, s: dict[str, Any]) -> None:
        before = set(self.checked)
        if "twin" in s:
            n = len(self.ops)
            self._step({**s, "check": False})
            if len(self.ops) == n or s["twin"] in self.twins:
                raise ValueError(f"twin step {s!r} reads nothing, or its label has a twin already")
            self.ops[-1] = replace(self.ops[-1], report=None)  # reported, but not compared with the reference
            self.twins[s["twin"]] = len(self.ops) - 1
            return
        self._step(s)
        if s.get("shape"):
            self.shape_only |= set(self.checked) - before

    def _kept_args(self, s: dict[str, Any]) -> tuple[list[tuple[Any, str]], dict[str, tuple[Any, str]],
                                                      list[tuple[str, np.ndarray, str]]]:
        """A step's arguments; those named in ``unchanged`` passed as kept objects, to be read back after the call."""
        args = [self.arg(a) for a in s.get("args", [])]
        kwargs = {k: self.arg(v) for k, v in s.get("kwargs", {}).items()}
        kept: list[tuple[str, np.ndarray, str]] = []
        for name, where in s.get("unchanged", {}).items():
            holder: Any = args if isinstance(where, int) else kwargs
            value, desc = holder[where]
            if isinstance(value, dict) and "$in" in value:  # a numpy array: keep the harness's fresh copy
                ref = self.fresh("kept")
                self.add(ValueOp(value=value, as_=ref, report=False, what=f"preparing {name}"))
                original = self.inputs.arrays[value["$in"]]
                holder[where] = (Ref(ref), desc)
            elif isinstance(value, dict) and "$ref" in value:  # a tensor made by a "tensor" op
                ref = value["$ref"]
                made = next(o for o in self.ops if o.as_ == ref and isinstance(o, TensorOp))
                original = np.asarray(self.inputs.arrays[made.value["$in"]], dtype=getattr(np, made.dtype or ""))
            else:
                raise ValueError(f"unchanged argument {name!r} of {s!r} is not an array or tensor the grader makes")
            kept.append((ref, original, name))
        return args, kwargs, kept

    def _read_back(self, kept: list[tuple[str, np.ndarray, str]], what: str, who: str, why: str) -> None:
        for ref, original, name in kept:
            i = self.add(ValueOp(value=Ref(ref), what=f"reading {name} after {what}"))
            self.unchanged.append({"op": i, "array": original, "name": f"its argument {name}", "who": who,
                                   "why": why})

    def _step(self, s: dict[str, Any]) -> None:
        check = s.get("check", True)
        as_: str | None = s.get("as")
        report = None if check else False
        why = s.get("unchanged_why", "the handout uses them again after the call")
        if "call" in s:
            module = s.get("module", self.module)
            self.import_module(module)
            args, kwargs, kept = self._kept_args(s)
            what = s.get("label") or f"{s['call']}({self._argtext(args, kwargs)})"
            call = self.add(CallOp(module=module, name=s["call"], args=[a[0] for a in args],
                                   kwargs={k: v[0] for k, v in kwargs.items()}, what=what, as_=as_, report=report),
                            what if check else None)
            self._read_back(kept, what, s["call"], why)
            if "given" in s:
                container, key = s["given"]
                self.given.append({"call": call, "container": container, "key": key, "what": what})
        elif "new" in s:
            module = s.get("module", self.module)
            self.import_module(module)
            args, kwargs, kept = self._kept_args(s)
            what = s.get("label") or f"{s['new']}({self._argtext(args, kwargs)})"
            self.add(NewOp(module=module, name=s["new"], args=[a[0] for a in args],
                           kwargs={k: v[0] for k, v in kwargs.items()}, what=what, report=False, as_=as_))
            self._read_back(kept, what, s["new"], why)
        elif "method" in s:
            args, kwargs, kept = self._kept_args(s)
            what = s.get("label") or f"{s.get('owner', s['on'])}.{s['method']}({self._argtext(args, kwargs)})"
            self.add(CallOp(ref=s["on"], method=s["method"], args=[a[0] for a in args],
                            kwargs={k: v[0] for k, v in kwargs.items()}, what=what, as_=as_, report=report),
                     what if check else None)
            self._read_back(kept, what, f"{s.get('owner', s['on'])}.{s['method']}", why)
        elif "item" in s:
            ref, *keys = s["item"]
            what = s.get("label") or ref + "".join(f"[{k!r}]" for k in keys)
            for j, key in enumerate(keys):
                last = j == len(keys) - 1
                name = s.get("as", self.fresh("item")) if last else self.fresh("item")
                self.add(GetitemOp(ref=ref, key=key, as_=name, what=f"reading {what}",
                                   report=None if last and check else False), what if last and check else None)
                ref = name
        elif "attr" in s:
            what = s.get("label") or f"{s.get('owner', s['on'])}.{s['attr']}"
            self.add(GetattrOp(ref=s["on"], attr=s["attr"], what=f"reading {what}", as_=as_, report=report),
                     what if check else None)
        elif "set" in s:
            value, _ = self.arg(s["value"])
            self.add(SetattrOp(ref=s["on"], attr=s["set"], value=value, report=False,
                               what=f"setting {s.get('owner', s['on'])}.{s['set']}"))
        elif "np_load" in s:
            self.add(NpLoadOp(file=s["np_load"], as_list=bool(s.get("list")), report=False, as_=as_,
                              what=f"np.load('{s['np_load']}', allow_pickle=False)"))
        elif "torch_load" in s:
            state = self.fresh("state")
            whole: str | None = s.get("whole_model_of")
            self.add(TorchLoadOp(file=s["torch_load"], as_state=state, report=False, whole_model_of=whole,
                                 what=f"torch.load('{s['torch_load']}'"
                                 + (")" if "whole_model_of" in s else ", weights_only=True)")))
            if "into" in s:
                owner = s.get("owner", s["into"])
                self.add(LoadStateDictOp(ref=s["into"], state=state,
                                         what=f"{owner}.load_state_dict(<{s['torch_load']}>, strict=True)"))
            if "as" in s:
                self.add(ValueOp(value=Ref(state), as_=s["as"], report=False, what=f"reading {s['torch_load']}"))
        elif "assign" in s:
            what = s.get("label") or f"putting the saved tensors into {s.get('owner', s['into'])}"
            self.add(AssignStateOp(ref=s["into"], state=s["assign"], report=False, what=what))
        elif "eval" in s:
            self.add(EvalOp(ref=s["eval"], what=f"{s.get('owner', s['eval'])}.eval()"))
        else:
            raise ValueError(f"unknown step {s!r}")

    def read_given(self) -> None:
        """Read back the state the ``given`` preparing calls left, after every other step (so that a student whose
        preparing call keeps it elsewhere fails only where that is judged, not before the later steps run)."""
        for g in self.given:
            g["read"] = self.add(GetitemOp(ref=g["container"], key=g["key"],
                                           what=f"reading {g['container']}[{g['key']!r}] after {g['what']}"))

    @staticmethod
    def _argtext(args: list[tuple[Any, str]], kwargs: dict[str, tuple[Any, str]]) -> str:
        return ", ".join([a[1] for a in args] + [f"{k}={v[1]}" for k, v in kwargs.items()])
