"""Check kind "predictions": a trained model (built and loaded by the spec's steps) classifies a hidden set.

The last step's argument ``{ data = "set" }`` shows the sandbox the hidden images in a fresh random order;
its value is either class indices (N,) or per-class scores, probabilities or one-hot rows (N, K), of
which the judge takes the argmax. The judge holds the labels and computes the accuracy (or the
classification error with ``report = "error"``) against ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import CallOp
from grader.judge import diagnose
from grader.judge.compare import fmt_shape, kind_of, unwrap
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.params import PredictionsParams, params_as
from grader.judge.script import DataSource, HiddenPart, Script
from grader.judge.torch_models import torch_failure
from grader.result import CheckStatus


def class_indices(value: Any, n: int, k: int) -> np.ndarray | str:
    """Predicted classes from a raw output, or what is wrong with it."""
    arr = value.get("$tensor") if isinstance(value, dict) and "$tensor" in value else value
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        return f"returned {kind_of(value)}; expected {n} class indices or an ({n}, {k}) array of scores"
    if arr.ndim == 2 and arr.shape == (n, k):
        if not np.isfinite(arr).all():
            return "returned scores with NaN or infinity"
        return np.asarray(arr.argmax(axis=1))
    if arr.shape == (n,) and arr.dtype.kind in "biu":
        if n and (arr.min() < 0 or arr.max() >= k):
            return f"returned class indices outside 0..{k - 1}"
        return arr.astype(np.int64)
    return f"returned shape {fmt_shape(arr.shape)}; expected ({n},) class indices or ({n}, {k}) scores"


def batch_mean_accuracy(correct: np.ndarray, order: np.ndarray, batch: int) -> float:
    """The mean over consecutive batches (of `batch` images in the set's stored order) of each batch's accuracy:
    what a notebook prints that averages per-batch accuracies over an unshuffled loader."""
    stored = np.empty(len(correct), dtype=np.float64)
    stored[order] = correct
    means = [stored[i:i + batch].mean() for i in range(0, len(stored), batch)]
    return float(np.mean(means)) if means else 0.0


@dataclass(frozen=True, slots=True)
class PredictionsFacts:
    """The hidden set the last op predicts (its labels stay in the judge), and the ops listing each loaded .npz
    file's names (file -> op index)."""

    part: HiddenPart
    files: dict[str, int]


@dataclass(frozen=True, slots=True)
class PredictionsFollowUp:
    """A follow-up's predictions on a subset of the hidden images, shown in other ways (see diagnose)."""

    part: HiddenPart
    labels: np.ndarray
    tried: dict[str, tuple[int, str]]
    """Variant name -> (op index, the words for it)."""
    accuracy: float
    threshold: float


class Predictions:
    slow = True
    """It classifies a hidden set: graded in the slow phase (see grader.judge.kinds.slow_kind)."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        script = self._script(check, assignment, inputs, rng)
        part = script.hidden[-1]
        return Plan(ops=script.ops, facts=PredictionsFacts(part=part, files=self._file_names(script)),
                    use_reference=False)

    @staticmethod
    def threshold(p: PredictionsParams, *, stand_in: bool) -> float:
        """The bar: `course_threshold` (the handout's) on the course's own test set when the spec gives one,
        else `threshold` (on a stand-in set it is calibrated; see the spec)."""
        return p.course_threshold if p.course_threshold is not None and not stand_in else p.threshold

    @staticmethod
    def _script(check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator,
                script: Script | None = None, data_source: DataSource | None = None) -> Script:
        """The spec's steps (only the last one's value reported); a loaded .npz's names are reported too, so that
        a missing weight name can be answered with the names the file has."""
        script = script or Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        script.data_source = data_source
        script.import_module()
        steps = params_as(check.params, PredictionsParams).steps
        for s in steps:
            script.step({**s, "check": s is steps[-1]})
            if "np_load" in s and not s.get("list") and "as" in s:
                script.add(CallOp(ref=s["as"], method="fromkeys", args=[{"$ref": s["as"]}],
                                  what=f"reading the names in {s['np_load']}"), f"names in {s['np_load']}")
        return script

    @staticmethod
    def _file_names(script: Script) -> dict[str, int]:
        return {label.removeprefix("names in "): i for label, i in script.checked.items()
                if label.startswith("names in ")}

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, PredictionsParams)
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg + self._missing_name(run, plan))
        part = plan.facts_as(PredictionsFacts).part
        labels, k = part.labels, part.classes
        what = plan.ops[-1].what
        raw = run.value(len(plan.ops) - 1)
        pred = class_indices(raw, len(labels), k)
        if isinstance(pred, str):
            return Verdict.fail(f"{what} {pred}")
        acc = float(np.mean(pred == labels))
        threshold = self.threshold(p, stand_in=part.stand_in)
        where = f"on the hidden {part.name} test set ({len(labels)} images)"
        if p.batch_mean is not None and part.order is not None:  # the handout's figure: a mean of per-batch accuracies
            acc = batch_mean_accuracy(pred == labels, part.order, p.batch_mean)
            where += f", the mean of its batches of {p.batch_mean} in the set's order as the handout averages"
        metric = p.metric if p.metric is not None else f"{check.id}.accuracy"
        if p.report == "error":
            err = round(1.0 - acc, 4)
            text = f"classification error {err:.4f} {where}"
            if err <= threshold:
                return Verdict.ok(f"{text}; at most {threshold:g} needed", **{metric: err})
            return Verdict.fail(self._hinted(f"{text}; needs to be at most {threshold:g}.", raw, pred, plan,
                                             1.0 - threshold), **{metric: err})
        acc = round(acc, 4)
        text = f"accuracy {acc:.4f} {where}"
        if acc >= threshold:
            return Verdict.ok(f"{text}; at least {threshold:g} needed", **{metric: acc})
        return Verdict.fail(self._hinted(f"{text}; needs to be at least {threshold:g}.", raw, pred, plan, threshold),
                            **{metric: acc})

    @staticmethod
    def _hinted(text: str, raw: object, pred: np.ndarray, plan: Plan, threshold: float) -> str:
        """The verdict's text with the convention slip that would explain a near-chance accuracy, if one does."""
        part = plan.facts_as(PredictionsFacts).part
        labels = part.labels
        arr = raw.get("$tensor") if isinstance(raw, dict) else raw
        hints = [diagnose.class_order_hint(pred, labels, part.names, threshold)]
        if isinstance(arr, np.ndarray) and arr.ndim == 2:
            hints.append(diagnose.scores_hint(arr, labels, threshold))
        return " ".join([text, *filter(None, hints)])

    @staticmethod
    def _missing_name(run: GroupRun, plan: Plan) -> str:
        """For a KeyError on a loaded .npz: the names the file does have."""
        if run.error is None or run.error.type != "KeyError":
            return ""
        for file, i in plan.facts_as(PredictionsFacts).files.items():
            names = unwrap(run.value(i)) if i < len(run.results) and not run.results[i].error else None
            if isinstance(names, dict):
                have = ", ".join(repr(n) for n in sorted(names)[:20]) or "no arrays at all"
                return f". {file} has {have}"
        return ""

    def follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun, verdict: Verdict,
                  inputs: Inputs, rng: np.random.Generator) -> Plan | None:
        """For a near-chance result that no class order or output reading explains: the steps again on a subset of
        the hidden images shown transposed, flipped, inverted or on another scale (see grader.judge.diagnose)."""
        p = params_as(check.params, PredictionsParams)
        part = plan.facts_as(PredictionsFacts).part
        if verdict.status is not CheckStatus.FAILED or "another order" in verdict.message or "log-prob" in \
                verdict.message or part.images is None:
            return None
        labels = part.labels
        if len(run.results) < len(plan.ops) or run.error is not None:  # no predictions to diagnose
            return None
        pred = class_indices(run.value(len(plan.ops) - 1), len(labels), part.classes)
        if isinstance(pred, str):
            return None
        accuracy = float(np.mean(pred == labels))
        bar = self.threshold(p, stand_in=part.stand_in)
        threshold = 1.0 - bar if p.report == "error" else bar
        if not diagnose.near_chance(accuracy, part.classes, threshold):
            return None
        pick = diagnose.subset(len(labels), rng)
        shown = np.asarray(part.images[pick])
        script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        tried = {}
        for v in diagnose.variants(shown, part.scale):
            def source(spec: dict[str, Any], v: diagnose.Variant = v) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], float]:
                return v.images(shown), labels[pick], part.names, v.scale(part.scale)

            self._script(check, assignment, inputs, rng, script=script, data_source=source)
            tried[v.name] = (len(script.ops) - 1, v.words)
        return Plan(ops=script.ops, facts=PredictionsFollowUp(part=part, labels=labels[pick], tried=tried,
                                                              accuracy=accuracy, threshold=threshold),
                    use_reference=False)

    def judge_follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
                        verdict: Verdict) -> Verdict:
        facts = plan.facts_as(PredictionsFollowUp)
        labels, part = facts.labels, facts.part
        results = {}
        for name, (i, _) in facts.tried.items():
            if i < len(run.results) and not run.results[i].error:
                pred = class_indices(run.value(i), len(labels), part.classes)
                if not isinstance(pred, str):
                    results[name] = pred
        hint = diagnose.image_hint(results, {n: w for n, (_, w) in facts.tried.items()}, labels, part.names,
                                   facts.accuracy, facts.threshold)
        if not hint:
            return verdict
        return Verdict(verdict.status, f"{verdict.message} {hint}", verdict.fraction, verdict.metrics)
