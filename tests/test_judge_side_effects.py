"""Issue 10 item 6: side effects the handout's own code would expose. Layers must not change the arrays they are
given (forward's inputs, backward's upstream gradient, the forward input backward reads back); the seed's test
cells run in the seed's order on the same objects; functions whose arguments the handout reuses must leave them.
Each fault fails the check of the method that has it, with a message naming the array."""

from __future__ import annotations

import pytest

from grader.harness.op_messages import CallOp
from grader.result import CheckStatus
from tests.conftest import check, reference_file
from tests.test_judge_units import reference_text, run_local

NUMPY_NN = reference_text("rpz_cnn", "numpy_nn.py")

RELU_CLIPS_IN_PLACE = NUMPY_NN.replace("        self.x = x\n        return np.maximum(x, 0.0)",
                                       "        self.x = x\n        return np.maximum(x, 0.0, out=x)", 1)
LINEAR_BACKWARD_SCALES_UPSTREAM = NUMPY_NN.replace(
    "        return dL_wrt_output @ self.W.T",
    "        dL_wrt_output *= 1.0 / len(dL_wrt_output)\n        return len(dL_wrt_output) * dL_wrt_output @ self.W.T",
    1)
SIGMOID_IN_PLACE = NUMPY_NN.replace(
    "        x = np.asarray(x, dtype=float)\n",
    "        x = np.asarray(x, dtype=float)\n        np.negative(x, out=x)\n        np.exp(x, out=x)\n        x += 1.0\n"
    "        np.reciprocal(x, out=x)\n        self.y = x\n        return x\n", 1)
RELU_BACKWARD_CLIPS_CACHE = NUMPY_NN.replace(
    "        return dL_wrt_output * (self.x > 0)",
    "        mask = self.x > 0\n        self.x[~mask] = 0.0\n        return dL_wrt_output * mask", 1)


def verdicts(tmp_path, source: str, *check_ids: str) -> dict:
    out = {}
    for n, cid in enumerate(check_ids):
        (tmp_path / str(n)).mkdir()
        out[cid] = run_local(tmp_path / str(n), "rpz-cnn", cid, {"numpy_nn.py": source})[0]
    return out


def test_the_mutated_sources_differ_from_the_reference():
    for source in (RELU_CLIPS_IN_PLACE, LINEAR_BACKWARD_SCALES_UPSTREAM, SIGMOID_IN_PLACE, RELU_BACKWARD_CLIPS_CACHE):
        assert source != NUMPY_NN


def test_relu_forward_that_clips_its_input_in_place(tmp_path):
    """Its outputs are right on every call; the notebook's x_relu is clipped afterwards."""
    v = verdicts(tmp_path, RELU_CLIPS_IN_PLACE, "numpy_nn.ReLU.forward", "numpy_nn.ReLU.backward",
                 "numpy_nn.ReLU.gradcheck")
    msg = v["numpy_nn.ReLU.forward"].message
    assert v["numpy_nn.ReLU.forward"].status is CheckStatus.FAILED
    assert msg.startswith("ReLU.forward changed the notebook's x_relu in place: at [0, 0] it held -2 before the "
                          "call and 0 after it"), msg
    # backward is right: not held against it (the forward check costs that), as the note says
    assert v["numpy_nn.ReLU.backward"].status is CheckStatus.PASSED
    assert "the forward check costs that" in v["numpy_nn.ReLU.backward"].message
    assert v["numpy_nn.ReLU.gradcheck"].status is CheckStatus.PASSED


def test_linear_backward_that_changes_its_upstream_gradient(tmp_path):
    v = verdicts(tmp_path, LINEAR_BACKWARD_SCALES_UPSTREAM, "numpy_nn.Linear.forward", "numpy_nn.Linear.backward")
    assert v["numpy_nn.Linear.forward"].status is CheckStatus.PASSED
    msg = v["numpy_nn.Linear.backward"].message
    assert v["numpy_nn.Linear.backward"].status is CheckStatus.FAILED
    assert msg.startswith("Linear.backward changed the notebook's dL_wrt_output in place"), msg


def test_sigmoid_in_place_breaks_the_seeds_own_cell_sequence(tmp_path):
    """In the seed, the backward cell runs _ = sigmoid_layer.forward(x_sigmoid) again on the array the forward cell
    already turned into its sigmoid; the forward check names the change, the backward check does not fail for it."""
    v = verdicts(tmp_path, SIGMOID_IN_PLACE, "numpy_nn.Sigmoid.forward", "numpy_nn.Sigmoid.backward")
    assert v["numpy_nn.Sigmoid.forward"].status is CheckStatus.FAILED
    assert "Sigmoid.forward changed the notebook's x_sigmoid in place" in v["numpy_nn.Sigmoid.forward"].message
    assert v["numpy_nn.Sigmoid.backward"].status is CheckStatus.PASSED


