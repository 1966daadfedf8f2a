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
from grader.judge.compare import compare_array, decimal_tol, fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict

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
        self.ops: list[dict[str, Any]] = []
        self.labels: dict[str, Any] = {}

    def add(self, op: dict[str, Any], *, label: str | None = None) -> int:
        self.ops.append(op)
        if label is not None:
            self.labels[label] = len(self.ops) - 1
        return len(self.ops) - 1

    def start(self, ref: str, sizes: dict[str, Any]) -> None:
        if not any(o["op"] == "import" for o in self.ops):
            self.add({"op": "import", "module": self.layer.module, "what": f"importing {self.layer.module}.py"})
        self.add({"op": "new", "module": self.layer.module, "name": self.layer.name,
                  "args": self.layer.ctor_args(sizes), "as": ref,
                  "what": f"{self.layer.name}({', '.join(map(str, self.layer.ctor_args(sizes)))})"})

    def set_params(self, ref: str, values: dict[str, np.ndarray]) -> None:
        for pname, arr in values.items():
            self.add({"op": "setattr", "ref": ref, "attr": pname, "value": self.inputs.add(arr),
                      "what": f"setting {self.layer.name}.{pname}"})

    def forward(self, ref: str, args: list[np.ndarray], label: str | None = None) -> int:
        return self.add({"op": "call", "ref": ref, "method": "forward",
                         "args": [self.inputs.add(a) for a in args], "what": f"{self.layer.name}.forward"},
                        label=label)

    def backward(self, ref: str, upstream: np.ndarray | None, label: str | None = None) -> int:
        args = [self.inputs.add(upstream)] if upstream is not None else []
        return self.add({"op": "call", "ref": ref, "method": "backward", "args": args,
                         "what": f"{self.layer.name}.backward"}, label=label)

    def getattr(self, ref: str, attr: str, label: str) -> int:
        return self.add({"op": "getattr", "ref": ref, "attr": attr,
                         "what": f"reading {self.layer.name}.{attr}"}, label=label)

    def plan(self, *, use_reference: bool = True, **judge_facts: Any) -> Plan:
        return Plan(ops=self.ops, labels={"ops": self.labels, **judge_facts},
                    use_reference=use_reference)


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
    what = op.get("what", op["op"])
    if err.get("sandbox"):
        return f"{what} {err['message']}"
    if op["op"] == "import":
        return f"{what} failed: {err['type']}: {err['message']}" + (f" ({err['where']})" if err.get("where") else "")
    if err.get("harness"):
        return f"{what}: {err['message']}"
    where = f" ({err['where']})" if err.get("where") else ""
    msg = f"{what} raised {err['type']}: {err['message']}{where}"
    if any(w in err["message"].lower() for w in ("cuda", "nvidia", "gpu")):
        msg += ". The grader has no GPU: keep everything on the CPU"
    return msg


def compare_labels(run: GroupRun, ref: GroupRun | None, plan: Plan, docs: dict[str, str],
                   expected: dict[str, np.ndarray] | None = None, tol: dict[str, float] | None = None) -> str | None:
    """Compare every labelled output with the reference's (or literal expectations)."""
    tol = tol or {"rtol": RTOL, "atol": ATOL}
    for label, i in plan.labels["ops"].items():
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
        layer = LayerDesc.from_spec(assignment, check.params["layer"])
        sizes = layer.sizes[0]
        s = LayerScript(layer, inputs)
        s.start("L", sizes)
        for p in layer.params:
            s.getattr("L", p, label=f"{layer.name}.{p}")
        s.add({"op": "call", "ref": "L", "method": "params", "what": f"{layer.name}.params()"}, label="params()")
        x = random_inputs(layer, sizes, rng)
        s.forward("L", x)
        up = rng.normal(size=shape_of(layer.output, {**sizes, "shape": x[0].shape})) if layer.upstream else None
        s.backward("L", up)
        s.add({"op": "call", "ref": "L", "method": "grads", "what": f"{layer.name}.grads()"}, label="grads()")
        return s.plan(use_reference=False, sizes=sizes, layer=check.params["layer"])

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        layer = LayerDesc.from_spec(assignment, plan.labels["layer"])
        sizes, ops = plan.labels["sizes"], plan.labels["ops"]
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
                want = "{" + ", ".join(f"'{k}'" for k in sorted(layer.params)) + "}" if layer.params else "{}"
                return Verdict.fail(f"{layer.name}.{method} returned keys {keys}; expected {want}")
        return Verdict.ok()


