"""Check kinds for a classifier wrapped around a log-softmax network (Assignment 4's ClassifierNeuralNet).

"classifier.nll": ``classify(x)`` must be the argmax of ``classnet(x)`` as long integers, and
``forward(x, y, reduction)`` the mean (default) or sum of the NLL of ``classnet(x)``, connected to autograd.
"classifier.logsoftmax": ``classnet(x)`` maps (B, D) to (B, K) log-probabilities (rows of exp sum to 1).
Both build the model with the spec's ``steps`` (which must keep it as "net") and judge the student's
outputs against the student's own classnet: architectures are the student's choice. Every call is made after
``net.eval()``, as the handout's ``evaluation()`` does before it classifies ("model_best.eval() # set the model
to the evaluation mode", seed 004 line 337), so that Dropout or BatchNorm in a classnet give the same outputs
to classify, forward and the judge's own classnet(x). The handout does not evaluate under torch.no_grad()
(forward's loss must keep its grad_fn), so neither does the grader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import CallOp, EvalOp
from grader.judge.compare import fmt_num, fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.params import ClassifierParams, params_as
from grader.judge.script import Script
from grader.judge.torch_models import torch_failure


def _tensor(v: object) -> np.ndarray | None:
    a = v.get("$tensor") if isinstance(v, dict) else None
    return a if isinstance(a, np.ndarray) else None


def _build(check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Script:
    p = params_as(check.params, ClassifierParams)
    script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
    script.import_module()
    for s in p.steps:
        script.step({**s, "check": False})
    b, d = p.input_shape
    script.add(EvalOp(ref="net", what=f"{p.owner}.eval()"))
    script.step({"attr": "classnet", "on": "net", "owner": p.owner, "as": "classnet", "check": False})
    x, _ = script.arg({"tensor": {"uniform": [b, d], "high": p.input_max}, "as": "x"})
    script.add(CallOp(ref="classnet", args=[x], what=f"{p.owner}.classnet(x) with x of shape "
                f"({b}, {d})"), "scores")
    return script


@dataclass(frozen=True, slots=True)
class ScoresFacts:
    checked: dict[str, int]
    """Output label ("scores", ...) -> op index."""


@dataclass(frozen=True, slots=True)
class NllFacts(ScoresFacts):
    y: np.ndarray
    """The labels forward(x, y) is given."""


class ClassifierNll:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, ClassifierParams)
        script = _build(check, assignment, inputs, rng)
        b, k = p.input_shape[0], p.classes
        y = rng.integers(0, k, size=b)
        yt, _ = script.arg({"tensor": {"array": y.tolist(), "dtype": "int64"}, "dtype": "int64", "as": "y"})
        owner = p.owner
        script.add(CallOp(ref="net", method="classify", args=[{"$ref": "x"}],
                          what=f"{owner}.classify(x)"), "classify")
        script.add(CallOp(ref="net", method="forward", args=[{"$ref": "x"}, yt],
                          what=f"{owner}.forward(x, y)"), "avg")
        script.add(CallOp(ref="net", method="forward", args=[{"$ref": "x"}, yt],
                          kwargs={"reduction": "sum"}, what=f"{owner}.forward(x, y, reduction='sum')"), "sum")
        return Plan(ops=script.ops, facts=NllFacts(checked=script.checked, y=y), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, ClassifierParams)
        owner = p.owner
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        facts = plan.facts_as(NllFacts)
        ops, y = facts.checked, facts.y
        scores = _tensor(run.value(ops["scores"]))
        # classify and forward are judged against the student's own classnet, whatever its number of outputs (that
        # is the classifier.logsoftmax check's subject); an output that is not a (batch, K) tensor fails, never skips
        if scores is None or scores.ndim != 2 or scores.shape[0] != len(y) or scores.shape[1] < 1:
            desc = f"a tensor of shape {fmt_shape(scores.shape)}" if scores is not None else kind_of(
                run.value(ops["scores"]))
            return Verdict.fail(f"{owner}.classnet(x) returned {desc}; classify and forward are checked against "
                                f"classnet(x), which must be a ({len(y)}, {p.classes}) tensor")
        if scores.shape[1] <= int(y.max()):  # the NLL of labels classnet has no output for is not defined
            return Verdict.fail(f"{owner}.classnet(x) has {scores.shape[1]} outputs; forward(x, y) was given labels up "
                                f"to {int(y.max())} of the {p.classes} classes")
        pred_raw = run.value(ops["classify"])
        pred = _tensor(pred_raw)
        if pred is None or pred.shape != (len(y),):
            return Verdict.fail(f"{owner}.classify(x) returned {kind_of(pred_raw)}"
                                + (f" of shape {fmt_shape(pred.shape)}" if pred is not None else "")
                                + f"; expected a tensor of {len(y)} class labels")
        if pred_raw.get("dtype") != "int64":
            return Verdict.fail(f"{owner}.classify(x) returned a tensor of dtype {pred_raw.get('dtype')}; the class "
                                "labels must be long (torch.int64)")
        best = scores.argmax(axis=1)
        if (wrong := np.flatnonzero(best != pred)).size:
            i = int(wrong[0])
            return Verdict.fail(f"{owner}.classify(x) disagrees with the largest output of classnet(x) on "
                                f"{wrong.size} of {len(y)} inputs (input {i}: classify gave {int(pred[i])}, the "
                                f"largest output is class {int(best[i])})")
        nll = -scores.astype(np.float64)[np.arange(len(y)), y]
        for key, want, how in (("avg", nll.mean(), "the mean"), ("sum", nll.sum(), "the sum")):
            raw = run.value(ops[key])
            got = _tensor(raw)
            what = f"{owner}.forward(x, y{', reduction=' + repr(key) if key == 'sum' else ''})"
            if got is None or got.size != 1:
                return Verdict.fail(f"{what} returned {kind_of(raw)}; expected a scalar loss tensor")
            if not raw.get("grad_fn"):
                return Verdict.fail(f"{what} is not connected to the autograd graph (loss.backward() needs it)")
            if not np.isclose(float(got.item()), want, rtol=1e-4, atol=1e-5):
                return Verdict.fail(f"{what} is {fmt_num(float(got.item()))}; expected {fmt_num(float(want))}, {how} "
                                    "of the NLL of classnet(x) over the batch")
        return Verdict.ok()


class ClassifierLogSoftmax:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        script = _build(check, assignment, inputs, rng)
        return Plan(ops=script.ops, facts=ScoresFacts(checked=script.checked), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, ClassifierParams)
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        raw = run.value(plan.facts_as(ScoresFacts).checked["scores"])
        scores = _tensor(raw)
        b, k = p.input_shape[0], p.classes
        what = f"{p.owner}.classnet(x) for x of shape ({b}, {p.input_shape[1]})"
        if scores is None or scores.shape != (b, k):
            desc = f"a tensor of shape {fmt_shape(scores.shape)}" if scores is not None else kind_of(raw)
            return Verdict.fail(f"{what} returned {desc}; expected ({b}, {k})")
        if not raw.get("grad_fn"):
            return Verdict.fail(f"{what} is not connected to the autograd graph")
        total = np.exp(scores.astype(np.float64)).sum(axis=1)
        if not np.allclose(total, 1.0, atol=1e-4):
            i = int(np.argmax(np.abs(total - 1.0)))
            return Verdict.fail(f"{what} must return log-probabilities (end the classnet with nn.LogSoftmax(dim=1)): "
                                f"exp of row {i} sums to {fmt_num(float(total[i]))}, not 1")
        return Verdict.ok()
