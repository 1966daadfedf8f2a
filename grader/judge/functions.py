"""Check kind "function": calls into the student's functions and classes with judge-chosen inputs,
compared value by value with the reference solution running the very same steps.

Params: ``cases`` (each ``steps``, see script.py, or the shorthand ``args``/``kwargs`` for one call of
``fn``), tolerances ``rtol``/``atol``, ``dtype = true`` to insist on the reference's tensor dtypes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import CallOp
from grader.judge import units
from grader.judge.compare import compare_array, fmt_num, fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import changed_text, failure_text
from grader.judge.params import FunctionParams, params_as
from grader.judge.script import Script


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How close a student's value must be to the reference's, and whether tensor dtypes must match."""

    rtol: float
    atol: float
    dtype: bool = False


def compare_value(got: Any, want: Any, *, what: str, rtol: float, atol: float, dtype: bool = False) -> str | None:
    """None when a raw student value matches the reference's raw value; else one sentence saying how not."""
    return _compare(got, want, what, Tolerance(rtol=rtol, atol=atol, dtype=dtype))


def _compare(got: Any, want: Any, what: str, tol: Tolerance) -> str | None:
    """Dispatch on the reference's raw value (see ops.describe); objects and None: nothing to compare."""
    if isinstance(want, np.ndarray):
        return _compare_array(got, want, what, tol)
    if isinstance(want, bool):
        return None if got is want or got == want else f"{what} is {kind_of(got)}; expected {want}"
    if isinstance(want, int | float):
        return _compare_number(got, want, what, tol)
    if isinstance(want, str):
        return None if got == want else f"{what} is {got!r}; expected {want!r}"
    if isinstance(want, dict):
        for key, comparer in _DESCRIBED:
            if key in want:
                return comparer(got, want, what, tol)
    return None


def _compare_array(got: Any, want: np.ndarray, what: str, tol: Tolerance) -> str | None:
    if isinstance(got, int | float) and want.size == 1:
        got = np.asarray(got).reshape(want.shape)
    return compare_array(got, want, what=what, rtol=tol.rtol, atol=tol.atol)


def _as_number(got: Any) -> Any:
    """A one-element numeric array or tensor as the number it holds; anything else as it is."""
    if isinstance(got, np.ndarray) and got.size == 1 and got.dtype.kind in "biuf":
        return got.item()
    if isinstance(got, dict) and isinstance(got.get("$tensor"), np.ndarray) and got["$tensor"].size == 1:
        return got["$tensor"].item()
    return got


def _compare_number(got: Any, want: float, what: str, tol: Tolerance) -> str | None:
    got = _as_number(got)
    if not isinstance(got, int | float) or isinstance(got, bool):
        return f"{what} is {kind_of(got)}; expected a number"
    if np.isclose(got, want, rtol=tol.rtol, atol=tol.atol) or (np.isnan(want) and np.isnan(got)):
        return None
    return f"{what} is wrong (got {fmt_num(float(got))}, expected {fmt_num(float(want))})"


def _compare_tensor(got: Any, want: dict[str, Any], what: str, tol: Tolerance) -> str | None:
    if not (isinstance(got, dict) and "$tensor" in got):
        return f"{what} is {kind_of(got)}; expected a torch tensor"
    if tol.dtype and got.get("dtype") != want.get("dtype"):
        return f"{what} is a tensor of dtype {got.get('dtype')}; expected {want.get('dtype')}"
    arr, ref = got["$tensor"], want["$tensor"]
    if not isinstance(ref, np.ndarray):
        return None
    if isinstance(arr, np.ndarray) and arr.size == ref.size == 1:
        arr = arr.reshape(ref.shape)  # the wire carries 0-d arrays as (1,)
    if isinstance(arr, np.ndarray) and arr.shape != ref.shape:
        return f"{what} has shape {fmt_shape(arr.shape)}; expected {fmt_shape(ref.shape)}"
    return compare_array(arr, ref, what=what, rtol=tol.rtol, atol=tol.atol)


def _compare_list(got: Any, want: dict[str, Any], what: str, tol: Tolerance) -> str | None:
    items = got.get("$list") if isinstance(got, dict) else None
    if items is None:
        return f"{what} is {kind_of(got)}; expected a {want.get('type', 'list')} of {len(want['$list'])}"
    if len(items) != len(want["$list"]):
        return f"{what} has {len(items)} items; expected {len(want['$list'])}"
    for i, (g, w) in enumerate(zip(items, want["$list"], strict=True)):
        if (msg := _compare(g, w, f"{what}[{i}]", tol)) is not None:
            return msg
    return None


def _compare_dict(got: Any, want: dict[str, Any], what: str, tol: Tolerance) -> str | None:
    d = got.get("$dict") if isinstance(got, dict) else None
    if d is None:
        return f"{what} is {kind_of(got)}; expected a dict"
    missing = sorted(set(want["$dict"]) - set(d))
    if missing:
        return f"{what} has no key {missing[0]!r}"
    for k, w in want["$dict"].items():
        if (msg := _compare(d[k], w, f"{what}[{k!r}]", tol)) is not None:
            return msg
    return None


