"""nd-hw04: the reference notebook, the spec, and the harness op that loads hand-written layers' tensors."""

from __future__ import annotations

import pytest
import torch

from grader.assignments import load_assignment
from grader.harness.ops import Interpreter, OpError
from tests.test_assignment_helpers import assert_notebook_in_sync


def test_reference_notebook_is_built_from_the_module() -> None:
    assert_notebook_in_sync("nd_hw04", "hw04.ipynb")


def test_spec() -> None:
    spec = load_assignment("nd-hw04")
    assert spec.files == ("hw04.ipynb", "scratch_ffn.pt", "ffn.pt", "cnn.pt")
    required = sum(c.points for c in spec.checks if c.required)
    assert required == 14 and spec.max_score == 17
    assert {c.target for c in spec.checks if not c.required} == {"ConvolutionalLayer", "MaxPoolingLayer", "FlattenLayer"}
    assert "weights_only=True" in spec.page and "(output_dim, input_dim)" in spec.page


class Layer:
    def __init__(self) -> None:
        self.W = torch.zeros(3, 2)
        self.b = torch.zeros(1, 3)


class Net:
    def __init__(self) -> None:
        self.layers = [Layer(), object(), Layer()]


def run_assign(state: object) -> Net:
    net = Net()
    interp = Interpreter(load_module=lambda name: None, inputs={})  # type: ignore[arg-type,return-value]
    interp.refs.update(net=net, state=state)
    interp.run({"op": "assign_state", "ref": "net", "state": "state"})
    return net


def test_assign_state_puts_saved_tensors_into_layers() -> None:
    net = run_assign({"layers.0.W": torch.ones(3, 2), "layers.2.b": torch.full((1, 3), 2.0)})
    assert net.layers[0].W.sum() == 6 and net.layers[2].b.sum() == 6 and net.layers[2].W.sum() == 0
    with pytest.raises(OpError, match="shape"):
        run_assign({"layers.0.W": torch.ones(2, 3)})
    with pytest.raises(OpError, match="no attribute 'weight'"):
        run_assign({"layers.0.weight": torch.ones(3, 2)})
    with pytest.raises(OpError, match="expected a dict"):
        run_assign([torch.ones(3, 2)])
