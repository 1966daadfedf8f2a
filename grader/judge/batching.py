"""Check kind "batches.partition": ``fn(x, y, batch_size)`` must split the data into random batches that
partition it: every row exactly once, x and y rows kept together, every batch of ``batch_size`` rows
except at most one smaller last batch, and a new random order on every call.

Row i of the judge's x carries its index i in column 0, so the judge can tell which rows came back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import CallOp
from grader.judge.compare import fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import failure_text
from grader.judge.params import BatchPartitionParams, params_as
from grader.judge.script import Script


def _pairs(value: Any) -> list[Any] | None:
    return value.get("$list") if isinstance(value, dict) else None


def partition_problem(value: Any, x: np.ndarray, y: np.ndarray, batch_size: int, *, what: str,
                      near_equal: bool = False) -> str | list[int]:
    """The row order of a valid partition, or what is wrong with the returned batches. With `near_equal`, batches
    of sizes that differ by at most one (np.array_split into n // batch_size or ceil(n / batch_size) parts) count
    too."""
    batches = _pairs(value)
    n = len(x)
    want = math.ceil(n / batch_size)
    if batches is None:
        return f"{what} returned {kind_of(value)}; expected a list of (x_batch, y_batch) pairs"
    order: list[int] = []
    sizes = []
    for j, item in enumerate(batches):
        pair = _pairs(item)
        if pair is None or len(pair) != 2:
            return f"{what}: batch {j} is {kind_of(item)}; expected a pair (x_batch, y_batch)"
        xb, yb = pair
        if not isinstance(xb, np.ndarray) or xb.ndim != 2 or xb.shape[1] != x.shape[1]:
            return f"{what}: x of batch {j} is {kind_of(xb)}; expected shape (rows, {x.shape[1]})"
        if not isinstance(yb, np.ndarray) or yb.shape != (len(xb), y.shape[1]):
            return (f"{what}: y of batch {j} is {kind_of(yb)}; expected shape ({len(xb)}, {y.shape[1]}), "
                    "one label row per x row")
        ids = xb[:, 0]
        if not np.all(np.isin(ids, np.arange(n))):
            return f"{what}: batch {j} holds x rows that are not rows of x"
        ids = ids.astype(np.int64)
        if not np.array_equal(xb, x[ids]):
            return f"{what}: batch {j} holds altered x rows"
        if not np.array_equal(yb, y[ids]):
            return f"{what}: in batch {j} the y rows do not belong to the x rows (keep x[i] and y[i] together)"
        order += ids.tolist()
        sizes.append(len(xb))
    counts = np.bincount(np.asarray(order, dtype=np.int64), minlength=n) if order else np.zeros(n, dtype=np.int64)
    if (counts == 0).any():
        return (f"{what} for {n} rows and batch_size={batch_size} left out {int((counts == 0).sum())} row(s) "
                "(every row must be in exactly one batch)")
    if (counts > 1).any():
        return f"{what} put {int((counts > 1).sum())} row(s) into more than one batch"
    full = sum(s == batch_size for s in sizes)
    exact = len(sizes) == want and full >= len(sizes) - 1 and all(0 < s <= batch_size for s in sizes)
    near = (near_equal and len(sizes) in (max(1, n // batch_size), want) and bool(sizes)
            and max(sizes) - min(sizes) <= 1 and min(sizes) > 0)
    if not (exact or near):
        return (f"{what} for {n} rows and batch_size={batch_size} returned {len(sizes)} batches of sizes "
                f"{sizes[:8]}{'...' if len(sizes) > 8 else ''}; expected {want} batches of {batch_size} rows "
                f"(the last may be smaller)")
    return order


@dataclass(frozen=True, slots=True)
class PartitionCase:
    """One case: the judge's x and y, the batch size, and the ops of its two calls."""

    x: np.ndarray
    y: np.ndarray
    batch_size: int
    ops: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PartitionFacts:
    cases: tuple[PartitionCase, ...]


class BatchPartition:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, BatchPartitionParams)
        script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        script.import_module()
        cases = []
        for case in p.cases:
            n, bs, dim, k = case.n, case.batch_size, case.dim, case.classes
            x = np.concatenate([np.arange(n, dtype=np.float64)[:, None], rng.normal(size=(n, dim - 1))], axis=1)
            y = np.eye(k)[rng.integers(0, k, size=n)]
            ops = []
            for _ in range(2):
                ops.append(script.add(CallOp(module=check.module, name=p.fn,
                                             args=[inputs.add(x), inputs.add(y), bs],
                                             what=f"{p.fn}(x of shape {fmt_shape(x.shape)}, y, {bs})")))
            cases.append(PartitionCase(x=x, y=y, batch_size=bs, ops=tuple(ops)))
        return Plan(ops=script.ops, facts=PartitionFacts(cases=tuple(cases)), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        p = params_as(check.params, BatchPartitionParams)
        fn = p.fn
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        for case in plan.facts_as(PartitionFacts).cases:
            orders = []
            for i in case.ops:
                what = f"{fn}(x of shape {fmt_shape(case.x.shape)}, y, {case.batch_size})"
                got = partition_problem(run.value(i), case.x, case.y, case.batch_size, what=what,
                                        near_equal=p.near_equal)
                if isinstance(got, str):
                    return Verdict.fail(got)
                orders.append(got)
            n = len(case.x)
            if orders[0] == list(range(n)) or orders[0] == orders[1]:
                return Verdict.fail(f"{fn} must shuffle: two calls returned the rows in the same order"
                                    + (" (the original order)" if orders[0] == list(range(n)) else ""))
        return Verdict.ok()
