"""Issue 10 item 4: every check that calls a student torch model compares outputs in eval mode (and under no_grad
where the handout evaluates so). Each kind that calls a model is graded, in the real sandbox, on submissions whose
models have Dropout and BatchNorm (with running statistics that make training mode give other outputs than eval
mode), and on a classify that only works under torch.no_grad() as the seed calls it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from grader.api import grade_submission
from grader.result import CheckStatus, GradeResult
from grader.selftest import reference_files
from tests.conftest import check, reference_file
from tests.test_judge_units import reference_text, run_local

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def grade_only(tmp_path: Path, settings, assignment: str, files: dict[str, bytes], only: list[str]) -> GradeResult:
    """A real grading of some checks, with the assignment's own limits (torch imports are slow on a busy machine)."""
    settings = settings.with_(limit_overrides={})
    z = tmp_path / f"{assignment}-{len(list(tmp_path.glob('*.zip')))}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return grade_submission(zip_path=z, assignment=assignment, settings=settings, only=only)


def notebook_replace(data: bytes, find: str, new: str) -> bytes:
    """Replace one line of a notebook's code (as the source JSON holds it) by one or more lines."""
    text = data.decode()
    old = json.dumps(find + "\n")
    assert old in text, find
    return text.replace(old, ", ".join(json.dumps(line + "\n") for line in new.split("\n")), 1).encode()


def with_batchnorm(state: dict, prefix: str, n: int, *, mean: float = 5.0, var: float = 100.0) -> bytes:
    """A checkpoint with a BatchNorm layer whose eval-mode output is its input (weight sqrt(var + eps), bias mean,
    the running statistics mean and var): the same predictions as without it, but only in eval mode; in training
    mode the layer normalises by the batch's own statistics and the predictions change."""
    state = dict(state)
    eps = 1e-5
    state[f"{prefix}.weight"] = torch.full((n,), (var + eps) ** 0.5)
    state[f"{prefix}.bias"] = torch.full((n,), mean)
    state[f"{prefix}.running_mean"] = torch.full((n,), mean)
    state[f"{prefix}.running_var"] = torch.full((n,), var)
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(100)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def load_state(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True)


A4 = ["assignment4.ClassifierNeuralNet", "assignment4.mlp.classnet", "assignment4.mlp.error"]


def test_a4_classifier_with_dropout_in_its_classnet(tmp_path, fast_settings):
    """The report's case: classify(x) against classnet(x) without eval() 'disagrees on 10 of 16 inputs'."""
    files = reference_files("a4-digits")
    files["assignment4.ipynb"] = notebook_replace(files["assignment4.ipynb"], "        nn.Linear(M, K),",
                                                  "        nn.Linear(M, K),\n        nn.Dropout(0.5),")
    reference = grade_only(tmp_path, fast_settings, "a4-digits", reference_files("a4-digits"), ["assignment4.mlp.error"])
    result = grade_only(tmp_path, fast_settings, "a4-digits", files, A4)
    assert {c.id: (c.status, c.message) for c in result.checks if not c.passed} == {}
    assert result.metrics["mlp.error"] == reference.metrics["mlp.error"]  # Dropout is off in eval mode


def test_a4_classifier_with_batchnorm_in_its_classnet(tmp_path, fast_settings):
    files = reference_files("a4-digits")
    files["assignment4.ipynb"] = notebook_replace(files["assignment4.ipynb"], "        nn.Linear(M, K),",
                                                  "        nn.Linear(M, K),\n        nn.BatchNorm1d(K),")
    files["classifier_mlp.pt"] = with_batchnorm(load_state(files["classifier_mlp.pt"]), "classnet.3", 10)
    reference = grade_only(tmp_path, fast_settings, "a4-digits", reference_files("a4-digits"), ["assignment4.mlp.error"])
    result = grade_only(tmp_path, fast_settings, "a4-digits", files, A4)
    assert {c.id: (c.status, c.message) for c in result.checks if not c.passed} == {}
    assert result.metrics["mlp.error"] == pytest.approx(reference.metrics["mlp.error"], abs=0.005)


def test_rpz_classify_works_as_the_seed_calls_it(tmp_path, fast_settings):
    """The seed calls classify in eval mode under torch.no_grad() (lines 642-648): a classify that reads the outputs
    with .numpy() (which needs no_grad) is correct. The reference MyNet has BatchNorm and Dropout."""
    source = reference_file("pytorch_cnn.py").decode()
    numpy_classify = source.replace("return model(x).argmax(dim=1)",
                                    "return torch.from_numpy(model(x).numpy().argmax(axis=1))")
    assert numpy_classify != source
    files = {"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": numpy_classify.encode()}
    result = grade_only(tmp_path, fast_settings, "rpz-cnn", files, ["pytorch_cnn.classify", "pytorch_cnn.MyNet.build"])
    assert {c.id: (c.status, c.message) for c in result.checks if not c.passed} == {}


