"""Check kinds for PyTorch models: build, checkpoint, classify contract, hidden-test accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.judge.compare import fmt_shape, kind_of, unwrap
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import failure_text

DEFAULT_BATCH = 250
"""Images per call of fn(model, x) on a hidden set, unless the check says `batch`."""

NETWORK_WORDS = ("urlopen", "name resolution", "name or service", "network is unreachable", "download",
                 "connection refused", "urlerror", "gaierror", "hub")


def _build_ops(p: dict[str, Any]) -> list[dict[str, Any]]:
    module, cls = p["module"], p["class"]
    ops = [{"op": "import", "module": module, "what": f"importing {module}.py"},
           {"op": "new", "module": module, "name": cls, "kwargs": p.get("kwargs", {}), "as": "net", "report": False,
            "what": f"{cls}()"}]
    return ops


def _load_ops(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "torch_load", "file": p["file"], "as_state": "state",
              "what": f"torch.load('{p['file']}', weights_only=True)"},
             {"op": "load_state_dict", "ref": "net", "state": "state",
              "what": f"{p['class']}().load_state_dict(<{p['file']}>, strict=True)"}]


def torch_failure(run: GroupRun, plan: Plan) -> str | None:
    msg = failure_text(run, plan)
    err = run.error
    if msg and err and not err.get("sandbox"):
        op = plan.ops[len(run.results) - 1]
        text = f"{err['type']} {err['message']}".lower()
        if op["op"] in ("new", "import") and any(w in text for w in NETWORK_WORDS):
            msg += (f". The grader has no network: {op.get('name', 'the model')}() with default arguments must not "
                    "download or load pretrained weights (build the model with weights=None in the default branch; "
                    "your trained weights come from the checkpoint)")
        if op["op"] == "torch_load" and "weights_only" in text:
            msg += (". Checkpoints are loaded with torch.load(weights_only=True): save model.state_dict(), "
                    "not the whole model or other Python objects")
    return msg


class TorchBuild:
    """Model() with default arguments; a forward pass on an input that requires grad."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = check.params
        ops = _build_ops(p)
        ops.append({"op": "torch_probe", "ref": "net", "shape": p["input_shape"], "seed": int(rng.integers(1 << 30)),
                    "what": f"{p['class']}.forward on an input of shape {fmt_shape(p['input_shape'])}"})
        return Plan(ops=ops, use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = check.params
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        facts = unwrap(run.value(len(plan.ops) - 1))
        if not isinstance(facts, dict):
            return Verdict.fail(f"{p['class']}.forward returned something the grader cannot read")
        cls, want = p["class"], tuple(p["output_shape"])
        if not facts.get("is_tensor"):
            return Verdict.fail(f"{cls}.forward returned a {facts.get('type')}; it has to return a PyTorch tensor")
        if tuple(facts.get("shape", ())) != want:
            return Verdict.fail(f"{cls}.forward returned shape {fmt_shape(facts.get('shape', ()))} for an input of "
                                f"shape {fmt_shape(p['input_shape'])}; expected {fmt_shape(want)} = {p.get('output_doc', '')}".rstrip(" ="))
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
        p = check.params
        ops = _build_ops(p)
        ops.append({"op": "state_keys", "ref": "net", "what": f"{p['class']}().state_dict()"})
        return Plan(ops=ops + _load_ops(p), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = check.params
        n = len(run.results)
        if n >= 4 and not run.results[3].error:  # compare keys ourselves for a precise message
            model_keys, ckpt = unwrap(run.value(2)), unwrap(run.value(3))
            if not isinstance(model_keys, dict) or not isinstance(ckpt, dict):
                return Verdict.fail(f"{p['class']}().state_dict() returned something the grader cannot read")
            if ckpt.get("type") != "dict":
                return Verdict.fail(f"{p['file']} holds a {ckpt.get('type')}; expected a state_dict "
                                    f"(torch.save(model.state_dict(), '{p['file']}'))")
            keys = ckpt.get("keys") or {}
            missing = sorted(set(model_keys) - set(keys))
            extra = sorted(set(keys) - set(model_keys))
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing {len(missing)} key(s) of {p['class']}(), e.g. {', '.join(missing[:3])}")
                if extra:
                    parts.append(f"{len(extra)} key(s) {p['class']}() does not have, e.g. {', '.join(extra[:3])}")
                return Verdict.fail(f"{p['file']} does not match {p['class']}(): " + "; ".join(parts)
                                    + ". Was it saved from this class?")
            for k, want in model_keys.items():
                got = keys[k]
                if list(got or []) != list(want or []):
                    return Verdict.fail(f"{p['file']}: {k} has shape {fmt_shape(got or [])} but {p['class']}() "
                                        f"expects {fmt_shape(want)}")
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        return Verdict.ok()


class TorchClassify:
    """classify(model, x) returns a tensor of integer class indices of shape (B,) within range."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = check.params
        ops = _build_ops(p)
        x = inputs.add(rng.random(size=p["input_shape"]).astype(np.float32))
        ops += [{"op": "eval", "ref": "net", "what": f"{p['class']}().eval()"},
                {"op": "tensor", "value": x, "as": "x", "report": False, "what": "preparing the input"},
                {"op": "call", "ref": "net", "args": [{"$ref": "x"}],
                 "what": f"{p['class']}.forward on an input of shape {fmt_shape(p['input_shape'])}"},
                {"op": "call", "module": p["fn_module"], "name": p["fn"], "args": [{"$ref": "net"}, {"$ref": "x"}],
                 "what": f"{p['fn']}(model, x) with x of shape {fmt_shape(p['input_shape'])}"}]
        return Plan(ops=ops, use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = check.params
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg)
        out = run.value(len(plan.ops) - 1)
        fn, batch, k = p["fn"], p["input_shape"][0], int(p["classes"])
        if not (isinstance(out, dict) and "$tensor" in out):
            return Verdict.fail(f"{fn}(model, x) returned {kind_of(out)}; expected a torch tensor of class indices "
                                "(the notebook calls prediction.eq(y))")
        arr = out["$tensor"]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
            return Verdict.fail(f"{fn}(model, x) returned a tensor of dtype {out.get('dtype')}; expected integer "
                                "class indices (use argmax)")
        if arr.shape != (batch,):
            return Verdict.fail(f"{fn}(model, x) returned shape {fmt_shape(arr.shape)} for a batch of {batch}; "
                                f"expected ({batch},)")
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            return Verdict.fail(f"{fn}(model, x) returned class {int(arr.max() if arr.max() >= k else arr.min())}; "
                                f"classes are 0..{k - 1}")
        raw = run.value(len(plan.ops) - 2)
        scores = raw.get("$tensor") if isinstance(raw, dict) else None
        if isinstance(scores, np.ndarray) and scores.shape == (batch, k):
            best = scores.argmax(axis=1)
            wrong = np.flatnonzero(best != arr)
            if wrong.size:
                i = int(wrong[0])
                return Verdict.fail(f"{fn}(model, x) disagrees with the largest output of model(x) on {wrong.size} of "
                                    f"{batch} inputs (input {i}: {fn} gave {int(arr[i])}, the largest output is "
                                    f"class {int(best[i])})")
        return Verdict.ok()


class TorchAccuracy:
    """Predictions of fn(model, x) on hidden test sets; the judge holds the labels and computes accuracy."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        from grader.data import load_hidden

        p = check.params
        ops = _build_ops(p)
        ops += _load_ops(p) + [{"op": "eval", "ref": "net", "what": f"{p['class']}().eval()"}]
        parts = []
        for d in p["datasets"]:
            hidden = load_hidden(inputs.settings, d["hidden"], **d.get("load", {}))
            # a new order every run (OS entropy, not the judge's seed), the installation's dither
            images, labels = hidden.for_sandbox(dither=d.get("dither"))
            name = f"d{len(inputs.datasets)}"
            inputs.add_dataset(name, images)
            ops.append({"op": "predict", "ref": "net", "fn_module": p["fn_module"], "fn": p["fn"], "data": name,
                        "batch": int(p.get("batch", DEFAULT_BATCH)), "scale": 255.0,
                        "what": f"{p['fn']}(model, x) on the hidden {d['label']} test set ({len(labels)} images)"})
            parts.append({"metric": d["metric"], "label": d["label"], "weight": float(d.get("weight", 1.0)),
                          "labels": labels, "classes": len(hidden.classes)})
        return Plan(ops=ops, labels={"parts": parts}, use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = check.params
        parts = plan.labels["parts"]
        first_predict = len(plan.ops) - len(parts)
        metrics: dict[str, float] = {}
        for j, part in enumerate(parts):
            i = first_predict + j
            if i >= len(run.results) or run.results[i].error:
                break
            preds, labels = run.value(i), part["labels"]
            if not isinstance(preds, np.ndarray) or preds.shape != labels.shape or preds.dtype.kind not in "iub":
                return Verdict.fail(f"{p['fn']}(model, x) on the hidden {part['label']} set returned "
                                    f"{kind_of(preds)}; expected {len(labels)} integer class indices")
            if preds.size and (preds.min() < 0 or preds.max() >= part["classes"]):
                return Verdict.fail(f"{p['fn']}(model, x) returned class indices outside 0..{part['classes'] - 1}")
            metrics[part["metric"]] = round(float(np.mean(preds.astype(np.int64) == labels)), 4)
        if (msg := torch_failure(run, plan)) is not None:
            return Verdict.fail(msg, **metrics)
        threshold = float(p["threshold"])
        if "metric" in p:
            score = round(sum(part["weight"] * metrics[part["metric"]] for part in parts), 4)
            metrics[p["metric"]] = score
            detail = " + ".join(f"{part['weight']:g} x {part['label']} {metrics[part['metric']]:.4f}" for part in parts)
            text = f"weighted accuracy {score:.4f} = {detail}"
        else:
            score = metrics[parts[0]["metric"]]
            text = f"accuracy {score:.4f} on the hidden {parts[0]['label']} test set ({len(parts[0]['labels'])} images)"
        if score > threshold:
            return Verdict.ok(f"{text}; more than {threshold:g} needed", **metrics)
        return Verdict.fail(f"{text}; needs to be more than {threshold:g}", **metrics)
