"""cmu-16720-hw5: the statistical Xavier check, the batching partition check, NIST36's conventions on the hidden
set and the page, Q3.1's calibrated bar, one fault one failed check, the student-style reference."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.api import grade_submission
from grader.assignments import load_assignment
from grader.data import load_hidden, prepare
from grader.judge.batching import partition_problem
from grader.judge.statistics import ks_uniform, xavier_problem
from grader.settings import settings

RNG = np.random.default_rng(0)


def test_xavier_accepts_glorot_uniform_and_rejects_look_alikes() -> None:
    n_in, n_out = 1024, 64
    a = math.sqrt(6 / (n_in + n_out))
    b = np.zeros(n_out)
    for _ in range(20):  # no false alarms on correct draws
        assert xavier_problem(RNG.uniform(-a, a, (n_in, n_out)), b, n_in, n_out, what="w") is None
    normal = RNG.normal(0, math.sqrt(2 / (n_in + n_out)), (n_in, n_out))
    assert "bound" in str(xavier_problem(normal, b, n_in, n_out, what="w"))
    assert "variance" in str(xavier_problem(RNG.uniform(-a / 2, a / 2, (n_in, n_out)), b, n_in, n_out, what="w"))
    assert "shape" in str(xavier_problem(RNG.uniform(-a, a, (n_out, n_in)), b, n_in, n_out, what="w"))
    assert "zeros" in str(xavier_problem(RNG.uniform(-a, a, (n_in, n_out)), b + 0.1, n_in, n_out, what="w"))
    bimodal = np.sign(RNG.uniform(-1, 1, (n_in, n_out))) * a * math.sqrt(1 / 3) * np.ones((n_in, n_out))
    assert "uniform" in str(xavier_problem(bimodal, b, n_in, n_out, what="w"))  # right variance, wrong law
    assert ks_uniform(RNG.uniform(-1, 1, 10_000), 1.0) < 0.02


def batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, size: int) -> dict:
    return {"$list": [{"$list": [x[order[i:i + size]], y[order[i:i + size]]], "type": "tuple"}
                      for i in range(0, len(x), size)], "type": "list"}


def test_partition_check() -> None:
    n, size = 23, 5
    x = np.concatenate([np.arange(n)[:, None], RNG.normal(size=(n, 2))], axis=1)
    y = np.eye(3)[RNG.integers(0, 3, n)]
    order = RNG.permutation(n)
    assert partition_problem(batches(x, y, order, size), x, y, size, what="g") == order.tolist()
    assert "left out" in str(partition_problem(batches(x, y, order[:-3], size), x, y, size, what="g"))
    assert "more than one batch" in str(partition_problem(batches(x, y, np.r_[order, order[:2]], size), x, y, size,
                                                          what="g"))
    assert "batches of" in str(partition_problem(batches(x, y, order, 4), x, y, size, what="g"))
    swapped = batches(x, y, order, size)
    swapped["$list"][0]["$list"][1] = swapped["$list"][0]["$list"][1][::-1].copy()
    assert "do not belong" in str(partition_problem(swapped, x, y, size, what="g"))


def test_spec_points_follow_the_handout() -> None:
    spec = load_assignment("cmu-16720-hw5")
    assert spec.max_score == 28
    points = {c.target: c.points for c in spec.checks}
    assert points["initialize_weights"] == 3 and points["backwards"] == 7 and points["Q3.1 network"] == 5
    assert "NIST36-like" in spec.page and "allow_pickle=False" in spec.page



# --- NIST36's conventions, the calibrated bar, one fault one failed check --------------------------------------

FOLDER = Path(__file__).resolve().parent.parent / "grader" / "assignments" / "cmu_16720_hw5"
REF = FOLDER / "reference"
SEED = Path(settings().shared_data).parent / "seeds" / "002_37644ac9ad9dfa9e.txt"
SE = math.sqrt(0.7 * 0.3 / 1800)
"""Standard error of an accuracy near 0.7 on the 1,800 hidden images."""


def reference_files() -> dict[str, bytes]:
    return {"nn.py": (REF / "nn.py").read_bytes(), "q3_weights.npz": (REF / "q3_weights.npz").read_bytes()}


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def reference_weights() -> dict[str, np.ndarray]:
    with np.load(REF / "q3_weights.npz") as z:
        return {k: z[k] for k in z.files}


def failed(result) -> dict[str, str]:
    return {c.id: c.message for c in result.checks if not c.passed}


def test_the_page_states_nist36s_conventions_and_the_bar() -> None:
    spec = load_assignment("cmu-16720-hw5")
    page = " ".join(spec.student_page.split())
    q3 = spec.check("q3.accuracy").params
    assert "labels A-Z (0-25) then 0-9 (26-35)" in page and "**stored transposed** as NIST36 is" in page
    assert "dark ink on a white background (1.0)" in page and "1024 values in [0, 1]" in page
    assert "0-9 then A-Z in that label order" not in page and "upright, flattened" not in page  # the old page
    assert q3.threshold == 0.60 and f"**at least {q3.threshold:.2f}**" in page
    assert q3.course_threshold == 0.75 and "at least 0.75, the handout's bar" in page
    assert "The hidden set is a stand-in; the bar is 0.60 because" in page
    for topic in ("label order", "image orientation", "scaling", "weight names", "forward's cache", "batch formation"):
        assert any(c.topic == topic for c in spec.conventions)
    seed = SEED.read_text()
    assert "26 upper-case letters of the alphabet and the 10 digits" in seed and "transpose the image" in seed


def test_the_bar_is_calibrated_on_networks_trained_the_handouts_way() -> None:
    cal = json.loads((FOLDER / "calibration.json").read_text())
    nets = cal["networks"]
    assert len(nets) >= 5 and len({n["seed"] for n in nets}) == len(nets) and cal["hidden_set"]["stand_in"]
    assert "batch_size 100" in cal["method"] and "learning_rate 0.002" in cal["method"] and "epochs 50" in cal["method"]
    bar = load_assignment("cmu-16720-hw5").check("q3.accuracy").params.threshold
    lowest_real = 0.64  # issue 10: real NIST36-trained networks on the fixed stand-in, 0.64-0.70
    assert bar <= lowest_real - 3 * SE < min(n["hidden"] for n in nets)
    assert bar == pytest.approx(math.floor((lowest_real - 3 * SE) / 0.05) * 0.05)
    resampled = cal["resampled"]  # the handout's other strategy: new batches every epoch
    assert len(resampled) == len(nets) and min(n["hidden"] for n in resampled) > bar + 3 * SE
    for n in nets + resampled:  # the convention slips stay near chance, far below the bar
        assert n["hidden_emnist_order"] < 0.05 and n["hidden_upright"] < 0.1
    spec = load_assignment("cmu-16720-hw5")
    page, header = " ".join(spec.page.split()), " ".join(spec.path.read_text().replace("#", " ").split())
    for group in (nets, resampled):
        figures = ", ".join(f"{n['hidden']:.3f}" for n in group)
        assert figures in page and figures in header


@pytest.mark.sandbox
def test_a_network_trained_under_nist36s_conventions_passes_and_the_slips_fail(grade) -> None:
    """The reference network (trained on the stand-in's TRAIN split, NIST36's conventions) passes Q3.1; the same
    network read in EMNIST's label order or trained on upright images (its weights permuted so) fails."""
    files = reference_files()
    ok = grade(files, assignment="cmu-16720-hw5")
    assert failed(ok) == {} and ok.metrics["q3.accuracy"] >= 0.60
    w = reference_weights()
    emnist_order = {**w, "Woutput": np.roll(w["Woutput"], 10, axis=1), "boutput": np.roll(w["boutput"], 10)}
    upright = {**w, "Wlayer1": w["Wlayer1"].reshape(32, 32, -1).transpose(1, 0, 2).reshape(1024, -1)}
    for weights in (emnist_order, upright):
        bad = grade({**files, "q3_weights.npz": npz(weights)}, assignment="cmu-16720-hw5")
        assert set(failed(bad)) == {"q3.accuracy"} and bad.metrics["q3.accuracy"] < 0.1


