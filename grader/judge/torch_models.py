"""Check kinds for PyTorch models: build, checkpoint, classify contract, hidden-test accuracy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import (
    CallOp,
    EvalOp,
    GetattrOp,
    ImportOp,
    KnownNetOp,
    LoadStateDictOp,
    NewOp,
    OpRequest,
    PredictOp,
    StateKeysOp,
    TensorOp,
    TorchLoadOp,
    TorchProbeOp,
)
from grader.judge import diagnose
from grader.judge.compare import fmt_shape, kind_of, unwrap
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import failure_text
from grader.judge.params import (
    TorchAccuracyParams,
    TorchBuildParams,
    TorchCheckpointParams,
    TorchClassifyParams,
    TorchModelParams,
    params_as,
)
from grader.result import CheckStatus

NETWORK_WORDS = ("urlopen", "name resolution", "name or service", "network is unreachable", "download",
                 "connection refused", "urlerror", "gaierror", "hub")


def _build_ops(p: TorchModelParams) -> list[OpRequest]:
    module, cls = p.module, p.class_
    ops: list[OpRequest] = [
        ImportOp(module=module, what=f"importing {module}.py"),
        NewOp(module=module, name=cls, kwargs=p.kwargs, as_="net", report=False, what=f"{cls}()")]
    return ops


def _load_ops(p: TorchCheckpointParams) -> list[OpRequest]:
    return [TorchLoadOp(file=p.file, as_state="state",
              what=f"torch.load('{p.file}', weights_only=True)"),
             LoadStateDictOp(ref="net", state="state",
                             what=f"{p.class_}().load_state_dict(<{p.file}>, strict=True)")]


def torch_failure(run: GroupRun, plan: Plan) -> str | None:
    msg = failure_text(run, plan)
    err = run.error
    if msg and err and not err.sandbox:
        op = plan.ops[len(run.results) - 1]
        text = f"{err.type} {err.message}".lower()
        if isinstance(op, NewOp | ImportOp) and any(w in text for w in NETWORK_WORDS):
            name = op.name if isinstance(op, NewOp) and op.name is not None else "the model"
            msg += (f". The grader has no network: {name}() with default arguments must not "
                    "download or load pretrained weights (build the model with weights=None in the default branch; "
                    "your trained weights come from the checkpoint)")
        if isinstance(op, TorchLoadOp) and "weights_only" in text:
            msg += (". Checkpoints are loaded with torch.load(weights_only=True): save model.state_dict(), "
                    "not the whole model or other Python objects")
    return msg



@dataclass(frozen=True, slots=True)
class ClassifyFacts:
    """Which op holds which output of the classify check, and the classes the known model's outputs give."""

    ops: dict[str, int]
    known: np.ndarray


@dataclass(frozen=True, slots=True)
class AccuracyPart:
    """One hidden set of an accuracy check: its metric and weight, and the labels that never enter the sandbox."""

    metric: str
    label: str
    weight: float
    labels: np.ndarray
    classes: int
    names: tuple[str, ...]
    images: np.ndarray


@dataclass(frozen=True, slots=True)
class AccuracyFacts:
    parts: tuple[AccuracyPart, ...]
    """In the order of the plan's last predict ops."""


@dataclass(frozen=True, slots=True)
class Asked:
    """A follow-up's predictions on a subset of one part's images, shown in other ways (see diagnose)."""

    part: AccuracyPart
    labels: np.ndarray
    tried: dict[str, tuple[int, str]]
    """Variant name -> (op index, the words for it)."""
    accuracy: float


@dataclass(frozen=True, slots=True)
class FollowUpFacts:
    asked: tuple[Asked, ...]

