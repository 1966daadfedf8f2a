"""Issue 11 item 7 (judge side): a value the judge cannot read fails the check that needs it, it never makes the
judge skip a comparison. The case from the review: MyNet.forward returns a torch.Tensor subclass, which the harness
describes as an object, and a constant classify got the classify points because the consistency check was
skipped. (Converting tensor subclasses to plain tensors in the harness is another change; the check fails either
way: unreadable, or readable and then the constant classify disagrees with it.)"""

from __future__ import annotations

import pytest

from grader.result import CheckStatus
from tests.conftest import check, reference_file
from tests.test_judge_units import reference_text, run_local

PYTORCH_CNN = reference_text("rpz_cnn", "pytorch_cnn.py")
FORWARD = "return F.log_softmax(self.classifier(self.features(x)), dim=1)"
CONSTANT_CLASSIFY = ("    return model(x).argmax(dim=1)", "    model(x)\n    return torch.zeros(len(x), dtype=torch.long)")

SUBCLASS = PYTORCH_CNN.replace("class MyNet(nn.Module):", "class Scores(torch.Tensor):\n    pass\n\n\nclass MyNet(nn.Module):", 1) \
    .replace(FORWARD, f"{FORWARD.removeprefix('return ')}.as_subclass(Scores)".join(("return ", "")), 1) \
    .replace(*CONSTANT_CLASSIFY, 1)
WRAPPED = PYTORCH_CNN.replace(FORWARD, f"return {{'scores': {FORWARD.removeprefix('return ')}}}", 1) \
    .replace("    return model(x).argmax(dim=1)", "    return torch.zeros(len(x), dtype=torch.long)", 1)


def test_sources_are_what_they_say():
    assert "as_subclass(Scores)" in SUBCLASS and "torch.zeros(len(x)" in SUBCLASS
    assert "{'scores':" in WRAPPED and "torch.zeros(len(x)" in WRAPPED


@pytest.mark.parametrize("source", [SUBCLASS, WRAPPED], ids=["tensor subclass", "dict of outputs"])
def test_constant_classify_fails_whatever_model_x_returns(tmp_path, source):
    v = run_local(tmp_path, "rpz-cnn", "pytorch_cnn.classify", {"pytorch_cnn.py": source})[0]
    assert v.status is CheckStatus.FAILED, v.message
    assert "classify" in v.message


def test_classnet_that_returns_no_tensor_fails_the_classifier_checks(tmp_path):
    a4 = reference_text("a4_digits", "assignment4.py")
    wrapped = a4.replace("def make_mlp():", "class Boxed(nn.Module):\n    def __init__(self, inner):\n"
                         "        super().__init__()\n        self.inner = inner\n\n    def forward(self, x):\n"
                         "        return [self.inner(x)]\n\n\ndef make_mlp_inner():", 1)
    wrapped += "\n\ndef make_mlp():\n    return Boxed(make_mlp_inner())\n"
    for n, (check_id, words) in enumerate((("assignment4.ClassifierNeuralNet", "classify(x)"),
                                           ("assignment4.mlp.classnet", "classnet(x) for x of shape (16, 64) returned a list"))):
        (tmp_path / str(n)).mkdir()
        v = run_local(tmp_path / str(n), "a4-digits", check_id, {"assignment4.py": wrapped})[0]
        assert v.status is CheckStatus.FAILED and words in v.message, v.message


@pytest.mark.sandbox
@pytest.mark.slow
def test_graded_tensor_subclass_with_constant_classify(grade):
    result = grade({"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": SUBCLASS})
    c = check(result, "pytorch_cnn.classify")
    assert c.status is CheckStatus.FAILED and c.points == 0, c.message
