"""Check kind: a composed network of the student's layers, forward, backward and one SGD step."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.judge.compare import compare_array
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import ATOL, RTOL, LayerDesc, failure_text, random_params


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
        return Plan(ops=ops, labels={"ops": labels, "arch": arch})

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        assert ref is not None
        for label, i in plan.labels["ops"].items():  # in execution order: the first wrong step is named
            if i >= len(run.results) or run.results[i].error:
                break
            want = ref.value(i)
            if (msg := compare_array(run.value(i), want, what=label, rtol=RTOL, atol=ATOL)) is not None:
                return Verdict.fail(f"In the network {plan.labels['arch']}: {msg}")
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(f"In the network {plan.labels['arch']}: {msg}")
        return Verdict.ok()