def test_rpz_classify_that_switches_dropout_on_fails_naming_it(tmp_path):
    source = reference_text("rpz_cnn", "pytorch_cnn.py").replace(
        "return model(x).argmax(dim=1)", "model.train()\n    return model(x).argmax(dim=1)")
    verdict, _, _ = run_local(tmp_path, "rpz-cnn", "pytorch_cnn.classify", {"pytorch_cnn.py": source})
    assert verdict.status is CheckStatus.FAILED
    assert "disagrees with the largest output" in verdict.message and "training mode" in verdict.message


def test_rpz_forward_with_dropout_always_on_is_named(tmp_path):
    """F.dropout(x, p) ignores model.eval(): model(x) changes from call to call and classify cannot be judged."""
    source = reference_text("rpz_cnn", "pytorch_cnn.py").replace(
        "return F.log_softmax(self.classifier(self.features(x)), dim=1)",
        "return F.log_softmax(F.dropout(self.classifier(self.features(x)), 0.5), dim=1)")
    verdict, _, _ = run_local(tmp_path, "rpz-cnn", "pytorch_cnn.classify", {"pytorch_cnn.py": source})
    assert verdict.status is CheckStatus.FAILED and "dropout still on" in verdict.message


def test_nd_torch_models_with_dropout_and_batchnorm(tmp_path, fast_settings):
    """predictions (FFN with Dropout(0.9): training mode would drop 90 % of the features) and torch.build (the
    training-mode probe of the seed's own shape check) on an FFN with Dropout and a CNN with BatchNorm."""
    files = reference_files("nd-hw04")
    nb = notebook_replace(files["hw04.ipynb"], "        x = F.relu(self.fc1(x))",
                          "        x = F.dropout(F.relu(self.fc1(x)), 0.9, training=self.training)")
    nb = notebook_replace(nb, "        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)",
                          "        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)\n"
                          "        self.bn1 = nn.BatchNorm2d(32)")
    nb = notebook_replace(nb, "        x = F.max_pool2d(F.relu(self.conv1(x)), 2)",
                          "        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)")
    files["hw04.ipynb"] = nb
    files["cnn.pt"] = with_batchnorm(load_state(files["cnn.pt"]), "bn1", 32)
    only = ["hw04.FFN.build", "hw04.FFN.accuracy", "hw04.CNN.build", "hw04.CNN.accuracy"]
    reference = grade_only(tmp_path, fast_settings, "nd-hw04", reference_files("nd-hw04"), only)
    result = grade_only(tmp_path, fast_settings, "nd-hw04", files, only)
    assert {c.id: (c.status, c.message) for c in result.checks if not c.passed} == {}
    assert result.metrics["ffn.accuracy"] == reference.metrics["ffn.accuracy"]
    assert result.metrics["cnn.accuracy"] == pytest.approx(reference.metrics["cnn.accuracy"], abs=0.005)


def test_gt_simple_cnn_with_dropout_and_batchnorm(tmp_path, fast_settings):
    """torch.build probes in training mode on purpose (it is the seed's own check on a fresh model); Dropout adds
    no parameters, so the layers the handout prescribes are still recognised; BatchNorm is a layer the handout
    does not describe and is named by its parameter shapes."""
    files = reference_files("gt-hw5")
    drop = notebook_replace(files["hw5.ipynb"], "        x = torch.relu(self.conv1(x))",
                            "        x = torch.nn.functional.dropout(torch.relu(self.conv1(x)), 0.5, self.training)")
    result = grade_only(tmp_path, fast_settings, "gt-hw5", {**files, "hw5.ipynb": drop},
                        ["hw5.MySimpleCNN.build", "hw5.MySimpleCNN.layers"])
    assert {c.id: (c.status, c.message) for c in result.checks if not c.passed} == {}

    bn = notebook_replace(files["hw5.ipynb"], "        x = torch.relu(self.conv1(x))",
                          "        x = torch.relu(self.bn(self.conv1(x)))")
    bn = notebook_replace(bn, "        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=3, padding=1)",
                          "        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=3, padding=1)\n"
                          "        self.bn = nn.BatchNorm2d(16)")
    result = grade_only(tmp_path, fast_settings, "gt-hw5", {**files, "hw5.ipynb": bn},
                        ["hw5.MySimpleCNN.build", "hw5.MySimpleCNN.layers"])
    assert check(result, "hw5.MySimpleCNN.build").status is CheckStatus.PASSED
    layers = check(result, "hw5.MySimpleCNN.layers")
    assert layers.status is CheckStatus.FAILED and "(16,)" in layers.message
