"""Check kind "torch.param_shapes": the layers a handout prescribes, seen through parameter shapes.

``Model()`` (student) and the reference's ``Model()`` are built; the multisets of their parameter shapes
(``state_dict()`` entries with their shapes; names are the student's choice) must be equal.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import StateKeysOp
from grader.judge.compare import unwrap
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.params import TorchParamShapesParams, params_as
from grader.judge.script import Script
from grader.judge.torch_models import torch_failure


def _shapes(value: object) -> Counter[tuple[int, ...]] | None:
    d = unwrap(value)
    if not isinstance(d, dict):
        return None
    return Counter(tuple(int(n) for n in (s or [])) for s in d.values())


class TorchParamShapes:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, TorchParamShapesParams)
        script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        script.step({"new": p.class_, "kwargs": p.kwargs, "as": "net"})
        script.add(StateKeysOp(ref="net", what=f"{p.class_}().state_dict()"))
        return Plan(ops=script.ops)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        cls = params_as(check.params, TorchParamShapesParams).class_
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        got, want = _shapes(run.value(len(plan.ops) - 1)), _shapes(ref.value(len(plan.ops) - 1) if ref else None)
        if want is None:
            return Verdict.err("the reference model has no state_dict (grader bug)")
        if got is None:
            return Verdict.fail(f"{cls}().state_dict() returned something the grader cannot read")
        if got != want:
            extra = sorted((got - want).elements())
            missing = sorted((want - got).elements())
            parts = []
            if missing:
                parts.append(f"no parameter of shape {', '.join(map(str, missing[:4]))}")
            if extra:
                parts.append(f"parameters of shape {', '.join(map(str, extra[:4]))} that the layers described do not have")
            return Verdict.fail(f"{cls}() does not have the layers the handout describes: " + "; ".join(parts))
        return Verdict.ok()
