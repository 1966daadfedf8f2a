"""Check kind: a composed network of the student's layers, forward, backward and one SGD step.

Its subject is the composition (the seed's training loop over the student's layers), not the layers' values,
which their own checks judge. Every step of the network is therefore compared with its twin: the same layer
kind, freshly built with the same parameters, called alone on a copy of the very input (and upstream gradient)
that step got in the network. The network fails where a step computes something else than its twin (layers
that share state, depend on what other layers did, or change arrays other layers still use), or where a step
crashes or returns no array. Where the network's values differ from the reference's while every step matches its
twin, the layers' own faults explain the difference, and their checks cost it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.harness.op_messages import CallOp, GetattrOp, ImportOp, NewOp, OpRequest, SetattrOp, SgdOp
from grader.judge.compare import as_array, compare_array, kind_of
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.layers import ATOL, RTOL, LayerDesc, failure_text, random_params
from grader.judge.params import NetworkParams, params_as


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """Which op holds each step of the composed network, and of the same step on its own (its twin)."""

    ops: dict[str, int]
    """Step label -> op index, in execution order."""
    twins: dict[str, int]
    arch: str
    chain_end: int
    """The number of ops of the network's own pass (the twins follow)."""


class Network:
    """As in the seed's training loop: forward through every layer and the loss head, backward in
    reverse, ``param_value -= lr * grads[name].mean(axis=0)``, forward again."""

    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs, rng: np.random.Generator) -> Plan:
        p = params_as(check.params, NetworkParams)
        batch, lr = p.batch, p.lr
        descs: list[tuple[LayerDesc, dict[str, Any]]] = [(LayerDesc.from_spec(assignment, item.layer), dict(item.sizes))
                                                         for item in p.layers]
        head = LayerDesc.from_spec(assignment, p.head)
        names = [d.name for d, _ in descs]
        arch = "-".join(names) + f" with the {head.name} head"
        ops: list[OpRequest] = []
        labels: dict[str, int] = {}
        twins: dict[str, int] = {}

        def add(op: OpRequest, label: str | None = None) -> int:
            ops.append(op)
            if label:
                labels[label] = len(ops) - 1
            return len(ops) - 1

        def copy(ref: str) -> dict[str, str]:
            """A copy of what a step returned, taken before the next step can touch it: its twin's input."""
            add(CallOp(ref=ref, method="copy", as_=f"{ref}~", report=False,
                       what=f"copying the array passed on in {arch}"))
            return {"$ref": f"{ref}~"}

        def fresh(k: int, d: LayerDesc, sizes: dict[str, Any], params: dict[str, Any], tag: str) -> str:
            name = f"T{k}{tag}"
            add(NewOp(module=d.module, name=d.name, args=d.ctor_args(sizes), as_=name,
                      report=False, what=f"{d.name}({', '.join(map(str, d.ctor_args(sizes)))}) on its own"))
            for pname, value in params.items():
                add(SetattrOp(ref=name, attr=pname, value=value,
                              what=f"setting {d.name}.{pname} of the layer on its own"))
            return name

        for module in dict.fromkeys(d.module for d, _ in [*descs, (head, {})]):
            add(ImportOp(module=module, what=f"importing {module}.py"))
        start: list[dict[str, Any]] = []
        for k, (d, sizes) in enumerate(descs):
            add(NewOp(module=d.module, name=d.name, args=d.ctor_args(sizes), as_=f"L{k}",
                      report=False, what=f"{d.name}({', '.join(map(str, d.ctor_args(sizes)))})"))
            start.append({pname: inputs.add(value) for pname, value in random_params(d, sizes, rng).items()})
            for pname, value in start[-1].items():
                add(SetattrOp(ref=f"L{k}", attr=pname, value=value,
                              what=f"setting {d.name}.{pname}"))
        add(NewOp(module=head.module, name=head.name, args=[], as_="H", report=False,
                  what=f"{head.name}()"))
        in_dim = int(descs[0][1].get("input_dim", 4))
        x = inputs.add(rng.normal(size=(batch, in_dim)))
        y_gt = inputs.add(rng.integers(0, 2, size=(batch, 1)).astype(np.float64))

        def forward_pass(tag: str) -> list[dict[str, Any]]:
            """The chain's forward steps; the inputs each layer (and the head) got, copied, for the twins."""
            got: list[dict[str, Any]] = [x]
            prev: dict[str, Any] = x
            for k, (d, _) in enumerate(descs):
                add(CallOp(ref=f"L{k}", method="forward", args=[prev], as_=f"{tag}a{k}",
                           what=f"{d.name}.forward (layer {k + 1} of {arch})"), f"{d.name}.forward output (layer {k + 1}, {tag})")
                prev = {"$ref": f"{tag}a{k}"}
                got.append(copy(f"{tag}a{k}"))
            add(CallOp(ref="H", method="forward", args=[prev, y_gt],
                       what=f"{head.name}.forward in {arch}"), f"{head.name}.forward loss ({tag})")
            return got

        first = forward_pass("first pass")
        add(CallOp(ref="H", method="backward", as_="g_head", what=f"{head.name}.backward in {arch}"),
            f"{head.name}.backward output")
        upstream = {len(descs): copy("g_head")}
        prev: dict[str, Any] = {"$ref": "g_head"}
        for k in reversed(range(len(descs))):
            d = descs[k][0]
            add(CallOp(ref=f"L{k}", method="backward", args=[prev], as_=f"g{k}",
                       what=f"{d.name}.backward (layer {k + 1} of {arch})"), f"{d.name}.backward output (layer {k + 1})")
            prev = {"$ref": f"g{k}"}
            upstream[k] = copy(f"g{k}")
        add(SgdOp(layers=[f"L{k}" for k in range(len(descs))], lr=lr,
                  what=f"the SGD update param_value -= lr * grads[name].mean(axis=0) over {arch}"))
        second = forward_pass("after one SGD step")
        chain_end = len(ops)

        # the twins: each step again, alone, on copies of what it got in the network
        for k, (d, sizes) in enumerate(descs):
            t = fresh(k, d, sizes, start[k], "f")
            twins[f"{d.name}.forward output (layer {k + 1}, first pass)"] = add(
                CallOp(ref=t, method="forward", args=[first[k]],
                       what=f"{d.name}.forward of layer {k + 1} on its own"))
            t = fresh(k, d, sizes, start[k], "b")
            add(CallOp(ref=t, method="forward", args=[first[k]], report=False,
                       what=f"{d.name}.forward of layer {k + 1} on its own"))
            twins[f"{d.name}.backward output (layer {k + 1})"] = add(
                CallOp(ref=t, method="backward", args=[upstream[k + 1]],
                       what=f"{d.name}.backward of layer {k + 1} on its own"))
            updated = {}
            for pname in d.params:
                add(GetattrOp(ref=f"L{k}", attr=pname, as_=f"L{k}.{pname}", report=False,
                              what=f"reading {d.name}.{pname} after the SGD step"))
                updated[pname] = copy(f"L{k}.{pname}")
            t = fresh(k, d, sizes, updated, "s")
            twins[f"{d.name}.forward output (layer {k + 1}, after one SGD step)"] = add(
                CallOp(ref=t, method="forward", args=[second[k]],
                       what=f"{d.name}.forward of layer {k + 1} on its own after the SGD step"))
        for tag, got in (("first pass", first), ("after one SGD step", second)):
            add(NewOp(module=head.module, name=head.name, args=[], as_=f"TH{tag}",
                      report=False, what=f"{head.name}() on its own"))
            twins[f"{head.name}.forward loss ({tag})"] = add(
                CallOp(ref=f"TH{tag}", method="forward", args=[got[-1], y_gt],
                       what=f"{head.name}.forward on its own"))
            if tag == "first pass":
                twins[f"{head.name}.backward output"] = add(
                    CallOp(ref=f"TH{tag}", method="backward", what=f"{head.name}.backward on its own"))
        return Plan(ops=ops, facts=NetworkFacts(ops=labels, twins=twins, arch=arch, chain_end=chain_end))

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict:
        assert ref is not None
        facts = plan.facts_as(NetworkFacts)
        arch, twins, chain_end = facts.arch, facts.twins, facts.chain_end
        chain_ran = len(run.results) >= chain_end and not any(r.error for r in run.results[:chain_end])
        if not chain_ran and (msg := failure_text(run, plan)) is not None:
            return Verdict.fail(f"In the network {arch}: {msg}")
        differs = None  # the first step whose value differs from the reference's (the layers' own checks judge it)
        for label, i in facts.ops.items():  # in execution order: the first wrong step is named
            got = run.value(i)
            if as_array(got) is None:
                return Verdict.fail(f"In the network {arch}: {label} is {kind_of(got)}; expected a numpy array")
            j = twins[label]
            if j >= len(run.results) or run.results[j].error:
                msg = failure_text(run, plan) or "was not run"
                return Verdict.fail(f"In the network {arch}: {label} was computed, but the same step on its own "
                                    f"could not be: {msg}")
            alone = as_array(run.value(j))
            if alone is None:
                return Verdict.fail(f"In the network {arch}: {label}: the same layer on its own returned "
                                    f"{kind_of(run.value(j))}")
            if (detail := compare_array(got, alone, what=label, rtol=1e-9, atol=1e-12)) is not None:
                return Verdict.fail(f"In the network {arch}: {detail}, where 'expected' is what the same layer "
                                    "computes on its own from a copy of the same input: layers must not share state "
                                    "or change arrays that other layers still use")
            if differs is None and compare_array(got, ref.value(i), what=label, rtol=RTOL, atol=ATOL) is not None:
                differs = label
        if differs is not None:
            return Verdict.ok(f"In the network {arch}, {differs} differs from the reference, as the layer does on "
                              "its own: its own checks judge that")
        return Verdict.ok()
