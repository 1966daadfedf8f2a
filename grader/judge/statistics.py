"""Check kind "init.xavier": an initialiser's draws tested statistically (Glorot & Bengio's eq. 16).

``fn(in_size, out_size, params, name)`` must put ``W`` (in, out) drawn from U(-a, a), a = sqrt(6 / (in + out)),
and a zero bias ``b`` (out,) into ``params['W' + name]`` and ``params['b' + name]``. With n = in * out draws
the judge checks the bound, the mean and the variance 2 / (in + out) within 5 standard errors, the
Kolmogorov-Smirnov distance to the uniform law (alpha = 1e-6,
so that a correct initialiser fails about once in a million gradings), and that two calls draw different weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import GetitemOp
from grader.judge.compare import fmt_num, fmt_shape, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import failure_text
from grader.judge.params import XavierParams, params_as
from grader.judge.script import Script

KS_C = 2.7
"""sqrt(-ln(alpha / 2) / 2) for alpha = 1e-6: the asymptotic Kolmogorov-Smirnov critical value."""


def ks_uniform(x: np.ndarray, a: float) -> float:
    """Kolmogorov-Smirnov distance between the sample x and U(-a, a)."""
    s = np.sort(x.ravel())
    n = s.size
    cdf = np.clip((s + a) / (2 * a), 0.0, 1.0)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - cdf), np.max(cdf - (i - 1) / n)))


def xavier_problem(w: object, b: object, n_in: int, n_out: int, *, what: str) -> str | None:
    """What is wrong with one draw (W, b) of a Xavier-uniform initialiser, or None."""
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        return f"{what}: W is {kind_of(w)}; expected a float array of shape ({n_in}, {n_out})"
    if w.shape != (n_in, n_out):
        return f"{what}: W has shape {fmt_shape(w.shape)}; expected ({n_in}, {n_out}) = (in_size, out_size)"
    if not isinstance(b, np.ndarray) or b.shape != (n_out,):
        desc = f"shape {fmt_shape(b.shape)}" if isinstance(b, np.ndarray) else kind_of(b)
        return f"{what}: b has {desc}; expected zeros of shape ({n_out},)"
    if np.any(b != 0):
        return f"{what}: b must be all zeros (got {fmt_num(float(np.abs(b).max()))} at most)"
    n = w.size
    a = math.sqrt(6.0 / (n_in + n_out))
    var = 2.0 / (n_in + n_out)
    if not np.isfinite(w).all():
        return f"{what}: W contains NaN or infinity"
    top = float(np.abs(w).max())
    if top > a * (1 + 1e-9):
        return (f"{what}: W has |w| = {top:.4g} beyond the Xavier-uniform bound sqrt(6 / (in + out)) = {a:.4g} "
                "(a uniform distribution on [-bound, bound] is asked for)")
    mean = float(w.mean())
    if abs(mean) > 5 * math.sqrt(var / n):
        return f"{what}: W has mean {mean:.4g}; expected 0 (within {5 * math.sqrt(var / n):.2g})"
    got_var = float(w.var())
    tol = 5 * math.sqrt(0.8 / n)  # relative standard error of the variance of n uniform draws
    if abs(got_var / var - 1) > tol:
        return (f"{what}: W has variance {got_var:.4g}; Xavier initialisation has Var[w] = 2 / (in + out) = "
                f"{var:.4g} (relative difference {abs(got_var / var - 1):.1%}, allowed {tol:.1%})")
    d = ks_uniform(w, a)
    if d > KS_C / math.sqrt(n):
        return (f"{what}: W does not look uniform on [-{a:.3g}, {a:.3g}] (Kolmogorov-Smirnov distance {d:.3g} > "
                f"{KS_C / math.sqrt(n):.3g})")
    return None


@dataclass(frozen=True, slots=True)
class Draw:
    """One call of the initializer: its sizes and layer name, and the ops reading the W and b it stored."""

    n_in: int
    n_out: int
    name: str
    w: int
    b: int


@dataclass(frozen=True, slots=True)
class XavierFacts:
    draws: tuple[Draw, ...]
    """In pairs of layers of the same size (each pair must differ)."""


class XavierInit:
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, XavierParams)
        script = Script(assignment=assignment, module=check.module, inputs=inputs, rng=rng)
        script.import_module()
        draws = []
        for n_in, n_out in p.sizes:
            for name in ("layer1", "output"):
                params = script.fresh("params")
                script.step({"call": p.fn, "args": [n_in, n_out, {"dict": {}, "as": params}, name],
                             "check": False, "label": f"{p.fn}({n_in}, {n_out}, params, '{name}')"})
                w = script.add(GetitemOp(ref=params, key=f"W{name}",
                                         what=f"reading params['W{name}'] after {p.fn}({n_in}, {n_out}, params, '{name}')"))
                b = script.add(GetitemOp(ref=params, key=f"b{name}",
                                         what=f"reading params['b{name}'] after {p.fn}({n_in}, {n_out}, params, '{name}')"))
                draws.append(Draw(n_in=n_in, n_out=n_out, name=name, w=w, b=b))
        return Plan(ops=script.ops, facts=XavierFacts(draws=tuple(draws)), use_reference=False)

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        fn = params_as(check.params, XavierParams).fn
        if (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(msg)
        draws = plan.facts_as(XavierFacts).draws
        for d in draws:
            what = f"{fn}({d.n_in}, {d.n_out}, params, '{d.name}')"
            if (msg := xavier_problem(run.value(d.w), run.value(d.b), d.n_in, d.n_out, what=what)) is not None:
                return Verdict.fail(msg)
        for d1, d2 in zip(draws[::2], draws[1::2], strict=True):
            if np.array_equal(run.value(d1.w), run.value(d2.w)):
                return Verdict.fail(f"{fn} drew the same W for layers '{d1.name}' and '{d2.name}' of the "
                                    "same size: draw fresh random numbers (do not reseed inside the function)")
        return Verdict.ok()
