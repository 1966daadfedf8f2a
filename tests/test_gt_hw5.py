"""gt-hw5: the reference notebook, value comparison details."""

from __future__ import annotations

import numpy as np
import pytest

from grader.assignments import load_assignment
from grader.judge.functions import compare_value
from tests.test_assignment_helpers import assert_notebook_in_sync


def test_reference_notebook_is_built_from_the_module() -> None:
    assert_notebook_in_sync("gt_hw5", "hw5.ipynb")


def test_compare_value_names_the_item() -> None:
    want = {"$list": [np.ones((2, 3)), [np.zeros(2)]], "type": "tuple"}
    want["$list"][1] = {"$list": [np.zeros(2)], "type": "list"}
    good = {"$list": [np.ones((2, 3)), {"$list": [np.zeros(2)], "type": "list"}], "type": "tuple"}
    assert compare_value(good, want, what="f(x)", rtol=1e-5, atol=0) is None
    bad = {"$list": [np.ones((2, 3)), {"$list": [np.ones(2)], "type": "list"}], "type": "tuple"}
    assert "f(x)[1][0] is wrong" in str(compare_value(bad, want, what="f(x)", rtol=1e-5, atol=0))
    assert "expected a tuple of 2" in str(compare_value(np.ones(3), want, what="f(x)", rtol=1e-5, atol=0))
    tensor = {"$tensor": np.ones(3, np.float32), "dtype": "float32"}
    assert "dtype float32; expected int64" in str(compare_value(
        tensor, {"$tensor": np.ones(3, np.int64), "dtype": "int64"}, what="t", rtol=0, atol=0, dtype=True))
    assert compare_value(0.5, 0.5 + 1e-9, what="s", rtol=1e-5, atol=0) is None


def test_spec() -> None:
    spec = load_assignment("gt-hw5")
    assert spec.files == ("hw5.ipynb", "mlp_weights.npz")
    assert spec.max_score == 41
    assert "np.savez" in spec.page



TEXTBOOK_BACK_PROP = '''def back_prop(output, batch_y, hidden_layers, weights, batch_size, lr):
    delta = (output - batch_y) * sigmoid_prime(hidden_layers[-1])
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = hidden_layers[i].T @ delta / batch_size
        delta = (delta @ weights[i].T) * sigmoid_prime(hidden_layers[i])
    return [W - lr * dW for W, dW in zip(weights, grads)]
'''


@pytest.mark.sandbox
@pytest.mark.slow
def test_textbook_back_prop_passes_like_the_handouts_order(grade) -> None:
    """The handout propagates delta through the just-updated weights (seed lines 1749-1751); textbook
    backpropagation uses the old ones. Both get back_prop's points (checked with a small learning rate)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import numpy as np\n\ndef sigmoid_prime(sigmoid_out):\n    return sigmoid_out * (1 - sigmoid_out)\n"),
        nbformat.v4.new_code_cell(TEXTBOOK_BACK_PROP)])
    result = grade({"hw5.ipynb": nbformat.writes(nb)}, assignment="gt-hw5")
    assert {c.id: (c.status.value, c.message) for c in result.checks if c.id == "hw5.back_prop"} == {
        "hw5.back_prop": ("passed", "")}


@pytest.mark.sandbox
@pytest.mark.slow
def test_an_mlp_with_two_hidden_layers_is_graded_at_its_own_size(grade) -> None:
    """The handout asks to tune the hidden layers and neurons (seed line 1993): weights of L=2, N_l=24
    (grader/assignments/gt_hw5/train.py --two-hidden) are put into MLP(..., L=2, N_l=24), not L=1 (which raised
    IndexError in __feed_forward)."""
    from pathlib import Path

    ref = Path(__file__).resolve().parent.parent / "grader" / "assignments" / "gt_hw5" / "reference"
    result = grade({"hw5.ipynb": (ref / "hw5.ipynb").read_bytes(),
                    "mlp_weights.npz": (ref / "mlp_two_hidden.npz").read_bytes()}, assignment="gt-hw5")
    c = next(c for c in result.checks if c.id == "hw5.MLP.accuracy")
    assert c.status.value == "passed", c.message
    assert result.metrics["mlp.accuracy"] >= 0.9