_Comparer = Callable[[Any, dict[str, Any], str, Tolerance], str | None]
_DESCRIBED: tuple[tuple[str, _Comparer], ...] = (
    ("$tensor", _compare_tensor), ("$list", _compare_list), ("$dict", _compare_dict))
"""Comparers of described values (ops.describe), by their marker key, in the order they are tried."""


def _numbers(v: Any) -> np.ndarray | None:
    a = v.get("$tensor") if isinstance(v, dict) and "$tensor" in v else v
    return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind in "fc" and a.ndim >= 1 else None


def log_hint(got: Any, want: Any) -> str:
    """Where probabilities and log-probabilities are mixed up: a sentence saying so, else ""."""
    g, w = _numbers(got), _numbers(want)
    if g is None or w is None or g.shape != w.shape or not np.isfinite(g).all():
        return ""
    with np.errstate(all="ignore"):
        if np.all(w >= 0) and np.allclose(w.sum(axis=-1), 1.0, atol=1e-4) and np.allclose(np.exp(g), w, atol=1e-5):
            return " (these look like log-probabilities: probabilities are expected)"
        if np.allclose(np.exp(w).sum(axis=-1), 1.0, atol=1e-4) and np.allclose(g, np.exp(w), atol=1e-5):
            return " (these look like probabilities: log-probabilities are expected)"
    return ""


def compare_shape(got: Any, want: Any, *, what: str) -> str | None:
    """None when a raw student array or tensor has the reference's shape."""
    def shape(v: Any) -> tuple[int, ...] | None:
        a = v.get("$tensor") if isinstance(v, dict) and "$tensor" in v else v
        return tuple(a.shape) if isinstance(a, np.ndarray) else None

    w, g = shape(want), shape(got)
    if w is None or g == w:
        return None
    return f"{what} is {kind_of(got)}" + (f" of shape {fmt_shape(g)}" if g is not None and isinstance(got, dict) else "") \
        + f"; expected shape {fmt_shape(w)}"


