"""Issue 10 item 5: one fault, one failed check. A plumbing check tests plumbing (the arrays params() and grads()
hand out), the network check the composition of the student's own layers, the classify checks classify against
the student's own model: none of them re-judges the values another check judges. Most cases are the kinds' judges
run in-process on the student files (tests.test_judge_units.run_local); one is a real sandboxed grading."""

from __future__ import annotations

import numpy as np
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


# ----------------------------------------------------------------------------- functions calling judged helpers

def replace_function(source: str, name: str, new: str) -> str:
    start = source.index(f"def {name}(")
    end = source.index("\ndef ", start + 1)
    return source[:start] + new + "\n" + source[end:]


HW5 = reference_text("gt_hw5", "hw5.py")
SIGMOID_TWICE = replace_function(HW5, "sigmoid_prime", "def sigmoid_prime(sigmoid_out):\n"
                                 "    s = 1 / (1 + np.exp(-sigmoid_out))  # the sigmoid again, of its output\n"
                                 "    return s * (1 - s)\n")


def gt(tmp_path, source: str, check_id: str):
    folder = tmp_path / check_id
    folder.mkdir()
    return run_local(folder, "gt-hw5", check_id, {"hw5.py": source})[0]


def test_back_prop_is_not_failed_for_its_sigmoid_prime(tmp_path):
    """The seed's back_prop calls sigmoid_prime (lines 1747, 1751): a wrong sigmoid_prime costs its own 3 points,
    not back_prop's 8 too. The judge compares back_prop with the reference run on the student's own
    sigmoid_prime outputs."""
    assert gt(tmp_path, SIGMOID_TWICE, "hw5.sigmoid_prime").status is CheckStatus.FAILED
    v = gt(tmp_path, SIGMOID_TWICE, "hw5.back_prop")
    assert v.status is CheckStatus.PASSED and "with your own sigmoid_prime" in v.message, v.message


def test_back_prop_with_its_own_fault_still_fails_beside_a_wrong_sigmoid_prime(tmp_path):
    both = SIGMOID_TWICE.replace("/ batch_size", "/ (2 * batch_size)", 1)
    assert both != SIGMOID_TWICE
    v = gt(tmp_path, both, "hw5.back_prop")
    assert v.status is CheckStatus.FAILED and "back_prop" in v.message


def test_forward_is_not_failed_for_the_softmax_it_applies(tmp_path):
    nn = reference_text("cmu_16720_hw5", "nn.py")
    bad_softmax = replace_function(nn, "softmax", "def softmax(x):\n    e = np.exp(x)\n    return e / e.sum()\n")
    v = run_local(tmp_path, "cmu-16720-hw5", "nn.forward", {"nn.py": bad_softmax})[0]
    assert v.status is CheckStatus.PASSED, v.message  # forward is checked with util.py's relu and linear


def test_counterfactuals_leave_the_shared_reference_module_alone(tmp_path):
    from grader.assignments import load_assignment
    from grader.judge.reference import reference_module

    shared = reference_module(load_assignment("gt-hw5").reference_dir, "hw5")  # the copy the judge runs

    before = shared.sigmoid_prime
    gt(tmp_path, SIGMOID_TWICE, "hw5.back_prop")
    assert shared.sigmoid_prime is before and shared.back_prop.__globals__["sigmoid_prime"] is before


def test_nd_backprop_is_judged_with_the_students_own_layers(tmp_path):
    """NeuralNetwork.forward and backprop over the student's layers: a LinearLayer fault costs hw04.LinearLayer;
    a fault of backprop itself still costs hw04.backprop. Dividing dL/dlogits by the batch or not are both the
    handout's (its reference run at learning_rate=0.001 does not divide; see the page): both pass."""
    hw04 = reference_text("nd_hw04", "hw04.py")
    mean_dw = hw04.replace("self.dW = dA.T @ self.X", "self.dW = dA.T @ self.X / dA.shape[0]", 1)
    no_batch = hw04.replace("dA = (self.softmax(logits) - Y) / logits.shape[0]", "dA = self.softmax(logits) - Y", 1)
    no_softmax = hw04.replace("dA = (self.softmax(logits) - Y) / logits.shape[0]", "dA = (logits - Y) / logits.shape[0]",
                              1)
    assert mean_dw != hw04 and no_batch != hw04 and no_softmax != hw04
    results = {}
    for name, source in (("mean_dw", mean_dw), ("no_batch", no_batch), ("no_softmax", no_softmax)):
        for check_id in ("hw04.LinearLayer", "hw04.backprop"):
            folder = tmp_path / f"{name}-{check_id}"
            folder.mkdir()
            results[name, check_id] = run_local(folder, "nd-hw04", check_id, {"hw04.py": source})[0]
    assert results["mean_dw", "hw04.LinearLayer"].status is CheckStatus.FAILED
    assert results["mean_dw", "hw04.backprop"].status is CheckStatus.PASSED
    assert results["no_batch", "hw04.LinearLayer"].status is CheckStatus.PASSED
    assert results["no_batch", "hw04.backprop"].status is CheckStatus.PASSED
    assert results["no_softmax", "hw04.LinearLayer"].status is CheckStatus.PASSED
    assert results["no_softmax", "hw04.backprop"].status is CheckStatus.FAILED


