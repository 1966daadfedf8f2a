"""Issue 10 item 7: a near-chance accuracy gets a message naming the convention slip that would explain it, without
revealing any label; a missing weight name lists the names the file has. Unit tests of grader.judge.diagnose, and
real gradings (sandbox) of networks with a slip."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from grader.api import grade_submission
from grader.judge import diagnose
from grader.result import CheckStatus
from grader.selftest import reference_files
from tests.conftest import check, reference_file

NIST_ORDER = tuple("0123456789") + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def predictions(labels: np.ndarray, correct: float, rng: np.random.Generator, k: int) -> np.ndarray:
    """Predictions that are right for a share `correct` of the images and uniformly wrong otherwise."""
    pred = labels.copy()
    wrong = rng.random(len(labels)) >= correct
    pred[wrong] = (labels[wrong] + rng.integers(1, k, size=int(wrong.sum()))) % k
    return pred


def test_another_class_order_is_named_with_the_sets_class_names():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 36, size=1800)
    good = predictions(labels, 0.72, rng, 36)
    # a network trained on NIST36's order (A-Z then 0-9) graded on a set numbered 0-9 then A-Z: its class p is
    # the set's class (p + 10) % 36
    student = (good - 10) % 36
    hint = diagnose.class_order_hint(student, labels, NIST_ORDER, 0.70)
    assert "another order (A-Z then 0-9?)" in hint
    assert f"about {np.mean(good == labels):.2f}" in hint
    assert diagnose.class_order_hint(good, labels, NIST_ORDER, 0.70) == ""  # no slip: nothing to say


def test_no_hint_for_a_network_that_is_just_bad_or_nearly_good():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, size=2000)
    random_guesses = rng.integers(0, 10, size=2000)
    assert diagnose.class_order_hint(random_guesses, labels, tuple("0123456789"), 0.75) == ""
    almost = predictions(labels, 0.70, rng, 10)  # below the bar, but not near chance: no convention slip
    assert diagnose.class_order_hint(almost, labels, tuple("0123456789"), 0.75) == ""
    cats_dogs = rng.integers(0, 2, size=400)
    swapped = 1 - predictions(cats_dogs, 0.9, rng, 2)  # cat = 1, dog = 0: the other way round
    assert "another order (dog then cat?)" in diagnose.class_order_hint(swapped, cats_dogs, ("cat", "dog"), 0.70)


def test_order_words_runs_and_too_many_runs():
    assert diagnose.order_words(np.array([1, 2, 0]), ("a", "b", "c")) == "b-c then a"
    shuffled = np.random.default_rng(2).permutation(20)
    assert diagnose.order_words(shuffled, tuple(str(i) for i in range(20))) == ""


def test_negative_log_probabilities_are_named():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 47, size=1000)
    logp = np.log(np.full((1000, 47), 0.5 / 46))
    logp[np.arange(1000), predictions(labels, 0.85, rng, 47)] = np.log(0.5)
    assert diagnose.scores_hint(logp, labels, 0.80) == ""
    hint = diagnose.scores_hint(-logp, labels, 0.80)
    assert "negative log-probabilities" in hint and "about 0.8" in hint


def test_image_variants_fit_the_images():
    gray = np.zeros((5, 1, 28, 28), np.uint8)
    assert [v.name for v in diagnose.variants(gray, 255.0)] == [
        "transposed", "flipped left-right", "flipped upside down", "inverted", "0-255"]
    color = np.zeros((5, 3, 96, 96), np.uint8)
    assert [v.name for v in diagnose.variants(color, 255.0)] == ["0-255"]
    digits = np.full((5, 1, 8, 8), 16, np.uint8)
    vs = {v.name: v for v in diagnose.variants(digits, 1.0)}
    assert vs["0-1"].scale(1.0) == 16.0 and int(vs["inverted"].images(digits).max()) == 0
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 1, 3, 3)
    assert np.array_equal(vs["transposed"].images(a)[0, 0], a[0, 0].T)


def test_image_hint_picks_the_variant_that_explains_it():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, size=600)
    results = {"transposed": predictions(labels, 0.9, rng, 10), "inverted": rng.integers(0, 10, size=600)}
    words = {"transposed": "transposed images (rows and columns swapped)", "inverted": "inverted images"}
    hint = diagnose.image_hint(results, words, labels, tuple("0123456789"), 0.12, 0.75)
    assert hint.startswith("Your network seems to expect transposed images") and "about 0.9" in hint
    assert diagnose.image_hint({"inverted": results["inverted"]}, words, labels, tuple("0123456789"), 0.12,
                               0.75) == ""


# ----------------------------------------------------------------------------- real gradings


def _grade(tmp_path, settings, assignment: str, files: dict[str, bytes], only: list[str]):
    z = tmp_path / f"{assignment}-{len(list(tmp_path.glob('*.zip')))}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return grade_submission(zip_path=z, assignment=assignment, settings=settings.with_(limit_overrides={}), only=only)


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


DROPPED = [3, 17, 29]


def template_network(settings) -> dict[str, np.ndarray]:
    """Weights for CMU's 1024-36-36 network that classify the hidden NIST36-like set by its nearest class mean
    (about 0.6 whatever the set's label order and orientation: the test does not depend on the reference's
    training); the output layer passes the hidden layer's ranking on, except for the classes in DROPPED, which it
    never names (about 0.55: under the 0.60 bar, far above chance)."""
    from grader.data import load_hidden

    hidden = load_hidden(settings, "nist36_like")
    x = hidden.images.reshape(len(hidden.labels), -1).astype(np.float64) / 255
    means = np.stack([x[hidden.labels == k].mean(axis=0) for k in range(len(hidden.classes))])
    mu = x.mean(axis=0)
    w, b = (means - mu).T, -((means - mu) * (means + mu)).sum(axis=1) / 2
    scale = 4.0 / np.abs(x @ w + b).max()  # keep the sigmoid out of saturation
    k = len(hidden.classes)
    out, bias = 10 * np.eye(k), np.zeros(k)
    out[:, DROPPED], bias[DROPPED] = 0.0, -10.0  # never says these classes: under the stand-in's bar, not near chance
    return {"Wlayer1": w * scale, "blayer1": b * scale, "Woutput": out, "boutput": bias}


@pytest.mark.sandbox
@pytest.mark.slow
def test_cmu_network_in_another_class_order_transposed_and_a_missing_weight_name(tmp_path, fast_settings):
    files = reference_files("cmu-16720-hw5")
    w = template_network(fast_settings)
    plain = _grade(tmp_path, fast_settings, "cmu-16720-hw5", {**files, "q3_weights.npz": _npz(**w)}, ["q3.accuracy"])
    c, accuracy = check(plain, "q3.accuracy"), plain.metrics["q3.accuracy"]
    assert 0.5 < accuracy < 0.6 and c.status is CheckStatus.FAILED, c.message
    # not near chance: no slip to name, no further predictions (a good network never gets them either)
    assert "Your" not in c.message and "follow_up_s" not in plain.timings

    rolled = dict(w, Woutput=np.roll(w["Woutput"], 10, axis=1), boutput=np.roll(w["boutput"], 10))
    result = _grade(tmp_path, fast_settings, "cmu-16720-hw5", {**files, "q3_weights.npz": _npz(**rolled)},
                    ["q3.accuracy"])
    c = check(result, "q3.accuracy")
    assert c.status is CheckStatus.FAILED and "another order" in c.message
    assert f"about {accuracy:.2f}" in c.message, c.message
    assert "follow_up_s" not in result.timings  # the class order explains it: no further predictions needed

    # a network trained on transposed images: its first layer's rows permuted as transposing 32x32 inputs does
    side = int(np.sqrt(w["Wlayer1"].shape[0]))
    transposed = dict(w, Wlayer1=np.ascontiguousarray(
        w["Wlayer1"].reshape(side, side, -1).transpose(1, 0, 2).reshape(side * side, -1)))
    result = _grade(tmp_path, fast_settings, "cmu-16720-hw5", {**files, "q3_weights.npz": _npz(**transposed)},
                    ["q3.accuracy"])
    c = check(result, "q3.accuracy")
    assert c.status is CheckStatus.FAILED and "Your network seems to expect transposed images" in c.message, c.message
    assert "follow_up_s" in result.timings

    renamed = {"W1": w["Wlayer1"], "b1": w["blayer1"], "W2": w["Woutput"], "b2": w["boutput"]}
    result = _grade(tmp_path, fast_settings, "cmu-16720-hw5", {**files, "q3_weights.npz": _npz(**renamed)},
                    ["q3.accuracy"])
    c = check(result, "q3.accuracy")
    assert c.status is CheckStatus.FAILED and "KeyError" in c.message
    assert "q3_weights.npz has 'W1', 'W2', 'b1', 'b2'" in c.message, c.message


@pytest.mark.sandbox
@pytest.mark.slow
def test_rpz_network_that_expects_transposed_images(tmp_path, fast_settings):
    """A MyNet trained on transposed images scores near chance (0.12); the follow-up round shows it a sample of
    the hidden images transposed, and the message says so."""
    source = reference_file("pytorch_cnn.py").decode().replace(
        "return model(x).argmax(dim=1)", "return model(x.transpose(2, 3)).argmax(dim=1)")
    files = {"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": source.encode(),
             "model.pt": reference_file("model.pt")}
    result = _grade(tmp_path, fast_settings, "rpz-cnn", files, ["pytorch_cnn.MyNet.accuracy"])
    c = check(result, "pytorch_cnn.MyNet.accuracy")
    assert c.status is CheckStatus.FAILED and result.metrics["mynet.accuracy"] < 0.2
    assert "Your network seems to expect transposed images" in c.message, c.message
    assert "about 0.9" in c.message and "follow_up_s" in result.timings


def test_no_follow_up_for_a_run_that_did_not_predict(tmp_path):
    """Found by the self-test: a network whose forward raises has no predictions to diagnose (and planning the
    follow-up must not fail on it)."""
    from grader.assignments import load_assignment
    from grader.judge.context import Inputs
    from grader.judge.kinds import KINDS
    from grader.settings import settings
    from tests.test_judge_units import reference_text, run_local

    nn = reference_text("cmu_16720_hw5", "nn.py").replace("    W = params['W' + name]", "    raise ValueError('no')", 1)
    files = {"nn.py": nn, "q3_weights.npz": reference_files("cmu-16720-hw5")["q3_weights.npz"]}
    verdict, plan, run = run_local(tmp_path, "cmu-16720-hw5", "q3.accuracy", files)
    assert verdict.status is CheckStatus.FAILED and "raised ValueError" in verdict.message
    spec = load_assignment("cmu-16720-hw5")
    assert KINDS["predictions"].follow_up(spec.check("q3.accuracy"), spec, plan, run, verdict, Inputs(settings()),
                                          np.random.default_rng(0)) is None