def plan_cases(check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Script:
    p = params_as(check.params, FunctionParams)
    script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
    script.import_module()
    for case in p.cases:
        for s in case.as_steps(p.fn):
            script.step(s)
    return script


Call = tuple[str, tuple[Any, ...], dict[str, Any]]
"""A helper call the reference made: (helper, args, kwargs) (see grader.judge.units)."""


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    """Which op holds each judged value, and what the judge needs to explain a difference (see Script)."""

    checked: dict[str, int]
    """Value label -> op index."""
    shape_only: frozenset[str]
    unchanged: list[dict[str, Any]]
    """Arguments read back after their call (op, array, name, who, why)."""
    twins: dict[str, int]
    """Label -> the op computing the same value with the student's own parts, as the handout uses them."""
    given: list[dict[str, Any]]
    """Preparing calls whose resulting state later steps are judged on (call, container, key, what, read)."""
    main_end: int
    """The number of ops of the cases themselves; the helper probes (``calls``) follow."""
    arrays: dict[str, np.ndarray]
    """The grading's input arrays (for re-running the reference with the student's parts)."""
    calls: list[Call]
    """The reference's helper calls that the probes ask the student's helpers about."""


class Function:
    """Student functions and methods against the reference on the same judge-chosen inputs. ``units`` names the
    student's helper functions the subject calls that other checks judge (see grader.judge.units)."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        script = plan_cases(check, assignment, inputs, rng)
        script.read_given()
        unknown = set(script.twins) - set(script.checked)
        if unknown:
            raise ValueError(f"{check.id}: twins of labels no step has: {sorted(unknown)}")
        main_end = len(script.ops)
        p = params_as(check.params, FunctionParams)
        calls = None
        if p.units:
            calls = units.record(script.ops, reference_dir=assignment.reference_dir, module=check.module,
                                 units=list(p.units),
                                 arrays=inputs.arrays)
            if calls:
                script.ops += units.probe_ops(calls, module=check.module, inputs=inputs,
                                              subject=p.fn if p.fn is not None else check.target)
        return Plan(ops=script.ops, facts=FunctionFacts(
            checked=script.checked, shape_only=frozenset(script.shape_only), unchanged=script.unchanged,
            twins=script.twins, given=script.given, main_end=main_end, arrays=inputs.arrays, calls=calls or []))

    def _explained(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun) -> bool:
        """Whether the student's values are the reference's given the student's own other parts: the state its
        preparing calls left (``given``) and the outputs of its helpers (``units``; see units.py)."""
        facts = plan.facts_as(FunctionFacts)
        calls, given, end = facts.calls, facts.given, facts.main_end
        if not (calls or given) or len(run.results) < (len(plan.ops) if calls else end) or (
                run.error is not None and (calls or len(run.results) <= end)):
            return False
        ops, arrays = list(plan.ops[:end]), dict(facts.arrays)
        for n, g in enumerate(given):  # the student's state instead of the reference's preparing call
            value = units.plain(run.value(g["read"]), arrays, f"given{n}")
            if value is units.UNUSABLE:
                return False
            ops[g["call"]] = CallOp(ref=g["container"], method="__setitem__",
                                    args=[g["key"], value], report=False, what="the student's state")
        cf = units.counterfactual(ops, reference_dir=assignment.reference_dir, module=check.module,
                                  calls=calls, outputs=[run.value(i) for i in range(end, len(plan.ops))],
                                  arrays=arrays)
        if cf is None:
            return False
        p = params_as(check.params, FunctionParams)
        rtol, atol = p.rtol, p.atol
        return all(compare_value(run.value(i), cf[i], what=label, rtol=rtol, atol=atol) is None
                   for label, i in facts.checked.items() if label not in facts.shape_only)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, FunctionParams)
        if ref is None or ref.error:
            return Verdict.err(f"the reference solution failed on this check (grader bug): {ref and ref.error}")
        facts = plan.facts_as(FunctionFacts)
        probes = {u["op"]: u for u in facts.unchanged}
        if (changed := _reference_changes(probes, ref)) is not None:
            return Verdict.err(changed)
        twins = facts.twins
        explained = ""  # the first value that differs from the reference as the student's own other parts make it
        counterfactual = False  # every value is the reference's given the student's own helpers and state
        items = sorted([(i, label) for label, i in facts.checked.items()] + [(i, None) for i in probes])
        for i, label in items:
            if i >= len(run.results) or run.results[i].error:
                break
            if label is None:
                u = probes[i]
                if (msg := changed_text(u["who"], u["name"], u["array"], run.value(i), u["why"])) is not None:
                    return Verdict.fail(msg)
                continue
            if counterfactual:
                continue
            msg = _differs(p, facts, run, ref, i, label)
            if msg is not None and label in twins:
                if _twin_agrees(p, run, i, twins[label], label):
                    explained = explained or msg
                    continue
                return Verdict.fail(f"{msg}; your own parts used as the handout says give something else too")
            if msg is not None:
                if self._explained(check, assignment, plan, run):
                    explained = (f"{msg}; but that is what the reference gives with your own "
                                 f"{_own_parts(p, facts, run, ref) or 'other parts'}, whose own check costs it")
                    counterfactual = True
                    continue
                return Verdict.fail(msg)
        # a failure after the last judged value (in a twin, or asking a helper) leaves the judged values standing
        end = max([i for i, _ in items], default=len(plan.ops) - 1) + 1
        if (msg := failure_text(GroupRun(results=run.results[:end]), Plan(ops=plan.ops[:end]))) is not None:
            return Verdict.fail(msg)
        return _passed(explained, counterfactual=counterfactual)


def _differs(p: FunctionParams, facts: FunctionFacts, run: GroupRun, ref: GroupRun, i: int, label: str) -> str | None:
    """How the student's value of op `i` differs from the reference's (its shape only, for a random value)."""
    if label in facts.shape_only:
        return compare_shape(run.value(i), ref.value(i), what=label)
    msg = compare_value(run.value(i), ref.value(i), what=label, rtol=p.rtol, atol=p.atol, dtype=p.dtype)
    return msg + log_hint(run.value(i), ref.value(i)) if msg is not None else None


def _twin_agrees(p: FunctionParams, run: GroupRun, i: int, j: int, label: str) -> bool:
    """Whether the student's value of op `i` is the one its twin (op `j`, the student's own parts) gives."""
    twin = run.value(j) if j < len(run.results) and not run.results[j].error else None
    return twin is not None and compare_value(run.value(i), twin, what=label, rtol=p.rtol, atol=p.atol) is None


def _own_parts(p: FunctionParams, facts: FunctionFacts, run: GroupRun, ref: GroupRun) -> str:
    """The student's helpers and preparing calls whose values differ from the reference's, comma-separated."""
    end, rtol, atol = facts.main_end, p.rtol, p.atol
    parts = list(dict.fromkeys(
        name for k, (name, _, _) in enumerate(facts.calls)
        if compare_value(run.value(end + k), ref.value(end + k), what="", rtol=rtol, atol=atol)))
    parts += [f"{g['container']}[{g['key']!r}]" for g in facts.given
              if compare_value(run.value(g["read"]), ref.value(g["read"]), what="", rtol=rtol, atol=atol)]
    return ", ".join(parts)


def _reference_changes(probes: dict[int, dict[str, Any]], ref: GroupRun) -> str | None:
    """The grader bug of a reference that changes an argument it must leave as it was, or None."""
    for i, u in probes.items():
        if changed_text(u["who"], u["name"], u["array"], ref.value(i), u["why"]) is not None:
            return f"the reference solution changes {u['name']} of {u['who']} (grader bug)"
    return None


def _passed(explained: str, *, counterfactual: bool) -> Verdict:
    """The verdict of a check whose values all stand: as the reference's, or as the student's own parts make them."""
    if counterfactual:
        return Verdict.ok(explained)
    if explained:
        return Verdict.ok(f"{explained}; but so do your own parts used as the handout says: their own checks "
                          "cost that")
    return Verdict.ok()
