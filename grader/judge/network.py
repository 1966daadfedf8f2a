"""Check kind: a composed network of the student's layers, forward, backward and one SGD step.

Its subject is the composition (the seed's training loop over the student's layers), not the layers' values,
which their own checks judge: when the network's first deviation from the reference comes with a layer that
deviates on its own too (the same layer kind at the network's sizes, alone on judge-chosen inputs: its forward,
backward, per-sample gradients or its params() plumbing), the network check does not fail for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.judge.compare import compare_array
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import (
    ATOL,
    RTOL,
    LayerDesc,
    failure_text,
    random_inputs,
    random_params,
    same_value,
    shape_of,
)


class Network:
    """As in the seed's training loop: forward through every layer and the loss head, backward in
    reverse, ``param_value -= lr * grads[name].mean(axis=0)``, forward again."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = check.params
        batch, lr = int(p["batch"]), float(p.get("lr", 0.1))
        descs = [(LayerDesc.from_spec(assignment, item["layer"]), dict(item.get("sizes", {}))) for item in p["layers"]]
        head = LayerDesc.from_spec(assignment, p["head"])
        names = [d.name for d, _ in descs]
        arch = "-".join(names) + f" with the {head.name} head"
        ops: list[dict[str, Any]] = []
        labels: dict[str, int] = {}

        def add(op: dict[str, Any], label: str | None = None) -> None:
            ops.append(op)
            if label:
                labels[label] = len(ops) - 1

        for module in dict.fromkeys(d.module for d, _ in descs):
            add({"op": "import", "module": module, "what": f"importing {module}.py"})
        for k, (d, sizes) in enumerate(descs):
            add({"op": "new", "module": d.module, "name": d.name, "args": d.ctor_args(sizes), "as": f"L{k}",
                 "report": False, "what": f"{d.name}({', '.join(map(str, d.ctor_args(sizes)))})"})
            for pname, value in random_params(d, sizes, rng).items():
                add({"op": "setattr", "ref": f"L{k}", "attr": pname, "value": inputs.add(value),
                     "what": f"setting {d.name}.{pname}"})
        add({"op": "new", "module": head.module, "name": head.name, "args": [], "as": "H", "report": False,
             "what": f"{head.name}()"})
        in_dim = int(descs[0][1].get("input_dim", 4))
        x = inputs.add(rng.normal(size=(batch, in_dim)))
        y_gt = inputs.add(rng.integers(0, 2, size=(batch, 1)).astype(np.float64))

        def forward_pass(tag: str) -> None:
            prev: dict[str, Any] = x
            for k, (d, _) in enumerate(descs):
                add({"op": "call", "ref": f"L{k}", "method": "forward", "args": [prev], "as": f"{tag}a{k}",
                     "what": f"{d.name}.forward (layer {k + 1} of {arch})"}, f"{d.name}.forward output (layer {k + 1}, {tag})")
                prev = {"$ref": f"{tag}a{k}"}
            add({"op": "call", "ref": "H", "method": "forward", "args": [prev, y_gt],
                 "what": f"{head.name}.forward in {arch}"}, f"{head.name}.forward loss ({tag})")

        forward_pass("first pass")
        add({"op": "call", "ref": "H", "method": "backward", "as": "g_head", "what": f"{head.name}.backward in {arch}"},
            f"{head.name}.backward output")
        prev: dict[str, Any] = {"$ref": "g_head"}
        for k in reversed(range(len(descs))):
            d = descs[k][0]
            add({"op": "call", "ref": f"L{k}", "method": "backward", "args": [prev], "as": f"g{k}",
                 "what": f"{d.name}.backward (layer {k + 1} of {arch})"}, f"{d.name}.backward output (layer {k + 1})")
            prev = {"$ref": f"g{k}"}
        add({"op": "sgd", "layers": [f"L{k}" for k in range(len(descs))], "lr": lr,
             "what": f"the SGD update param_value -= lr * grads[name].mean(axis=0) over {arch}"})
        forward_pass("after one SGD step")
        units = self._unit_probes(descs, head, batch, inputs, rng, ops)
        return Plan(ops=ops, labels={"ops": labels, "arch": arch, "units": units})

    @staticmethod
    def _unit_probes(descs: list[tuple[LayerDesc, dict[str, Any]]], head: LayerDesc, batch: int, inputs: Inputs,
                     rng: np.random.Generator, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each layer of the network alone, at its sizes in the network, on fresh judge-chosen inputs: which of its
        values deviate from the reference's, and whether the in-place update through params() reaches forward."""
        units: list[dict[str, Any]] = []
        width = int(descs[0][1].get("input_dim", 4))
        for k, (d, sizes) in enumerate([*descs, (head, {})]):
            sizes = {"batch": batch, **sizes, "shape": [batch, width]}
            width = int(sizes.get("output_dim", width))
            ref = f"U{k}"
            what = f"{d.name} on its own"
            first = len(ops)
            ops.append({"op": "new", "module": d.module, "name": d.name, "args": d.ctor_args(sizes), "as": ref,
                        "report": False, "what": f"{d.name}({', '.join(map(str, d.ctor_args(sizes)))}) on its own"})
            params = random_params(d, sizes, rng)
            for pname, value in params.items():
                ops.append({"op": "setattr", "ref": ref, "attr": pname, "value": inputs.add(value),
                            "what": f"setting {d.name}.{pname}"})
            x = random_inputs(d, sizes, rng)
            values = [len(ops)]
            ops.append({"op": "call", "ref": ref, "method": "forward", "args": [inputs.add(a) for a in x],
                        "what": f"{what}: forward"})
            out_shape = shape_of(d.output, {**sizes, "shape": x[0].shape})
            values.append(len(ops))
            ops.append({"op": "call", "ref": ref, "method": "backward",
                        "args": [inputs.add(rng.normal(size=out_shape))] if d.upstream else [],
                        "what": f"{what}: backward"})
            for attr in d.grad_attrs.values():
                values.append(len(ops))
                ops.append({"op": "getattr", "ref": ref, "attr": attr, "what": f"{what}: reading {attr}"})
            plumbing: list[int] = []
            if params:
                ops.append({"op": "call", "ref": ref, "method": "params", "as": f"{ref}P", "report": False,
                            "what": f"{what}: params()"})
                step = {pname: rng.normal(0, 0.5, size=v.shape) for pname, v in params.items()}
                for pname, delta in step.items():
                    ops.append({"op": "isub", "ref": f"{ref}P", "key": pname, "value": inputs.add(delta),
                                "what": f"{what}: params()['{pname}'] -= ..."})
                plumbing.append(len(ops))
                ops.append({"op": "call", "ref": ref, "method": "forward", "args": [inputs.add(a) for a in x],
                            "what": f"{what}: forward after the update through params()"})
                for pname, delta in step.items():
                    ops.append({"op": "setattr", "ref": ref, "attr": pname, "value": inputs.add(params[pname] - delta),
                                "what": f"setting {d.name}.{pname}"})
                plumbing.append(len(ops))
                ops.append({"op": "call", "ref": ref, "method": "forward", "args": [inputs.add(a) for a in x],
                            "what": f"{what}: forward with the updated values set"})
            units.append({"layer": d.name, "first": first, "values": values, "plumbing": plumbing})
        return units

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        assert ref is not None
        arch = plan.labels["arch"]
        units = plan.labels.get("units", [])
        chain_end = units[0]["first"] if units else len(plan.ops)
        for label, i in plan.labels["ops"].items():  # in execution order: the first wrong step is named
            if i >= len(run.results) or run.results[i].error:
                break
            want = ref.value(i)
            if (msg := compare_array(run.value(i), want, what=label, rtol=RTOL, atol=ATOL)) is not None:
                if (alone := self._deviating_unit(units, run, ref)) is not None:
                    return Verdict.ok(f"In the network {arch}: {msg}; but {alone} (its own checks judge that), "
                                      "so the network is not judged beyond it")
                return Verdict.fail(f"In the network {arch}: {msg}")
        chain_ran = len(run.results) >= chain_end and not any(r.error for r in run.results[:chain_end])
        if not chain_ran and (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(f"In the network {arch}: {msg}")
        return Verdict.ok()

    @staticmethod
    def _deviating_unit(units: list[dict[str, Any]], run: GroupRun, ref: GroupRun) -> str | None:
        """Words naming the first layer that deviates from the reference on its own (or None)."""
        for unit in units:
            ops = [*unit["values"], *unit["plumbing"]]
            if any(i >= len(run.results) or run.results[i].error for i in ops):
                return f"{unit['layer']} fails on its own at these sizes"
            for i in unit["values"]:
                if compare_array(run.value(i), ref.value(i), what="", rtol=RTOL, atol=ATOL) is not None:
                    return f"{unit['layer']} computes that differently on its own too"
            if unit["plumbing"]:
                via, direct = (run.value(i) for i in unit["plumbing"])
                if not same_value(via, direct) and compare_array(via, np.asarray(direct), what="", rtol=1e-12,
                                                                  atol=1e-12) is not None:
                    return f"{unit['layer']}.params() does not hand out the arrays forward uses"
        return None