class TorchBuild:
    """Model() with default arguments; a forward pass on an input that requires grad.

    The probe runs in training mode on purpose: it is the seed's own check ("some_input = torch.rand(batch_size,
    1, 28, 28, requires_grad=True)", "model = MyNet()", "network_output = model(some_input)", "assert
    network_output.requires_grad", seed 003 lines 586-592) on a freshly built model, which is in training mode.
    Only facts that do not depend on the mode are judged (a tensor, its shape, connected to autograd, finite).
    """

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, TorchBuildParams)
        ops = _build_ops(p)
        ops.append(TorchProbeOp(ref="net", shape=p.input_shape, seed=int(rng.integers(1 << 30)),
                                what=f"{p.class_}.forward on an input of shape {fmt_shape(p.input_shape)}"))
        return Plan(ops=ops, use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, TorchBuildParams)
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        facts = unwrap(run.value(len(plan.ops) - 1))
        if not isinstance(facts, dict):
            return Verdict.fail(f"{p.class_}.forward returned something the grader cannot read")
        cls, want = p.class_, tuple(p.output_shape)
        if not facts.get("is_tensor"):
            return Verdict.fail(f"{cls}.forward returned a {facts.get('type')}; it has to return a PyTorch tensor")
        if tuple(facts.get("shape", ())) != want:
            return Verdict.fail(f"{cls}.forward returned shape {fmt_shape(facts.get('shape', ()))} for an input of "
                                f"shape {fmt_shape(p.input_shape)}; expected {fmt_shape(want)} = {p.output_doc}".rstrip(" ="))
        if not facts.get("requires_grad") or not facts.get("grad_fn"):
            return Verdict.fail(f"{cls}.forward output does not require grad: it is not connected to the autograd graph "
                                "(do not detach it, convert it to numpy or wrap forward in torch.no_grad())")
        if not facts.get("input_grad_abs_sum"):
            return Verdict.fail(f"{cls}.forward output does not depend on its input (the gradient w.r.t. the input is zero)")
        if not facts.get("finite"):
            return Verdict.fail(f"{cls}.forward output contains NaN or infinity on a random input")
        return Verdict.ok()