FAULTS = {  # one fault in the reference's nn.py -> the checks it may fail
    "sigmoid": (("res = 1.0 / (1.0 + np.exp(-x))", "res = 1.0 / (1.0 + np.exp(-2 * x))"), {"nn.sigmoid", "q3.accuracy"}),
    "softmax": (("res = e / np.sum(e, axis=1, keepdims=True)", "res = e / np.sum(e)"), {"nn.softmax", "q3.accuracy"}),
    "forward's cache": (("params['cache_' + name] = (X, pre_act, post_act)", "params['cache_' + name] = (X, post_act, pre_act)"), {"nn.forward"}),
    "forward's bias": (("pre_act = X @ W + b", "pre_act = X @ W"), {"nn.forward", "q3.accuracy"}),
}


@pytest.mark.sandbox
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_one_fault_costs_where_it_lives(grade, fault: str) -> None:
    """forward is checked with util.py's activations, backwards with caches the grader fills: a bug in sigmoid,
    softmax or forward does not cost forward's or backwards' points too (Q3.1 runs the student's own nn.py)."""
    (find, repl), allowed = FAULTS[fault]
    files = reference_files()
    text = files["nn.py"].decode()
    assert find in text
    result = grade({**files, "nn.py": text.replace(find, repl)}, assignment="cmu-16720-hw5")
    assert set(failed(result)) - {"q3.accuracy"} == allowed - {"q3.accuracy"}
    assert set(failed(result)) <= allowed


