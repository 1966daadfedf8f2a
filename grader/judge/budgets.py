"""Time budgets of the ops of one grading, and which student call an op makes (to fail fast after a hang).

An op's budget is the floor for its kind (the assignment's limits: import_s, build_s, predict_s, op_s) or
FACTOR times what the trusted reference took for the same op, whichever is larger, never more than the
grading's wall budget. Hidden-set predictions, the long ops, are timed on the reference over one batch (once
per process and check) and scaled to the set's size, so a hung forward costs about a minute, not the wall
budget. After a call hangs, the checks that would make the same call fail at once, saying why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.harness.op_messages import CallOp, ImportOp, NewOp, OpKind, OpRequest, PredictOp, TorchProbeOp
from grader.harness.ops import Interpreter
from grader.judge.context import GroupRun
from grader.judge.reference import reference_module
from grader.sandbox import RunLimits

FACTOR = 10.0
TIMING_IMAGES = 32
"""Images the reference is timed on: a small batch (its cost per image is, if anything, higher than in the
op's own batches, so the budget errs long), which keeps the judge's memory low (MobileNetV2 on 250 images of
96x96 held some 500 MiB in the judge)."""
BUILD_OPS = frozenset({OpKind.NEW, OpKind.TORCH_LOAD, OpKind.LOAD_STATE_DICT, OpKind.TORCH_PROBE, OpKind.STATE_KEYS})

Call = tuple[str, ...]
"""A student call: ("fn", module, name), (module, class, method) or (module, class, "__init__")."""

_rates: dict[tuple[str, str, int], float | None] = {}
_rates_lock = threading.Lock()


def floor_budget(op: OpRequest, limits: RunLimits) -> float:
    kind = op.KIND
    if kind is OpKind.IMPORT:
        return limits.import_s
    if kind is OpKind.PREDICT:
        return limits.predict_s
    if kind in BUILD_OPS:
        return limits.build_s
    return limits.op_s


def op_budgets(ops: Sequence[OpRequest], limits: RunLimits, ref: GroupRun | None,
               predict_s: dict[int, float] | None = None) -> tuple[float, ...]:
    """Budget of each op: its floor, or FACTOR x the reference's time for it, capped by the wall budget."""
    out = []
    for i, op in enumerate(ops):
        budget = floor_budget(op, limits)
        ref_s = (predict_s or {}).get(i)
        if ref_s is None and ref is not None and i < len(ref.results) and not isinstance(op, ImportOp):
            ref_s = ref.results[i].seconds
        if ref_s:
            budget = max(budget, FACTOR * ref_s)
        out.append(min(budget, limits.wall_s))
    return tuple(out)


def reference_predict_seconds(*, key: tuple[str, str], ops: Sequence[OpRequest],
                              reference_dir: Path, data_dir: Path, inputs: Mapping[str, Any],
                              counts: Mapping[str, int]) -> dict[int, float]:
    """For each predict op of a plan: the reference's time for it, estimated from one timed batch.

    `counts` maps the plan's dataset names to their number of images. The rate is measured once per
    process and check; when the reference cannot run the plan (no checkpoint of its own), nothing."""
    predicts = [i for i, op in enumerate(ops) if isinstance(op, PredictOp)]
    if not predicts:
        return {}
    first = predicts[0]
    cache_key = (*key, first)
    with _rates_lock:
        known = cache_key in _rates
        rate = _rates.get(cache_key)
    if not known:
        rate = _time_one_batch(ops[: first + 1], reference_dir=reference_dir, data_dir=data_dir,
                               inputs=inputs)
        with _rates_lock:
            _rates[cache_key] = rate
    if rate is None:
        return {}
    return {i: rate * counts.get(op.data, 0) for i in predicts if isinstance(op := ops[i], PredictOp)}


def _time_one_batch(ops: Sequence[OpRequest], *, reference_dir: Path, data_dir: Path,
                    inputs: Mapping[str, Any]) -> float | None:
    """Seconds per image of the reference on the first TIMING_IMAGES images of the last (predict) op."""

    def load(name: str) -> Any:
        return reference_module(reference_dir, name)

    interp = Interpreter(load_module=load, inputs=inputs, data_dir=data_dir, submission_dir=reference_dir)
    *setup, predict = ops
    assert isinstance(predict, PredictOp)
    batch = min(int(predict.batch if predict.batch is not None else 256), TIMING_IMAGES)
    try:
        for op in setup:
            interp.run(op)
        t0 = time.perf_counter()
        out = interp.run(replace(predict, limit=batch, batch=batch))
        seconds = time.perf_counter() - t0
    except Exception:  # the reference has no such model or checkpoint: the floors apply
        return None
    n = len(out) if out is not None and hasattr(out, "__len__") else 0
    return seconds / n if n else None


def op_calls(ops: Sequence[OpRequest]) -> list[set[Call]]:
    """For each op, the student calls it makes (classes of kept objects come from the plan's "new" ops)."""
    classes: dict[str, tuple[str, str]] = {}
    out: list[set[Call]] = []
    for op in ops:
        calls: set[Call] = set()
        ref = getattr(op, "ref", None)
        cls = classes.get(ref if isinstance(ref, str) else "")
        if isinstance(op, NewOp) and op.module is not None and op.name is not None:
            calls.add((op.module, op.name, "__init__"))
            if op.as_ is not None:
                classes[op.as_] = (op.module, op.name)
        elif isinstance(op, CallOp) and op.ref is None and op.name is not None and op.module is not None:
            calls.add(("fn", op.module, op.name))
        elif isinstance(op, CallOp) and cls is not None:
            calls.add((*cls, op.method if op.method is not None else "forward"))
        elif isinstance(op, TorchProbeOp | PredictOp) and cls is not None:
            calls.add((*cls, "forward"))
        if isinstance(op, PredictOp):
            calls.add(("fn", op.fn_module, op.fn))
        out.append(calls)
    return out


def hung_call(calls: set[Call], where: str) -> Call | None:
    """The call a hung op was most likely stuck in: the one named by the stack dump's innermost student
    function, else a model's forward, else any."""
    if not calls:
        return None
    name = where.rsplit(" in ", 1)[-1] if " in " in where else ""
    for c in sorted(calls):
        if name and c[-1] == name:
            return c
    for c in sorted(calls):
        if c[-1] == "forward":
            return c
    return sorted(calls)[0]


def call_name(call: Call) -> str:
    if call[0] == "fn":
        return call[2]
    return f"{call[1]}()" if call[2] == "__init__" else f"{call[1]}.{call[2]}"