def test_backward_that_changes_the_forward_input_it_kept(tmp_path):
    v = verdicts(tmp_path, RELU_BACKWARD_CLIPS_CACHE, "numpy_nn.ReLU.forward", "numpy_nn.ReLU.backward")
    assert v["numpy_nn.ReLU.forward"].status is CheckStatus.PASSED
    msg = v["numpy_nn.ReLU.backward"].message
    assert v["numpy_nn.ReLU.backward"].status is CheckStatus.FAILED
    assert msg.startswith("ReLU.backward changed the notebook's x_relu in place"), msg


def test_seed_cells_run_in_order_on_the_same_objects(tmp_path):
    """The plan passes the notebook's named arrays as the same objects in every cell (the forward cell, the plot
    cell, the backward cell's forward) and reads them back after each."""
    _, plan, _ = run_local(tmp_path, "rpz-cnn", "numpy_nn.Linear.backward", {"numpy_nn.py": NUMPY_NN})
    calls = [op for op in plan.ops if isinstance(op, CallOp) and op.ref == "S0"]
    assert [op.method for op in calls] == ["forward", "forward", "forward", "backward"]
    assert calls[0].args == calls[2].args == [{"$ref": "S0_x_linear"}]
    assert calls[1].args != calls[0].args  # the plot's own input, np.linspace(-1, 1, 3003).reshape(1001, 3)
    assert calls[3].args == [{"$ref": "S0_dL_wrt_output"}]


def test_function_arguments_the_handout_reuses(tmp_path):
    """CMU's training loop computes delta1 = probs - yb after compute_loss_and_acc(yb, probs)."""
    nn = reference_text("cmu_16720_hw5", "nn.py")
    bad = nn.replace("    loss = -np.sum(y * np.log(probs))", "    np.log(probs, out=probs)\n    loss = -np.sum(y * probs)")
    assert bad != nn
    v = run_local(tmp_path, "cmu-16720-hw5", "nn.compute_loss_and_acc", {"nn.py": bad})[0]
    assert v.status is CheckStatus.FAILED
    assert v.message.startswith("compute_loss_and_acc changed its argument probs in place"), v.message
    assert "delta1 = probs - yb" in v.message
    (tmp_path / "ok").mkdir()
    good = run_local(tmp_path / "ok", "cmu-16720-hw5", "nn.compute_loss_and_acc", {"nn.py": nn})[0]
    assert good.status is CheckStatus.PASSED


def test_gt_softmax_that_shifts_its_input_in_place(tmp_path):
    hw5 = reference_text("gt_hw5", "hw5.py")
    start = hw5.index("def softmax(")
    body = hw5[start:hw5.index("\ndef ", start + 1)]
    bad = hw5.replace(body, "def softmax(x):\n    x -= np.max(x, axis=1, keepdims=True)\n    e = np.exp(x)\n"
                            "    return e / np.sum(e, axis=1, keepdims=True)\n\n", 1)
    v = run_local(tmp_path, "gt-hw5", "hw5.softmax", {"hw5.py": bad})[0]
    assert v.status is CheckStatus.FAILED and v.message.startswith("softmax changed its argument x in place")


@pytest.mark.sandbox
@pytest.mark.slow
def test_graded_in_place_layers_lose_the_check_of_the_method_at_fault(grade):
    """In the real sandbox (the harness hands each op a fresh copy of the judge's arrays; the read-back ops
    see what the student's code did to them)."""
    source = RELU_CLIPS_IN_PLACE.replace(
        "        return dL_wrt_output @ self.W.T",
        "        dL_wrt_output *= 1.0 / len(dL_wrt_output)\n        return len(dL_wrt_output) * dL_wrt_output @ self.W.T",
        1)
    assert source != RELU_CLIPS_IN_PLACE
    result = grade({"numpy_nn.py": source, "pytorch_cnn.py": reference_file("pytorch_cnn.py")})
    relu = check(result, "numpy_nn.ReLU.forward")
    assert relu.status is CheckStatus.FAILED and "ReLU.forward changed the notebook's x_relu in place" in relu.message
    backward = check(result, "numpy_nn.Linear.backward")
    assert backward.status is CheckStatus.FAILED and "Linear.backward changed" in backward.message
    assert check(result, "numpy_nn.ReLU.backward").status is CheckStatus.PASSED
    assert check(result, "numpy_nn.Linear.forward").status is CheckStatus.PASSED