@pytest.mark.sandbox
def test_the_student_style_reference_trains_with_the_handouts_loop() -> None:
    style = FOLDER / "students" / "handout_loops"
    run_q3 = (style / "run_q3.py").read_text()
    for line in ("max_iters = 50", "batch_size = 100", "learning_rate = 2e-3", "hidden_size = 64", "np.random.seed(1)",
                 "batches = get_random_batches(train_x,train_y,batch_size)", "np.savez('q3_weights.npz'"):
        assert line in run_q3
    nn_src = (style / "nn.py").read_text()
    assert "from util import *" in nn_src and "for i in range" in nn_src
    with np.load(style / "q3_weights.npz") as z:
        assert sorted(z.files) == ["Wlayer1", "Woutput", "blayer1", "boutput"]
        assert z["Wlayer1"].shape == (1024, 64) and z["Woutput"].shape == (64, 36)


def test_near_equal_batches_are_declared_accepted() -> None:
    assert load_assignment("cmu-16720-hw5").check("nn.get_random_batches").params.near_equal is True


ARRAY_SPLIT = """def get_random_batches(x, y, batch_size):
    parts = np.array_split(np.random.permutation(x.shape[0]), {k})
    return [(x[p], y[p]) for p in parts]
"""


@pytest.mark.sandbox
@pytest.mark.parametrize("k", ["max(1, x.shape[0] // batch_size)", "-(-x.shape[0] // batch_size)"])
def test_np_array_split_batches_pass_the_partition_check(grade, k: str) -> None:
    text = reference_files()["nn.py"].decode()
    text = text[:text.index("def get_random_batches")] + ARRAY_SPLIT.format(k=k)
    result = grade({"nn.py": text}, assignment="cmu-16720-hw5")
    assert "nn.get_random_batches" not in failed(result)


@pytest.mark.sandbox
def test_the_instructors_own_nist36_keeps_the_handouts_bar(tmp_path: Path, fast_settings) -> None:
    """On the course's own test set (stand_in false) Q3.1 asks for 0.75: the reference network, 0.70 on these
    images, must fail there although it passes the stand-in's 0.60."""
    import scipy.io

    cfg = fast_settings.with_(hidden_data=tmp_path / "hidden")
    prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    h = load_hidden(cfg, "nist36_like")
    own = cfg.hidden_data / "nist36" / "nist36_test.mat"
    own.parent.mkdir()
    scipy.io.savemat(own, {"test_data": h.images.reshape(len(h), -1) / 255.0, "test_labels": np.eye(36)[h.labels]})
    prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    assert not load_hidden(cfg, "nist36_like").stand_in
    z = tmp_path / "ref.zip"
    with zipfile.ZipFile(z, "w") as f:
        for name, data in reference_files().items():
            f.writestr(name, data)
    result = grade_submission(zip_path=z, assignment="cmu-16720-hw5", settings=cfg, only=["q3.accuracy"])
    q3 = next(c for c in result.checks if c.id == "q3.accuracy")
    assert 0.60 <= result.metrics["q3.accuracy"] < 0.75 and not q3.passed and "0.75" in q3.message
