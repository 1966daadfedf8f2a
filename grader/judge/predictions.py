"""Check kind "predictions": a trained model (built and loaded by the spec's steps) classifies a hidden set.

The last step's argument ``{ data = "set" }`` shows the sandbox the hidden images in a fresh random order;
its value is either class indices (N,) or per-class scores, probabilities or one-hot rows (N, K), of
which the judge takes the argmax. The judge holds the labels and computes the accuracy (or the
classification error with ``report = "error"``) against ``threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.judge.compare import fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.script import Script
from grader.judge.torch_models import torch_failure


def class_indices(value: Any, n: int, k: int) -> np.ndarray | str:
    """Predicted classes from a raw output, or what is wrong with it."""
    arr = value.get("$tensor") if isinstance(value, dict) and "$tensor" in value else value
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        return f"returned {kind_of(value)}; expected {n} class indices or an ({n}, {k}) array of scores"
    if arr.ndim == 2 and arr.shape == (n, k):
        if not np.isfinite(arr).all():
            return "returned scores with NaN or infinity"
        return arr.argmax(axis=1)
    if arr.shape == (n,) and arr.dtype.kind in "biu":
        if n and (arr.min() < 0 or arr.max() >= k):
            return f"returned class indices outside 0..{k - 1}"
        return arr.astype(np.int64)
    return f"returned shape {fmt_shape(arr.shape)}; expected ({n},) class indices or ({n}, {k}) scores"


class Predictions:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        script.import_module()
        for s in check.params["steps"]:
            script.step({**s, "check": False} if s is not check.params["steps"][-1] else {**s, "check": True})
        part = script.hidden[-1]
        return Plan(ops=script.ops, labels={"labels": part.labels, "classes": part.classes, "set": part.name},
                    use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = check.params
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        labels, k = plan.labels["labels"], plan.labels["classes"]
        what = plan.ops[-1]["what"]
        pred = class_indices(run.value(len(plan.ops) - 1), len(labels), k)
        if isinstance(pred, str):
            return Verdict.fail(f"{what} {pred}")
        acc = float(np.mean(pred == labels))
        threshold = float(p["threshold"])
        where = f"on the hidden {plan.labels['set']} test set ({len(labels)} images)"
        metric = p.get("metric", f"{check.id}.accuracy")
        if p.get("report") == "error":
            err = round(1.0 - acc, 4)
            text = f"classification error {err:.4f} {where}"
            if err <= threshold:
                return Verdict.ok(f"{text}; at most {threshold:g} needed", **{metric: err})
            return Verdict.fail(f"{text}; needs to be at most {threshold:g}", **{metric: err})
        acc = round(acc, 4)
        text = f"accuracy {acc:.4f} {where}"
        if acc >= threshold:
            return Verdict.ok(f"{text}; at least {threshold:g} needed", **{metric: acc})
        return Verdict.fail(f"{text}; needs to be at least {threshold:g}", **{metric: acc})
