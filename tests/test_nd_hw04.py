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


# Variants of the reference that the handout allows (each a real student's choice) keep their points: the inverse of
# grader/assignments/nd_hw04/mutants.toml. Each (find, replace) edits hw04.ipynb's JSON text once; see the page's decisions.
ACCEPTED = {
    "backprop from softmax - Y, the summed loss (the handout's reference runs at learning_rate=0.001 need it)": (
        "hw04.backprop",
        ("dA = (self.softmax(logits) - Y) / logits.shape[0]", "dA = self.softmax(logits) - Y")),
    "an unshifted softmax and log(softmax) cross-entropy (stability is never asked)": (
        "hw04.softmax hw04.cross_entropy",
        ("shifted = X - X.max(dim=1, keepdim=True).values", "shifted = X"),
        ("e = torch.exp(X - X.max(dim=1, keepdim=True).values)", "e = torch.exp(X)"),
        ("log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)",
         "log_probs = torch.log(torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True))")),
    "a Softmax.backward that passes dA on (backprop starts from softmax - Y)": (
        "hw04.softmax hw04.backprop",
        ("return self.Y * (dA - (dA * self.Y).sum(dim=1, keepdim=True))", "return dA")),
}


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("variant", list(ACCEPTED))
def test_variants_the_handout_allows_keep_their_points(variant, grade) -> None:
    from grader.selftest import reference_files

    checks, *edits = ACCEPTED[variant]
    text = reference_files("nd-hw04")["hw04.ipynb"].decode()
    for find, new in edits:
        assert text.count(find) == 1, find
        text = text.replace(find, new)
    result = grade({"hw04.ipynb": text}, assignment="nd-hw04")
    got = {c.id: (c.status.value, c.message) for c in result.checks if c.id in checks.split()}
    assert got == {c: ("passed", "") for c in checks.split()}


def test_holdout_accuracy_is_the_mean_of_the_handouts_batches():
    """evaluate_on_holdout averages per-batch accuracies of an unshuffled loader of 128: 2,350 images make 18 full
    batches and one of 46, which counts as much as a full one. Shown shuffled, put back in file order."""
    import numpy as np

    from grader.judge.predictions import batch_mean_accuracy

    rng = np.random.default_rng(0)
    correct_stored = np.zeros(2350, dtype=bool)
    correct_stored[:18 * 128] = rng.random(18 * 128) < 0.74
    correct_stored[18 * 128:] = True  # the last batch (46 images of class M) all right
    order = rng.permutation(2350)  # shown image j is stored image order[j]
    shown = correct_stored[order]
    per_image = shown.mean()
    want = np.mean([correct_stored[i:i + 128].mean() for i in range(0, 2350, 128)])
    assert batch_mean_accuracy(shown, order, 128) == pytest.approx(want)
    assert want > per_image + 0.005  # the handout's figure is the higher one here
