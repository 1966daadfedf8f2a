"""Check kinds for hand-written layers with forward/backward/params/grads (the seed's numpy_nn protocol).

A layer is described once per assignment (``[layers.NAME]`` in the spec): constructor sizes, parameter
shapes, the attributes backward fills with per-sample gradients, input and output shapes. Every kind
plans an op script with judge-chosen inputs; the same script runs on the reference, and the judge
compares the two (or the seed's literal values, or finite differences of the student's own forward).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import (
    CallOp,
    GetattrOp,
    GetitemOp,
    ImportOp,
    IsubOp,
    NewOp,
    OpRequest,
    SetattrOp,
    ValueOp,
)
from grader.judge.compare import compare_array, decimal_tol, fmt_num, fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.params import (
    ArrayValue,
    LayerCallsParams,
    LayerGradcheckParams,
    LayerInterfaceParams,
    LayerParamsParams,
    Linspace,
    params_as,
)

RTOL, ATOL = 1e-4, 1e-6


@dataclass(frozen=True, slots=True)
class InputDesc:
    name: str
    shape: str


@dataclass(frozen=True, slots=True)
class LayerDesc:
    name: str
    module: str
    ctor: tuple[str, ...]
    params: dict[str, str]
    grad_attrs: dict[str, str]
    inputs: tuple[InputDesc, ...]
    output: str
    upstream: bool
    sizes: tuple[dict[str, Any], ...]
    away_from: float | None

    @classmethod
    def from_spec(cls, assignment: AssignmentSpec, name: str) -> LayerDesc:
        raw = assignment.layers[name]
        return cls(
            name=name, module=raw["module"], ctor=tuple(raw.get("ctor", ())),
            params=dict(raw.get("params", {})), grad_attrs=dict(raw.get("grad_attrs", {})),
            inputs=tuple(InputDesc(i["name"], i["shape"]) for i in raw["inputs"]),
            output=raw.get("output", raw["inputs"][0]["shape"]), upstream=bool(raw.get("upstream", True)),
            sizes=tuple(raw["sizes"]), away_from=raw.get("away_from"),
        )

    def ctor_args(self, sizes: dict[str, Any]) -> list[int]:
        return [int(sizes[n]) for n in self.ctor]


def shape_of(expr: str, sizes: dict[str, Any]) -> tuple[int, ...]:
    """Evaluate a shape expression like "(batch, input_dim)" (or a size name holding a whole shape)."""
    expr = expr.strip()
    if not expr.startswith("("):
        return tuple(int(s) for s in sizes[expr])
    parts = [p.strip() for p in expr.strip("()").split(",") if p.strip()]
    return tuple(int(p) if re.fullmatch(r"\d+", p) else int(sizes[p]) for p in parts)


def shape_doc(expr: str) -> str:
    return expr if expr.startswith("(") else ""


def per_sample_doc(param_expr: str) -> str:
    return "(batch, " + param_expr.strip().removeprefix("(") if param_expr.startswith("(") else ""


class LayerScript:
    """Builds the op list of one check; remembers which op index holds which labelled output."""

    def __init__(self, layer: LayerDesc, inputs: Inputs) -> None:
        self.layer = layer
        self.inputs = inputs
        self.ops: list[OpRequest] = []
        self.labels: dict[str, int] = {}

    def add(self, op: OpRequest, *, label: str | None = None) -> int:
        self.ops.append(op)
        if label is not None:
            self.labels[label] = len(self.ops) - 1
        return len(self.ops) - 1

    def start(self, ref: str, sizes: dict[str, Any]) -> None:
        if not any(isinstance(o, ImportOp) for o in self.ops):
            self.add(ImportOp(module=self.layer.module, what=f"importing {self.layer.module}.py"))
        self.add(NewOp(module=self.layer.module, name=self.layer.name,
                       args=self.layer.ctor_args(sizes), as_=ref,
                       what=f"{self.layer.name}({', '.join(map(str, self.layer.ctor_args(sizes)))})"))

    def set_params(self, ref: str, values: dict[str, np.ndarray]) -> None:
        for pname, arr in values.items():
            self.add(SetattrOp(ref=ref, attr=pname, value=self.inputs.add(arr),
                               what=f"setting {self.layer.name}.{pname}"))

    def forward(self, ref: str, args: list[np.ndarray], label: str | None = None) -> int:
        return self.add(CallOp(ref=ref, method="forward",
                               args=[self.inputs.add(a) for a in args], what=f"{self.layer.name}.forward"),
                        label=label)

    def backward(self, ref: str, upstream: np.ndarray | None, label: str | None = None) -> int:
        args = [self.inputs.add(upstream)] if upstream is not None else []
        return self.add(CallOp(ref=ref, method="backward", args=args,
                               what=f"{self.layer.name}.backward"), label=label)

    def getattr(self, ref: str, attr: str, label: str | None) -> int:
        return self.add(GetattrOp(ref=ref, attr=attr,
                                  what=f"reading {self.layer.name}.{attr}"), label=label)

    def plan(self, facts: object, *, use_reference: bool = True) -> Plan:
        return Plan(ops=self.ops, facts=facts, use_reference=use_reference)


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """What the layer kinds keep for judging: the layer's name and which op holds which labelled output."""

    layer: str
    ops: dict[str, int]


