"""Issue 10 item 5: one fault, one failed check. A plumbing check tests plumbing (the arrays params() and grads()
hand out), the network check the composition of the student's own layers, the classify checks classify against
the student's own model: none of them re-judges the values another check judges. Most cases are the kinds' judges
run in-process on the student files (tests.test_judge_units.run_local); one is a real sandboxed grading."""

from __future__ import annotations

import pytest

from grader.result import CheckStatus
from tests.conftest import check, reference_file
from tests.test_judge_units import reference_text, run_local

NUMPY_NN = reference_text("rpz_cnn", "numpy_nn.py")


def numpy_nn(find: str, new: str) -> str:
    assert find in NUMPY_NN, find
    return NUMPY_NN.replace(find, new, 1)


WRONG_DW = numpy_nn("self.dL_wrt_W = self.x[:, :, np.newaxis] * dL_wrt_output[:, np.newaxis, :]",
                    "self.dL_wrt_W = 2 * self.x[:, :, np.newaxis] * dL_wrt_output[:, np.newaxis, :]")
NO_BIAS = numpy_nn("return x @ self.W + self.b", "return x @ self.W")


def verdicts(tmp_path, source: str, *check_ids: str) -> dict:
    out = {}
    for n, cid in enumerate(check_ids):
        folder = tmp_path / str(n)
        folder.mkdir()
        out[cid] = run_local(folder, "rpz-cnn", cid, {"numpy_nn.py": source})[0]
    return out


def test_params_passes_a_correct_grads_whose_gradients_are_wrong(tmp_path):
    """The report's case: grads() returns exactly self.dL_wrt_W, whose values backward got wrong."""
    v = verdicts(tmp_path, WRONG_DW, "numpy_nn.Linear.backward", "numpy_nn.Linear.params")
    assert v["numpy_nn.Linear.backward"].status is CheckStatus.FAILED
    assert "dL_wrt_W" in v["numpy_nn.Linear.backward"].message
    assert v["numpy_nn.Linear.params"].status is CheckStatus.PASSED


def test_params_passes_a_layer_whose_forward_is_wrong(tmp_path):
    v = verdicts(tmp_path, NO_BIAS, "numpy_nn.Linear.forward", "numpy_nn.Linear.params")
    assert v["numpy_nn.Linear.forward"].status is CheckStatus.FAILED
    assert v["numpy_nn.Linear.params"].status is CheckStatus.PASSED


@pytest.mark.parametrize(("find", "new", "words"), [
    ('return {"W": self.W, "b": self.b}', 'return {"W": self.W.copy(), "b": self.b.copy()}',
     "must return the layer's own arrays"),
    ('return {"W": self.dL_wrt_W, "b": self.dL_wrt_b}', 'return {"W": self.dL_wrt_W.mean(axis=0), "b": self.dL_wrt_b}',
     "grads()['W'] is not self.dL_wrt_W"),
])
def test_params_still_fails_broken_plumbing(tmp_path, find, new, words):
    v = verdicts(tmp_path, numpy_nn(find, new), "numpy_nn.Linear.params")["numpy_nn.Linear.params"]
    assert v.status is CheckStatus.FAILED and words in v.message


def test_network_leaves_a_layers_own_fault_to_the_layers_checks(tmp_path):
    copies = numpy_nn('return {"W": self.W, "b": self.b}', 'return {"W": self.W.copy(), "b": self.b.copy()}')
    for n, source in enumerate((NO_BIAS, WRONG_DW, copies)):
        (tmp_path / f"s{n}").mkdir()
        v = verdicts(tmp_path / f"s{n}", source, "numpy_nn.network")["numpy_nn.network"]
        assert v.status is CheckStatus.PASSED and "its own checks judge that" in v.message


def test_network_fails_a_fault_of_the_composition(tmp_path):
    """Two Linear layers sharing their input cache through a class attribute: each works on its own (its unit
    checks use one layer), the network does not."""
    shared = NUMPY_NN.replace("class Linear:\n", "class Linear:\n    shared = {}\n", 1).replace(
        "        self.x = x\n        return x @ self.W + self.b",
        "        Linear.shared['x'] = x\n        self.x = x\n        return x @ self.W + self.b", 1).replace(
        "self.dL_wrt_W = self.x[:, :, np.newaxis]", "self.dL_wrt_W = Linear.shared['x'][:, :, np.newaxis]", 1)
    v = verdicts(tmp_path, shared, "numpy_nn.Linear.backward", "numpy_nn.network")
    assert v["numpy_nn.Linear.backward"].status is CheckStatus.PASSED
    assert v["numpy_nn.network"].status is CheckStatus.FAILED and "In the network" in v["numpy_nn.network"].message


def test_classifier_judged_against_its_own_classnet_whatever_its_outputs(tmp_path):
    """A classnet with 11 outputs is the classnet check's fault; classify and forward are still right for it."""
    a4 = reference_text("a4_digits", "assignment4.py")
    wide = a4.replace("        nn.Linear(M, K),\n        nn.LogSoftmax(dim=1),",
                      "        nn.Linear(M, K + 1),\n        nn.LogSoftmax(dim=1),", 1)
    assert wide != a4
    nll = run_local(tmp_path, "a4-digits", "assignment4.ClassifierNeuralNet", {"assignment4.py": wide})[0]
    assert nll.status is CheckStatus.PASSED, nll.message
    (tmp_path / "b").mkdir()
    shape = run_local(tmp_path / "b", "a4-digits", "assignment4.mlp.classnet", {"assignment4.py": wide})[0]
    assert shape.status is CheckStatus.FAILED and "expected (16, 10)" in shape.message


def test_classify_judged_against_its_own_model_whatever_its_outputs(tmp_path):
    source = reference_text("rpz_cnn", "pytorch_cnn.py").replace("nn.Linear(128, 10),", "nn.Linear(128, 9),", 1)
    build = run_local(tmp_path, "rpz-cnn", "pytorch_cnn.MyNet.build", {"pytorch_cnn.py": source})[0]
    assert build.status is CheckStatus.FAILED and "(64, 9)" in build.message
    (tmp_path / "b").mkdir()
    classify = run_local(tmp_path / "b", "rpz-cnn", "pytorch_cnn.classify", {"pytorch_cnn.py": source})[0]
    assert classify.status is CheckStatus.PASSED, classify.message


@pytest.mark.sandbox
@pytest.mark.slow
def test_graded_linear_with_wrong_gradients_loses_only_the_gradient_checks(grade):
    """In the real sandbox: the wrong dL_wrt_W costs Linear.backward and Linear.gradcheck (its numbers are wrong),
    not Linear.params (grads() hands out exactly self.dL_wrt_W) nor the network (that is Linear's own fault)."""
    result = grade({"numpy_nn.py": WRONG_DW, "pytorch_cnn.py": reference_file("pytorch_cnn.py")})
    failed = {c.id for c in result.checks if c.id.startswith("numpy_nn.") and not c.passed}
    assert failed == {"numpy_nn.Linear.backward", "numpy_nn.Linear.gradcheck"}
    assert "its own checks judge that" in check(result, "numpy_nn.network").message