def test_cmu_backwards_is_judged_given_the_cache_of_the_students_forward(tmp_path):
    nn = reference_text("cmu_16720_hw5", "nn.py")
    cache = nn.replace("params['cache_' + name] = (X, pre_act, post_act)",
                       "params['cache_' + name] = (X, pre_act, pre_act)", 1)
    assert cache != nn
    forward = run_local(tmp_path, "cmu-16720-hw5", "nn.forward", {"nn.py": cache})[0]
    assert forward.status is CheckStatus.FAILED and "cache_layer1" in forward.message
    (tmp_path / "b").mkdir()
    backwards = run_local(tmp_path / "b", "cmu-16720-hw5", "nn.backwards", {"nn.py": cache})[0]
    assert backwards.status is CheckStatus.PASSED, backwards.message  # backwards gets the spec's own caches
    (tmp_path / "c").mkdir()
    both = cache.replace("params['grad_W' + name] = grad_W", "params['grad_W' + name] = 2 * grad_W", 1)
    assert both != cache
    assert run_local(tmp_path / "c", "cmu-16720-hw5", "nn.backwards", {"nn.py": both})[0].status is CheckStatus.FAILED


def test_nd_cross_entropy_is_not_failed_for_the_softmax_it_uses(tmp_path):
    hw04 = reference_text("nd_hw04", "hw04.py")
    via = hw04.replace("        log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)\n"
                       "        return -(Y * log_probs).sum(dim=1).mean()",
                       "        return -(Y * torch.log(self.softmax(logits))).sum(dim=1).mean()", 1)
    halved = via.replace("        return e / e.sum(dim=1, keepdim=True)\n\n    def cross_entropy",
                         "        return e / e.sum(dim=1, keepdim=True) * 0.5\n\n    def cross_entropy", 1)
    summed = via.replace("log(self.softmax(logits))).sum(dim=1).mean()", "log(self.softmax(logits))).sum(dim=1).sum()")
    assert hw04 != via != halved and summed != via
    for n, (source, status) in enumerate(((halved, CheckStatus.PASSED), (summed, CheckStatus.FAILED))):
        (tmp_path / str(n)).mkdir()
        assert run_local(tmp_path / str(n), "nd-hw04", "hw04.cross_entropy", {"hw04.py": source})[0].status is status


def test_log_probabilities_for_probabilities_are_named():
    from grader.judge.functions import log_hint

    probs = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    assert "look like log-probabilities" in log_hint(np.log(probs), probs)
    assert "look like probabilities" in log_hint(probs, np.log(probs))
    assert log_hint(probs * 2, probs) == ""


def test_cmu_backwards_reads_the_handouts_cache_key(tmp_path):
    """The cache key is the handout's given code (seed 002 lines 307 and 384): forward and backwards that both use
    another key change two given lines, and each check costs its own."""
    nn = reference_text("cmu_16720_hw5", "nn.py")
    other_key = nn.replace("params['cache_' + name] = (X, pre_act, post_act)",
                           "params['cache' + name] = (X, pre_act, post_act)", 1).replace(
        "X, pre_act, post_act = params['cache_' + name]", "X, pre_act, post_act = params['cache' + name]", 1)
    assert other_key.count("params['cache' + name]") == 2
    assert run_local(tmp_path, "cmu-16720-hw5", "nn.forward", {"nn.py": other_key})[0].status is CheckStatus.FAILED
    (tmp_path / "b").mkdir()
    backwards = run_local(tmp_path / "b", "cmu-16720-hw5", "nn.backwards", {"nn.py": other_key})[0]
    assert backwards.status is CheckStatus.FAILED and "KeyError" in backwards.message, backwards.message