class TorchCheckpoint:
    """The checkpoint loads with weights_only=True into Model() with strict key and shape matching."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, TorchCheckpointParams)
        ops = _build_ops(p)
        ops.append(StateKeysOp(ref="net", what=f"{p.class_}().state_dict()"))
        return Plan(ops=ops + _load_ops(p), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, TorchCheckpointParams)
        n = len(run.results)
        if n >= 4 and not run.results[3].error:  # compare keys ourselves for a precise message
            model_keys, ckpt = unwrap(run.value(2)), unwrap(run.value(3))
            if not isinstance(model_keys, dict) or not isinstance(ckpt, dict):
                return Verdict.fail(f"{p.class_}().state_dict() returned something the grader cannot read")
            if ckpt.get("type") != "dict":
                return Verdict.fail(f"{p.file} holds a {ckpt.get('type')}; expected a state_dict "
                                    f"(torch.save(model.state_dict(), '{p.file}'))")
            keys = ckpt.get("keys") or {}
            missing = sorted(set(model_keys) - set(keys))
            extra = sorted(set(keys) - set(model_keys))
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing {len(missing)} key(s) of {p.class_}(), e.g. {', '.join(missing[:3])}")
                if extra:
                    parts.append(f"{len(extra)} key(s) {p.class_}() does not have, e.g. {', '.join(extra[:3])}")
                return Verdict.fail(f"{p.file} does not match {p.class_}(): " + "; ".join(parts)
                                    + ". Was it saved from this class?")
            for k, want in model_keys.items():
                got = keys[k]
                if list(got or []) != list(want or []):
                    return Verdict.fail(f"{p.file}: {k} has shape {fmt_shape(got or [])} but {p.class_}() "
                                        f"expects {fmt_shape(want)}")
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        return Verdict.ok()


class TorchClassify:
    """classify(model, x) returns a tensor of integer class indices of shape (B,): the index of the largest output of
    model(x) for each image.

    As in the seed's validation loop ("model.eval()" then "with torch.no_grad(): ... prediction = classify(model,
    x)", seed 003 lines 642-648), the values come from classify called in eval mode under torch.no_grad(): the
    harness's ``predict`` op on a small set of random images. model(x) is then called in eval mode on the same
    images (twice: a model whose outputs change from call to call in eval mode cannot be compared with), so
    Dropout and BatchNorm give the same outputs to both. A last call of classify outside no_grad shows the type
    the notebook's ``prediction.eq(y)`` needs (a tensor); it is not held against a classify that only works under
    no_grad, as the seed only calls it so.

    An untrained model often gives the same class for every random image, and a constant classify would agree
    with it. So classify is also shown a model whose outputs the judge knows (the harness's ``known_net``: the
    first pixels of each image, distinct in every image); it is judged on that model only when the student's own
    one gives a single class, so a classify that relies on MyNet's own attributes is never failed for it.
    """

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, TorchClassifyParams)
        shape = tuple(int(n) for n in p.input_shape)
        cls, fn, classes = p.class_, p.fn, p.classes
        images = rng.integers(0, 256, size=shape, dtype=np.uint8)
        flat = images.reshape(shape[0], -1)  # a view: the known model's outputs, distinct in every image
        flat[:, :classes] = np.stack([rng.choice(256, size=classes, replace=False) for _ in range(shape[0])])
        name = f"d{len(inputs.datasets)}"
        inputs.add_dataset(name, images)
        x = inputs.add(np.asarray(images, dtype=np.float32) / 255.0)  # the predict op's own conversion, bit for bit
        model_x = CallOp(ref="net", args=[{"$ref": "x"}],
                         what=f"{cls}.forward in eval mode on an input of shape {fmt_shape(shape)}")
        ops = [*_build_ops(p),
               EvalOp(ref="net", what=f"{cls}().eval()"),
               PredictOp(ref="net", fn_module=p.fn_module, fn=fn, data=name,
                         batch=shape[0], scale=255.0,
                         what=f"{fn}(model, x) in eval mode under torch.no_grad() with x of shape {fmt_shape(shape)}"),
               GetattrOp(ref="net", attr="training", what=f"reading model.training after {fn}"),
               EvalOp(ref="net", what=f"{cls}().eval()"),
               TensorOp(value=x, as_="x", report=False, what="preparing the input"),
               model_x, replace(model_x, what=f"{model_x.what} (a second time)"),
               KnownNetOp(classes=classes, as_="known", report=False,
                          what="building a model whose outputs are known"),
               PredictOp(ref="known", fn_module=p.fn_module, fn=fn, data=name,
                         batch=shape[0], scale=255.0,
                         what=f"{fn}(model, x) with a model whose {classes} outputs are the first {classes} pixels of "
                              "each image"),
               CallOp(module=p.fn_module, name=fn, args=[{"$ref": "net"}, {"$ref": "x"}],
                      what=f"{fn}(model, x) with x of shape {fmt_shape(shape)}")]
        n = len(ops)
        known = flat[:, :classes].argmax(axis=1)
        return Plan(ops=ops, facts=ClassifyFacts(ops={"preds": n - 9, "training": n - 8, "scores": n - 5,
                                                      "again": n - 4, "known": n - 2, "out": n - 1}, known=known),
                    use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, TorchClassifyParams)
        ops = plan.facts_as(ClassifyFacts).ops
        fn, cls, batch = p.fn, p.class_, p.input_shape[0]
        failed_at = len(run.results) - 1 if run.error is not None else None
        if (failed_at is None or failed_at < ops["known"] - 1) and (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        preds = run.value(ops["preds"])
        if (msg := _class_indices(fn, preds, batch)) is not None:
            return Verdict.fail(msg)
        raw = run.value(ops["scores"])
        scores = raw.get("$tensor") if isinstance(raw, dict) else None
        # classify is judged against the student's own model(x): its number of outputs is the build check's
        # subject; a model(x) that cannot be read as a (batch, K) tensor fails this check, it never skips it
        if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[0] != batch or not scores.shape[1]:
            got = f"a tensor of shape {fmt_shape(scores.shape)}" if isinstance(scores, np.ndarray) else kind_of(raw)
            return Verdict.fail(f"{cls}.forward returned {got}; {fn}(model, x) is checked against the largest output "
                                f"of model(x), which must be a ({batch}, {p.classes}) tensor")
        again = run.value(ops["again"])
        again = again.get("$tensor") if isinstance(again, dict) else None
        if not isinstance(again, np.ndarray) or again.shape != scores.shape or not np.array_equal(
                again, scores, equal_nan=True):
            return Verdict.fail(f"{cls}.forward gave different outputs for the same input in eval mode, so {fn} cannot "
                                "be checked against it: is dropout still on after model.eval()? (F.dropout(x, p) "
                                "needs training=self.training; nn.Dropout follows eval() by itself)")
        best = scores.argmax(axis=1)
        wrong = np.flatnonzero(best != preds)
        if wrong.size:
            i = int(wrong[0])
            why = ""
            if run.value(ops["training"]) is True:
                why = (f"; {fn} left the model in training mode (model.train()), where Dropout and BatchNorm change "
                       "the outputs: the notebook calls model.eval() before classify, and classify must not undo it")
            return Verdict.fail(f"{fn}(model, x) disagrees with the largest output of model(x) on {wrong.size} of "
                                f"{batch} inputs (input {i}: {fn} gave {int(preds[i])}, the largest output is "
                                f"class {int(best[i])}){why}")
        if np.unique(best).size == 1 and (msg := self._judge_known(fn, plan, run, failed_at, batch)) is not None:
            return Verdict.fail(msg)
        if failed_at is not None and failed_at < ops["out"]:
            return Verdict.ok()  # the known model was not needed; the type check did not run
        out = None if failed_at == ops["out"] else run.value(ops["out"])
        if failed_at != ops["out"] and not (isinstance(out, dict) and "$tensor" in out):
            return Verdict.fail(f"{fn}(model, x) returned {kind_of(out)}; expected a torch tensor of class indices "
                                "(the notebook calls prediction.eq(y))")
        return Verdict.ok()

    @staticmethod
    def _judge_known(fn: str, plan: Plan, run: GroupRun, failed_at: int | None, batch: int) -> str | None:
        """The verdict on the model with known outputs (the student's own gave one class for every input)."""
        facts = plan.facts_as(ClassifyFacts)
        ops = facts.ops
        same = ("your untrained model gives the same class for every random image, so classify was also called "
                "with a model whose outputs are known")
        if failed_at is not None and failed_at <= ops["known"]:
            return f"{failure_text(run, plan)} ({same})"
        preds = run.value(ops["known"])
        if (msg := _class_indices(fn, preds, batch)) is not None:
            return f"{msg} ({same})"
        known = facts.known
        wrong = np.flatnonzero(known != preds)
        if not wrong.size:
            return None
        i = int(wrong[0])
        return (f"{fn}(model, x) disagrees with the largest output of model(x) on {wrong.size} of {batch} inputs "
                f"(input {i}: {fn} gave {int(preds[i])}, the largest output is class {int(known[i])}); {same}")


def _class_indices(fn: str, preds: Any, batch: int) -> str | None:
    if not isinstance(preds, np.ndarray) or preds.shape != (batch,):
        return f"{fn}(model, x) returned {kind_of(preds)} for a batch of {batch}; expected a tensor of shape ({batch},)"
    if preds.dtype.kind not in "iu":
        return f"{fn}(model, x) returned class indices of dtype {preds.dtype}; expected integer class indices (use argmax)"
    return None


class TorchAccuracy:
    """Predictions of fn(model, x) on hidden test sets; the judge holds the labels and computes accuracy."""

    slow = True
    """It classifies hidden sets: graded in the slow phase (see grader.judge.kinds.slow_kind)."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        from grader.data import load_hidden

        p = params_as(check.params, TorchAccuracyParams)
        ops = _build_ops(p)
        ops += _load_ops(p) + [EvalOp(ref="net", what=f"{p.class_}().eval()")]
        parts = []
        for d in p.datasets:
            hidden = load_hidden(inputs.settings, d.hidden, **d.load)
            # a new order every run (OS entropy, not the judge's seed), the installation's dither
            images, labels = hidden.for_sandbox(dither=d.dither)
            name = f"d{len(inputs.datasets)}"
            inputs.add_dataset(name, images)
            ops.append(PredictOp(ref="net", fn_module=p.fn_module, fn=p.fn, data=name,
                                 batch=p.batch, scale=255.0,
                                 what=f"{p.fn}(model, x) on the hidden {d.label} test set ({len(labels)} images)"))
            parts.append(AccuracyPart(metric=d.metric, label=d.label, weight=d.weight, labels=labels,
                                      classes=len(hidden.classes), names=hidden.classes, images=images))
        return Plan(ops=ops, facts=AccuracyFacts(parts=tuple(parts)), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, TorchAccuracyParams)
        parts = plan.facts_as(AccuracyFacts).parts
        first_predict = len(plan.ops) - len(parts)
        metrics: dict[str, float] = {}
        for j, part in enumerate(parts):
            i = first_predict + j
            if i >= len(run.results) or run.results[i].error:
                break
            preds, labels = run.value(i), part.labels
            if not isinstance(preds, np.ndarray) or preds.shape != labels.shape or preds.dtype.kind not in "iub":
                return Verdict.fail(f"{p.fn}(model, x) on the hidden {part.label} set returned "
                                    f"{kind_of(preds)}; expected {len(labels)} integer class indices")
            if preds.size and (preds.min() < 0 or preds.max() >= part.classes):
                return Verdict.fail(f"{p.fn}(model, x) returned class indices outside 0..{part.classes - 1}")
            metrics[part.metric] = round(float(np.mean(preds.astype(np.int64) == labels)), 4)
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg, **metrics)
        threshold = p.threshold
        if p.metric is not None:
            score = round(sum(part.weight * metrics[part.metric] for part in parts), 4)
            metrics[p.metric] = score
            detail = " + ".join(f"{part.weight:g} x {part.label} {metrics[part.metric]:.4f}" for part in parts)
            text = f"weighted accuracy {score:.4f} = {detail}"
        else:
            score = metrics[parts[0].metric]
            text = f"accuracy {score:.4f} on the hidden {parts[0].label} test set ({len(parts[0].labels)} images)"
        if score > threshold:
            return Verdict.ok(f"{text}; more than {threshold:g} needed", **metrics)
        hints = []
        for j, part in enumerate(parts):
            hint = diagnose.class_order_hint(run.value(first_predict + j), part.labels, part.names, threshold)
            hints.append(f"{part.label}: {hint}" if hint and len(parts) > 1 else hint)
        return Verdict.fail(" ".join([f"{text}; needs to be more than {threshold:g}.", *filter(None, hints)]),
                            **metrics)

    def follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun, verdict: Verdict,
                  inputs: Inputs, rng: np.random.Generator) -> Plan | None:
        """For a hidden set scored near chance that no class order explains: predictions on a subset of its images
        shown transposed, flipped, inverted or on another scale (see grader.judge.diagnose)."""
        p = params_as(check.params, TorchAccuracyParams)
        parts = plan.facts_as(AccuracyFacts).parts
        if verdict.status is not CheckStatus.FAILED or "another order" in verdict.message or run.error is not None \
                or len(run.results) < len(plan.ops):
            return None
        ops = [*_build_ops(p), *_load_ops(p), EvalOp(ref="net", what=f"{p.class_}().eval()")]
        asked = []
        for part in parts:
            accuracy = verdict.metrics.get(part.metric)
            if accuracy is None or not diagnose.near_chance(accuracy, part.classes, p.threshold):
                continue
            pick = diagnose.subset(len(part.labels), rng)
            shown = np.asarray(part.images[pick])
            tried = {}
            for v in diagnose.variants(shown, 255.0):
                name = f"d{len(inputs.datasets)}"
                inputs.add_dataset(name, v.images(shown))
                tried[v.name] = (len(ops), v.words)
                ops.append(PredictOp(ref="net", fn_module=p.fn_module, fn=p.fn, data=name,
                                     batch=p.batch, scale=v.scale(255.0),
                                     what=f"{p.fn}(model, x) on {len(pick)} hidden {part.label} images ({v.name})"))
            asked.append(Asked(part=part, labels=part.labels[pick], tried=tried, accuracy=accuracy))
        if not asked:
            return None
        return Plan(ops=ops, facts=FollowUpFacts(asked=tuple(asked)), use_reference=False)

    def judge_follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
                        verdict: Verdict) -> Verdict:
        hints = []
        asked = plan.facts_as(FollowUpFacts).asked
        for a in asked:
            part, labels = a.part, a.labels
            results = {}
            for name, (i, _) in a.tried.items():
                pred = run.value(i) if i < len(run.results) and not run.results[i].error else None
                if isinstance(pred, np.ndarray) and pred.shape == labels.shape and pred.dtype.kind in "iu" and (
                        not pred.size or (pred.min() >= 0 and pred.max() < part.classes)):
                    results[name] = pred.astype(np.int64)
            hint = diagnose.image_hint(results, {n: w for n, (_, w) in a.tried.items()}, labels, part.names,
                                       a.accuracy, params_as(check.params, TorchAccuracyParams).threshold)
            if hint:
                hints.append(f"{part.label}: {hint}" if len(asked) > 1 else hint)
        if not hints:
            return verdict
        return Verdict(verdict.status, " ".join([verdict.message, *hints]), verdict.fraction, verdict.metrics)