@dataclass(frozen=True, slots=True)
class InterfaceFacts(LayerFacts):
    sizes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallsFacts(LayerFacts):
    judged: list[dict[str, Any]]
    """In op order: {"op", "case", "kind": "value" or "probe", ...} (see LayerCalls.plan)."""
    decimal: int


@dataclass(frozen=True, slots=True)
class GradcheckFacts(LayerFacts):
    probes: list[dict[str, Any]]
    upstream: np.ndarray | None
    input_shape: list[int]
    output_shape: list[int]


def random_inputs(layer: LayerDesc, sizes: dict[str, Any], rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for inp in layer.inputs:
        a = rng.normal(0.0, 1.0, size=shape_of(inp.shape, sizes))
        if layer.away_from is not None:  # keep clear of kinks (ReLU at 0) for finite differences
            a = np.where(np.abs(a) < layer.away_from, np.sign(a + 1e-12) * layer.away_from * 2, a)
        arrays.append(a)
    return arrays


def random_params(layer: LayerDesc, sizes: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {p: rng.normal(0.0, 0.8, size=shape_of(expr, sizes)) for p, expr in layer.params.items()}


def failure_text(run: GroupRun, plan: Plan) -> str | None:
    """The student-facing sentence for an op that raised, crashed or hung; None when all ran."""
    err = run.error
    if err is None:
        if len(run.results) < len(plan.ops):
            return "was not run to the end"
        return None
    op = plan.ops[len(run.results) - 1]
    what = op.what if op.what is not None else op.KIND.value
    if err.sandbox:
        return f"{what} {err.message}"
    where = f" ({err.where})" if err.where else ""
    if isinstance(op, ImportOp):
        return f"{what} failed: {err.type}: {err.message}{where}"
    if err.harness:
        return f"{what}: {err.message}"
    msg = f"{what} raised {err.type}: {err.message}{where}"
    if any(w in err.message.lower() for w in ("cuda", "nvidia", "gpu")):
        msg += ". The grader has no GPU: keep everything on the CPU"
    return msg


def compare_labels(run: GroupRun, ref: GroupRun | None, ops: dict[str, int], docs: dict[str, str],
                   expected: dict[str, np.ndarray] | None = None, tol: dict[str, float] | None = None) -> str | None:
    """Compare every labelled output (label -> op index) with the reference's (or literal expectations)."""
    tol = tol or {"rtol": RTOL, "atol": ATOL}
    for label, i in ops.items():
        want = expected[label] if expected is not None else (ref.value(i) if ref else None)
        if want is None:
            continue
        msg = compare_array(run.value(i), np.asarray(want), what=label, shape_doc=docs.get(label, ""), **tol)
        if msg:
            return msg
    return None


# ----------------------------------------------------------------------------------------------------
class LayerInterface:
    """Constructor shapes of the parameters; params() and grads() keys."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        name = params_as(check.params, LayerInterfaceParams).layer
        layer = LayerDesc.from_spec(assignment, name)
        sizes = layer.sizes[0]
        s = LayerScript(layer, inputs)
        s.start("L", sizes)
        for p in layer.params:
            s.getattr("L", p, label=f"{layer.name}.{p}")
        s.add(CallOp(ref="L", method="params", what=f"{layer.name}.params()"), label="params()")
        x = random_inputs(layer, sizes, rng)
        s.forward("L", x)
        up = rng.normal(size=shape_of(layer.output, {**sizes, "shape": x[0].shape})) if layer.upstream else None
        s.backward("L", up)
        s.add(CallOp(ref="L", method="grads", what=f"{layer.name}.grads()"), label="grads()")
        return s.plan(InterfaceFacts(layer=name, ops=s.labels, sizes=sizes), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        facts = plan.facts_as(InterfaceFacts)
        layer = LayerDesc.from_spec(assignment, facts.layer)
        sizes, ops = facts.sizes, facts.ops
        ctor = f"{layer.name}({', '.join(map(str, layer.ctor_args(sizes)))})"
        for p, expr in layer.params.items():  # wrong parameter shapes explain later crashes: report them first
            i = ops[f"{layer.name}.{p}"]
            if i >= len(run.results) or run.results[i].error:
                break
            got = run.value(i)
            want = shape_of(expr, sizes)
            shape = getattr(got, "shape", None)
            if shape != want:
                desc = f"shape {fmt_shape(shape)}" if shape is not None else kind_of(got)
                return Verdict.fail(f"{ctor}.{p} has {desc}; expected {fmt_shape(want)} = {expr}")
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        for method in ("params()", "grads()"):
            got = run.value(ops[method])
            keys = sorted(got["$dict"]) if isinstance(got, dict) and "$dict" in got else None
            if keys is None:
                return Verdict.fail(f"{layer.name}.{method} returned {kind_of(got)}; expected a dict")
            if keys != sorted(layer.params):
                names = "{" + ", ".join(f"'{k}'" for k in sorted(layer.params)) + "}" if layer.params else "{}"
                return Verdict.fail(f"{layer.name}.{method} returned keys {keys}; expected {names}")
        return Verdict.ok()


def case_array(value: ArrayValue) -> np.ndarray:
    """An array of a notebook case: a literal, or ``{ linspace = [start, stop, num], shape = [...], scale = k }``
    (the seed's ``np.linspace(...).reshape(...)`` plot inputs; ``scale`` as in its ``y_gt = 0 * y``)."""
    if isinstance(value, Linspace):
        start, stop, num = value.linspace
        a = np.linspace(start, stop, int(num))
        if value.shape is not None:
            a = a.reshape(value.shape)
        return a * value.scale
    return np.asarray(value, dtype=np.float64)


def changed_text(who: str, name: str, before: np.ndarray, after: Any,
                 why: str = "the notebook passes the same arrays again") -> str | None:
    """None when `after` (read back from the caller's side) still holds `before`; else the sentence saying so."""
    if isinstance(after, dict) and isinstance(after.get("$tensor"), np.ndarray):
        after = after["$tensor"]
    if isinstance(after, np.ndarray) and after.shape == before.shape and np.array_equal(after, before, equal_nan=True):
        return None
    where = ""
    if isinstance(after, np.ndarray) and after.shape == before.shape:
        diff = np.argwhere(~((after == before) | (np.isnan(after) & np.isnan(before))))
        idx = tuple(int(i) for i in diff[0])
        where = (f": at {list(idx)} it held {fmt_num(float(before[idx]))} before the call and "
                 f"{fmt_num(float(after[idx]))} after it")
    elif isinstance(after, np.ndarray):
        where = f": its shape went from {fmt_shape(before.shape)} to {fmt_shape(after.shape)}"
    return (f"{who} changed {name} in place{where}. Do not modify the arrays you are given (the caller keeps using "
            f"them: {why}); compute the result in a new array")


class LayerCalls:
    """The seed's own test cells run in the seed's order on the same objects, then random cases compared with the
    reference; every array handed to forward/backward is read back afterwards, since the caller keeps it.

    A notebook case (``[[checks.params.cases]]``) is the seed's sequence of cells for one layer: ``arrays`` are
    the notebook's named arrays (each passed as the same object wherever a cell names it), ``cells`` the calls in
    order, each ``{ forward = [args], expect = ... }`` or ``{ backward = [args], expect = ..., attrs = {...} }``
    (args: names of ``arrays`` or inline arrays, see `case_array`); a forward cell without ``expect`` whose
    arguments are those of an earlier cell with one is held to the same values (the seed asserts them once).
    The forward check judges the forward cells and what forward did to its inputs, the backward check the backward
    cells and what backward did to its upstream gradient and to the inputs of the forward before it. A backward
    result that follows a forward which changed its own input is not held against backward: that fault is
    the forward check's.
    """

    method = "forward"

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, LayerCallsParams)
        layer = LayerDesc.from_spec(assignment, p.layer)
        s = LayerScript(layer, inputs)
        judged: list[dict[str, Any]] = []  # in op order: {"op", "case", "kind": "value" or "probe", ...}

        def value(i: int, case: str, label: str, want: np.ndarray | None, doc: str, literal: bool) -> None:
            judged.append({"op": i, "case": case, "kind": "value", "label": label, "want": want, "doc": doc,
                           "literal": literal})

        def keep(name: str, array: np.ndarray) -> dict[str, str]:
            s.add(ValueOp(value=inputs.add(array), as_=name, report=False,
                          what=f"preparing {name}"))
            return {"$ref": name}

        def read_back(case: str, kept: dict[str, tuple[np.ndarray, str]], call: str, culprit: str) -> None:
            for ref_name, (array, shown) in kept.items():
                i = s.add(ValueOp(value={"$ref": ref_name}, what=f"reading {shown} after {call}"))
                judged.append({"op": i, "case": case, "kind": "probe", "ref": ref_name, "array": array,
                               "name": shown, "who": call, "culprit": culprit})

        for n, case in enumerate(p.cases):
            cid, obj = f"notebook {n + 1}", f"S{n}"
            sizes = dict(case.sizes if case.sizes is not None else layer.sizes[0])
            s.start(obj, sizes)
            s.set_params(obj, {k: case_array(v) for k, v in case.set.items()})
            named = {k: case_array(v) for k, v in case.arrays.items()}
            kept: dict[str, tuple[np.ndarray, str]] = {}  # every array handed out so far, read back after each cell
            expected: dict[tuple[str, ...], np.ndarray] = {}
            for c, cell in enumerate(case.cells):
                method = cell.method
                refs, keys = [], []
                for j, arg in enumerate(cell.args):
                    if isinstance(arg, str):  # a named notebook array: the same object in every cell
                        ref_name = f"{obj}_{arg}"
                        if ref_name not in kept:
                            kept[ref_name] = (named[arg], f"the notebook's {arg}")
                            refs.append(keep(ref_name, named[arg]))
                        else:
                            refs.append({"$ref": ref_name})
                        keys.append(arg)
                    else:
                        ref_name = f"{obj}_c{c}_{j}"
                        a = case_array(arg)
                        kept[ref_name] = (a, f"its input {layer.inputs[j].name} (the notebook's plot data)"
                                          if method == "forward" else "its upstream gradient dL_wrt_output")
                        refs.append(keep(ref_name, a))
                        keys.append(f"#{c}.{j}")
                call = f"{layer.name}.{method}"
                i = s.add(CallOp(ref=obj, method=method, args=refs,
                                 what=f"{call} in the notebook's cell sequence (call {c + 1})"))
                label = f"{call} on the notebook's test input {n + 1}" + (f" (call {c + 1})" if c else "")
                if method == "forward":
                    want = case_array(cell.expect) if cell.expect is not None else expected.get(tuple(keys))
                    if want is not None:
                        expected[tuple(keys)] = want
                    if self.method == "forward":
                        value(i, cid, label, want, shape_doc(layer.output), True)
                else:
                    if self.method == "backward":
                        if cell.expect is not None:
                            value(i, cid, label, case_array(cell.expect),
                                  shape_doc(layer.inputs[0].shape), True)
                        for attr, literal in cell.attrs.items():
                            pname = next((p for p, a in layer.grad_attrs.items() if a == attr), "")
                            j = s.getattr(obj, attr, label=None)
                            value(j, cid, f"{layer.name}.{attr} on the notebook's test input {n + 1}",
                                  case_array(literal), per_sample_doc(layer.params.get(pname, "")),
                                  True)
                read_back(cid, kept, call, method)
        for n, sizes in enumerate(layer.sizes):
            cid, obj = f"random {n + 1}", f"R{n}"
            s.start(obj, sizes)
            s.set_params(obj, random_params(layer, sizes, rng))
            x = random_inputs(layer, sizes, rng)
            sizes_x = {**sizes, "shape": x[0].shape}
            kept = {f"{obj}_x{j}": (a, f"its input {layer.inputs[j].name}") for j, a in enumerate(x)}
            refs = [keep(k, a) for k, (a, _) in kept.items()]
            i = s.add(CallOp(ref=obj, method="forward", args=refs, what=f"{layer.name}.forward"))
            if self.method == "forward":
                value(i, cid, f"{layer.name}.forward output for input shape {fmt_shape(x[0].shape)}", None,
                      shape_doc(layer.output), False)
            read_back(cid, kept, f"{layer.name}.forward", "forward")
            if self.method != "backward":
                continue
            args = []
            if layer.upstream:
                up = rng.normal(size=shape_of(layer.output, sizes_x))
                args = [keep(f"{obj}_up", up)]
            i = s.add(CallOp(ref=obj, method="backward", args=args,
                             what=f"{layer.name}.backward"))
            value(i, cid, f"{layer.name}.backward return value for input shape {fmt_shape(x[0].shape)}", None,
                  shape_doc(layer.inputs[0].shape), False)
            for pname, attr in layer.grad_attrs.items():
                j = s.getattr(obj, attr, label=None)
                value(j, cid, f"{layer.name}.{attr} after backward (input shape {fmt_shape(x[0].shape)})", None,
                      per_sample_doc(layer.params[pname]), False)
            for k, (a, shown) in list(kept.items()):
                kept[k] = (a, shown.replace("its input", "the input") + " of the forward before it")
            if layer.upstream:
                kept[f"{obj}_up"] = (up, "its upstream gradient dL_wrt_output")
            read_back(cid, kept, f"{layer.name}.backward", "backward")
        return s.plan(CallsFacts(layer=layer.name, ops=s.labels, judged=judged, decimal=p.decimal))

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        facts = plan.facts_as(CallsFacts)
        tol_lit = decimal_tol(facts.decimal)
        spoiled: dict[str, str] = {}  # case -> the other method's in-place change its later values follow from
        seen: dict[str, Any] = {}  # ref -> what it held when last read back: a change is the latest call's doing
        for item in facts.judged:
            i = item["op"]
            if i >= len(run.results) or run.results[i].error:
                break
            got = run.value(i)
            if item["kind"] == "probe":
                before = seen.get(item["ref"], item["array"])
                seen[item["ref"]] = got
                if not isinstance(before, np.ndarray):
                    continue
                if (msg := changed_text(item["who"], item["name"], before, got)) is None:
                    continue
                if item["culprit"] == self.method:
                    return Verdict.fail(msg)
                spoiled.setdefault(item["case"], msg)
                continue
            if item["case"] in spoiled:
                continue
            if item["literal"]:
                if item["want"] is None:
                    continue
                msg = compare_array(got, item["want"], what=item["label"], shape_doc=item["doc"], **tol_lit)
            else:
                want = ref.value(i) if ref and i < len(ref.results) else None
                if want is None:
                    return Verdict.err(f"the reference solution produced no {item['label']} (grader bug)")
                msg = compare_array(got, want, what=item["label"], shape_doc=item["doc"], rtol=RTOL, atol=ATOL)
            if msg:
                return Verdict.fail(msg)
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        if spoiled:
            first = next(iter(spoiled.values()))
            return Verdict.ok(f"Not compared where forward had changed its input: {first.split('. ')[0]} (the "
                              "forward check costs that)")
        return Verdict.ok()


class LayerForward(LayerCalls):
    method = "forward"


class LayerBackward(LayerCalls):
    method = "backward"


class LayerGradcheck:
    """Finite differences of the student's own forward against the student's backward."""

    eps = 1e-6
    max_elements = 12

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, LayerGradcheckParams)
        layer = LayerDesc.from_spec(assignment, p.layer)
        sizes = dict(p.sizes if p.sizes is not None else layer.sizes[0])
        s = LayerScript(layer, inputs)
        s.start("L", sizes)
        params = random_params(layer, sizes, rng)
        s.set_params("L", params)
        x = random_inputs(layer, sizes, rng)
        s.forward("L", x, label="y")
        up = rng.normal(size=shape_of(layer.output, {**sizes, "shape": x[0].shape})) if layer.upstream else None
        s.backward("L", up, label="dx")
        for attr in layer.grad_attrs.values():
            s.getattr("L", attr, label=attr)
        probes: list[dict[str, Any]] = []
        for idx in self._pick(x[0].shape, rng):
            plus, minus = x[0].copy(), x[0].copy()
            plus[idx] += self.eps
            minus[idx] -= self.eps
            i_p = s.forward("L", [plus, *x[1:]])
            i_m = s.forward("L", [minus, *x[1:]])
            probes.append({"what": "input", "idx": idx, "plus": i_p, "minus": i_m})
        for pname, value in params.items():
            for idx in self._pick(value.shape, rng):
                for sign in (1, -1):
                    pv = value.copy()
                    pv[idx] += sign * self.eps
                    s.set_params("L", {pname: pv})
                    s.forward("L", x)
                    probes.append({"what": pname, "idx": idx, "sign": sign, "op": len(s.ops) - 1})
                s.set_params("L", {pname: value})
        return s.plan(GradcheckFacts(layer=layer.name, ops=s.labels, probes=probes, upstream=up,
                                     input_shape=list(x[0].shape),
                                     output_shape=list(shape_of(layer.output, {**sizes, "shape": x[0].shape}))),
                      use_reference=False)

    def _pick(self, shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
        all_idx = list(np.ndindex(*shape))
        if len(all_idx) <= self.max_elements:
            return all_idx
        chosen = rng.choice(len(all_idx), size=self.max_elements, replace=False)
        return [all_idx[int(i)] for i in sorted(chosen)]

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        facts = plan.facts_as(GradcheckFacts)
        layer = LayerDesc.from_spec(assignment, facts.layer)
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        ops = facts.ops
        up = facts.upstream
        y, dx = run.value(ops["y"]), run.value(ops["dx"])
        in_shape = fmt_shape(facts.input_shape)
        if msg := (_array_problem(y, facts.output_shape, f"{layer.name}.forward",
                                  f"for an input of shape {in_shape}")
                   or _array_problem(dx, facts.input_shape, f"{layer.name}.backward",
                                     f"for a forward input of shape {in_shape}")):
            return Verdict.fail(msg)
        g = np.ones_like(y) if up is None else up
        attrs = {p: run.value(ops[a]) for p, a in layer.grad_attrs.items()}
        pending: dict[tuple[str, tuple[int, ...]], dict[int, np.ndarray]] = {}
        for probe in facts.probes:
            if probe["what"] == "input":
                yp, ym = run.value(probe["plus"]), run.value(probe["minus"])
                for out in (yp, ym):
                    if msg := _array_problem(out, y.shape, f"{layer.name}.forward", "on a call with the same input shape"):
                        return Verdict.fail(msg)
                num = float(np.sum(g * (yp - ym)) / (2 * self.eps))
                got = float(dx[probe["idx"]])
                if not _close(got, num):
                    return Verdict.fail(
                        f"{layer.name}.backward: the returned gradient differs from the numerical gradient of your "
                        f"forward at {list(probe['idx'])} (got {got:.4g}, expected {num:.4g})")
            else:
                pending.setdefault((probe["what"], probe["idx"]), {})[probe["sign"]] = run.value(probe["op"])
        for (pname, idx), ys in pending.items():
            grad = attrs[pname]
            attr = layer.grad_attrs[pname]
            if (msg := _numeric(grad, f"{layer.name}.{attr}")) is not None:
                return Verdict.fail(msg)
            yp, ym = ys[1], ys[-1]
            for out in (yp, ym):
                if msg := _array_problem(out, y.shape, f"{layer.name}.forward", f"after a change of {pname}"):
                    return Verdict.fail(msg)
            batch = y.shape[0]
            if grad.ndim != len(idx) + 1 or grad.shape[0] != batch:
                return Verdict.fail(f"{layer.name}.{attr} has shape {fmt_shape(grad.shape)}; expected per-sample "
                                    f"gradients of shape {per_sample_doc(layer.params[pname])}")
            for b in range(batch):
                num = float(np.sum(g[b] * (yp[b] - ym[b])) / (2 * self.eps))
                got = float(grad[(b, *idx)])
                if not _close(got, num):
                    return Verdict.fail(
                        f"{layer.name}.{attr} differs from the numerical gradient of your forward at "
                        f"{[b, *idx]} (got {got:.4g}, expected {num:.4g})")
        return Verdict.ok()


def _numeric(v: Any, what: str) -> str | None:
    if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf":
        return f"{what} returned {kind_of(v)}; expected a numpy array"
    return None


def _array_problem(v: Any, shape: tuple[int, ...] | list[int], what: str, context: str) -> str | None:
    """None when `v` is a numeric array of `shape`; otherwise what is wrong, in the student's words."""
    if msg := _numeric(v, what):
        return msg
    if v.shape != tuple(shape):
        return f"{what} returned shape {fmt_shape(v.shape)} {context}; expected {fmt_shape(shape)}"
    return None


def _close(got: float, num: float) -> bool:
    return abs(got - num) <= 1e-4 * max(1.0, abs(num))


def same_value(a: Any, b: Any) -> bool:
    """Whether two raw values are the same data (arrays equal element for element, containers item for item)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype.kind == b.dtype.kind and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


class LayerParams:
    """Plumbing only (the values are the forward and backward checks' subject): params() hands out the very arrays
    forward computes with, so that the seed's in-place update ``param_value -= ...`` (seed 003 line 377) reaches the
    layer; grads() hands out what backward stored in the attributes the notebook reads (``linear_layer.dL_wrt_W``,
    line 117). Both are judged against the student's own layer: forward after the in-place update through
    params() must compute what the same forward computes with the updated values set directly, and grads()[name]
    must be the layer's own gradient attribute, whatever its values."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        layer = LayerDesc.from_spec(assignment, params_as(check.params, LayerParamsParams).layer)
        sizes = layer.sizes[-1]
        s = LayerScript(layer, inputs)
        s.start("L", sizes)
        start = random_params(layer, sizes, rng)
        s.set_params("L", start)
        x = random_inputs(layer, sizes, rng)
        s.forward("L", x)
        s.add(CallOp(ref="L", method="params", as_="P", report=False,
                     what=f"{layer.name}.params()"))
        step = {pname: rng.normal(0, 0.5, size=shape_of(expr, sizes)) for pname, expr in layer.params.items()}
        for pname, delta in step.items():
            s.add(IsubOp(ref="P", key=pname, value=inputs.add(delta),
                         what=f"the in-place update params()['{pname}'] -= ..."))
        s.forward("L", x, label="through params()")
        s.set_params("L", {pname: start[pname] - delta for pname, delta in step.items()})
        s.forward("L", x, label="set directly")
        up = rng.normal(size=shape_of(layer.output, {**sizes, "shape": x[0].shape})) if layer.upstream else None
        s.backward("L", up)
        s.add(CallOp(ref="L", method="grads", as_="G", report=False,
                     what=f"{layer.name}.grads()"))
        for pname in layer.params:
            s.add(GetitemOp(ref="G", key=pname, what=f"{layer.name}.grads()['{pname}']"),
                  label=f"grads {pname}")
        for pname, attr in layer.grad_attrs.items():  # last: a missing attribute is the backward check's fault
            s.getattr("L", attr, label=f"attr {pname}")
        return s.plan(LayerFacts(layer=layer.name, ops=s.labels), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        facts = plan.facts_as(LayerFacts)
        layer = LayerDesc.from_spec(assignment, facts.layer)
        ops = facts.ops
        first_attr = min((i for label, i in ops.items() if label.startswith("attr ")), default=len(plan.ops))
        done = len(run.results) if run.error is None else len(run.results) - 1
        if done < first_attr and (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        via, direct = run.value(ops["through params()"]), run.value(ops["set directly"])
        if not same_value(via, direct) and not (
                isinstance(via, np.ndarray) and isinstance(direct, np.ndarray) and via.shape == direct.shape
                and np.allclose(via, direct, rtol=1e-12, atol=1e-12)):
            return Verdict.fail(
                f"{layer.name}.params() must return the layer's own arrays: after the training loop's in-place "
                f"update params()[name] -= ..., {layer.name}.forward did not compute with the updated values "
                "(return the attributes themselves, e.g. {'W': self.W, 'b': self.b}, not copies)")
        for pname, attr in layer.grad_attrs.items():
            i = ops[f"attr {pname}"]
            if i >= done:  # the attribute is missing (or reading it failed): the backward check says so
                continue
            if not same_value(run.value(ops[f"grads {pname}"]), run.value(i)):
                return Verdict.fail(f"{layer.name}.grads()['{pname}'] is not self.{attr}: grads() must return the "
                                    f"gradients backward stored, e.g. {{'{pname}': self.{attr}, ...}}")
        return Verdict.ok()