class LayerForward:
    """The seed's own test values, then random cases compared with the reference."""

    method = "forward"

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        layer = LayerDesc.from_spec(assignment, check.params["layer"])
        s = LayerScript(layer, inputs)
        docs: dict[str, str] = {}
        literal: dict[str, np.ndarray] = {}
        for n, case in enumerate(check.params.get("cases", [])):
            ref = f"S{n}"
            sizes = dict(case.get("sizes", layer.sizes[0]))
            s.start(ref, sizes)
            s.set_params(ref, {k: np.asarray(v, dtype=np.float64) for k, v in case.get("set", {}).items()})
            args = [np.asarray(a, dtype=np.float64) for a in case["forward"]]
            label = f"{layer.name}.forward on the notebook's test input {n + 1}"
            s.forward(ref, args, label=label if self.method == "forward" else None)
            docs[label] = shape_doc(layer.output)
            docs[f"{layer.name}.backward on the notebook's test input {n + 1}"] = shape_doc(layer.inputs[0].shape)
            for pname, attr in layer.grad_attrs.items():
                docs[f"{layer.name}.{attr} on the notebook's test input {n + 1}"] = per_sample_doc(layer.params[pname])
            literal_case = self._literal(case, layer, s, ref, n)
            if self.method == "forward":
                literal[label] = np.asarray(case["expect"], dtype=np.float64)
            literal.update(literal_case)
        n_literal = len(s.labels)
        for n, sizes in enumerate(layer.sizes):
            ref = f"R{n}"
            s.start(ref, sizes)
            s.set_params(ref, random_params(layer, sizes, rng))
            x = random_inputs(layer, sizes, rng)
            sizes_x = {**sizes, "shape": x[0].shape}
            label = f"{layer.name}.forward output for input shape {fmt_shape(x[0].shape)}"
            s.forward(ref, x, label=label if self.method == "forward" else None)
            docs[label] = shape_doc(layer.output)
            if self.method == "backward":
                up = rng.normal(size=shape_of(layer.output, sizes_x)) if layer.upstream else None
                label = f"{layer.name}.backward return value for input shape {fmt_shape(x[0].shape)}"
                s.backward(ref, up, label=label)
                docs[label] = shape_doc(layer.inputs[0].shape)
                for pname, attr in layer.grad_attrs.items():
                    lab = f"{layer.name}.{attr} after backward (input shape {fmt_shape(x[0].shape)})"
                    s.getattr(ref, attr, label=lab)
                    docs[lab] = per_sample_doc(layer.params[pname])
        return s.plan(literal=literal, docs=docs, n_literal=n_literal, layer=layer.name,
                      decimal=int(check.params.get("decimal", 6)))

    def _literal(self, case: dict[str, Any], layer: LayerDesc, s: LayerScript, ref: str, n: int) -> dict[str, np.ndarray]:
        return {}

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        facts = plan.labels
        labels = list(facts["ops"].items())
        literal, docs = facts["literal"], facts["docs"]
        tol_lit = decimal_tol(facts["decimal"])
        for label, i in labels:
            if i >= len(run.results) or run.results[i].error:
                break
            if label in literal:
                msg = compare_array(run.value(i), literal[label], what=label, shape_doc=docs.get(label, ""), **tol_lit)
            else:
                want = ref.value(i) if ref else None
                if want is None:
                    return Verdict.err(f"the reference solution produced no {label} (grader bug)")
                msg = compare_array(run.value(i), want, what=label, shape_doc=docs.get(label, ""), rtol=RTOL, atol=ATOL)
            if msg:
                return Verdict.fail(msg)
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        return Verdict.ok()


class LayerBackward(LayerForward):
    method = "backward"

    def _literal(self, case: dict[str, Any], layer: LayerDesc, s: LayerScript, ref: str, n: int) -> dict[str, np.ndarray]:
        if "backward" not in case:
            return {}
        out = {}
        label = f"{layer.name}.backward on the notebook's test input {n + 1}"
        up = np.asarray(case["backward"], dtype=np.float64) if layer.upstream else None
        s.backward(ref, up, label=label)
        out[label] = np.asarray(case["expect_backward"], dtype=np.float64)
        for attr, value in case.get("expect_attrs", {}).items():
            lab = f"{layer.name}.{attr} on the notebook's test input {n + 1}"
            s.getattr(ref, attr, label=lab)
            out[lab] = np.asarray(value, dtype=np.float64)
        return out


