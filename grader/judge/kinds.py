"""The closed set of check kinds an assignment spec can name.

Each kind's params are typed by its model in grader.judge.params.PARAMS (same keys as KINDS, which a test holds
to), validated when the spec loads; the kinds read them through params_as.

A kind whose checks evaluate a hidden set (accuracy on hidden test images) says so with the class attribute
``slow = True``: the server grades those checks in the slow phase of a grading, after the quick ones (interfaces,
layers, gradients, builds, checkpoints), in a lane of their own (server.services.lanes). A check may override its
kind's default with ``slow = true|false`` in assignment.toml (grader.assignments.spec.CheckSpec.slow)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from grader.assignments import AssignmentSpec, CheckSpec
from grader.judge.batching import BatchPartition
from grader.judge.classifier import ClassifierLogSoftmax, ClassifierNll
from grader.judge.context import GroupRun, Inputs, Plan, Verdict
from grader.judge.functions import Function
from grader.judge.layers import LayerBackward, LayerForward, LayerGradcheck, LayerInterface, LayerParams
from grader.judge.network import Network
from grader.judge.predictions import Predictions
from grader.judge.shapes import TorchParamShapes
from grader.judge.statistics import XavierInit
from grader.judge.torch_models import TorchAccuracy, TorchBuild, TorchCheckpoint, TorchClassify


class Kind(Protocol):
    def plan(self, check: CheckSpec, assignment: AssignmentSpec, inputs: Inputs,
             rng: np.random.Generator) -> Plan: ...

    def judge(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
              ref: GroupRun | None) -> Verdict: ...


@runtime_checkable
class FollowUpKind(Kind, Protocol):
    """A kind that may ask for a second round of ops after its verdict (see grader.engine._follow_up)."""

    def follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun, verdict: Verdict,
                  inputs: Inputs, rng: np.random.Generator) -> Plan | None: ...

    def judge_follow_up(self, check: CheckSpec, assignment: AssignmentSpec, plan: Plan, run: GroupRun,
                        verdict: Verdict) -> Verdict: ...


KINDS: dict[str, Kind] = {
    "layer.interface": LayerInterface(),
    "layer.forward": LayerForward(),
    "layer.backward": LayerBackward(),
    "layer.gradcheck": LayerGradcheck(),
    "layer.params": LayerParams(),
    "network": Network(),
    "torch.build": TorchBuild(),
    "torch.checkpoint": TorchCheckpoint(),
    "torch.classify": TorchClassify(),
    "torch.accuracy": TorchAccuracy(),
    "function": Function(),
    "init.xavier": XavierInit(),
    "batches.partition": BatchPartition(),
    "predictions": Predictions(),
    "classifier.nll": ClassifierNll(),
    "classifier.logsoftmax": ClassifierLogSoftmax(),
    "torch.param_shapes": TorchParamShapes(),
}


def slow_kind(kind: str) -> bool:
    """Whether checks of `kind` are slow by default (they evaluate a hidden set); False for an unknown kind."""
    return bool(getattr(KINDS.get(kind), "slow", False))