class LayerGradcheck:
    """Finite differences of the student's own forward against the student's backward."""

    eps = 1e-6
    max_elements = 12

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        layer = LayerDesc.from_spec(assignment, check.params["layer"])
        sizes = dict(check.params.get("sizes", layer.sizes[0]))
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
        return s.plan(use_reference=False, probes=probes, upstream=up, layer=layer.name,
                      input_shape=list(x[0].shape),
                      output_shape=list(shape_of(layer.output, {**sizes, "shape": x[0].shape})))

    def _pick(self, shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
        all_idx = list(np.ndindex(*shape))
        if len(all_idx) <= self.max_elements:
            return all_idx
        chosen = rng.choice(len(all_idx), size=self.max_elements, replace=False)
        return [all_idx[int(i)] for i in sorted(chosen)]

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        layer = LayerDesc.from_spec(assignment, plan.labels["layer"])
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        ops = plan.labels["ops"]
        up = plan.labels["upstream"]
        y, dx = run.value(ops["y"]), run.value(ops["dx"])
        in_shape = fmt_shape(plan.labels["input_shape"])
        if msg := (_array_problem(y, plan.labels["output_shape"], f"{layer.name}.forward",
                                  f"for an input of shape {in_shape}")
                   or _array_problem(dx, plan.labels["input_shape"], f"{layer.name}.backward",
                                     f"for a forward input of shape {in_shape}")):
            return Verdict.fail(msg)
        g = np.ones_like(y) if up is None else up
        attrs = {p: run.value(ops[a]) for p, a in layer.grad_attrs.items()}
        pending: dict[tuple[str, tuple[int, ...]], dict[int, np.ndarray]] = {}
        for probe in plan.labels["probes"]:
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


class LayerParams:
    """params() hands out the very arrays forward uses (the seed updates them in place); grads() after backward."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        layer = LayerDesc.from_spec(assignment, check.params["layer"])
        sizes = layer.sizes[-1]
        s = LayerScript(layer, inputs)
        s.start("L", sizes)
        s.set_params("L", random_params(layer, sizes, rng))
        x = random_inputs(layer, sizes, rng)
        s.forward("L", x)
        up = rng.normal(size=shape_of(layer.output, {**sizes, "shape": x[0].shape})) if layer.upstream else None
        s.backward("L", up)
        for pname in layer.params:
            s.add({"op": "call", "ref": "L", "method": "grads", "as": "G", "what": f"{layer.name}.grads()"})
            s.add({"op": "getitem", "ref": "G", "key": pname, "what": f"{layer.name}.grads()['{pname}']"},
                  label=f"{layer.name}.grads()['{pname}']")
        s.add({"op": "call", "ref": "L", "method": "params", "as": "P", "report": False,
               "what": f"{layer.name}.params()"})
        for pname, expr in layer.params.items():
            s.add({"op": "isub", "ref": "P", "key": pname,
                   "value": inputs.add(rng.normal(0, 0.5, size=shape_of(expr, sizes))),
                   "what": f"the in-place update params()['{pname}'] -= ..."})
        s.forward("L", x, label="updated")
        return s.plan(layer=layer.name)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        layer = LayerDesc.from_spec(assignment, plan.labels["layer"])
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        ops = plan.labels["ops"]
        assert ref is not None
        for label, i in ops.items():
            if label == "updated":
                continue
            attr = layer.grad_attrs[label.split("'")[1]]
            if (msg := compare_array(run.value(i), ref.value(i), what=label, rtol=RTOL, atol=ATOL)) is not None:
                return Verdict.fail(f"{msg} (it must return self.{attr}, the gradients backward computed)")
        if compare_array(run.value(ops["updated"]), ref.value(ops["updated"]), what="", rtol=RTOL, atol=ATOL):
            return Verdict.fail(
                f"{layer.name}.params() must return the layer's own arrays: after the training loop's in-place "
                f"update params()[name] -= ..., {layer.name}.forward still computed with the old values")
        return Verdict.ok()
