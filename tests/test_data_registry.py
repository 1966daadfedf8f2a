"""The registry of hidden sets: typed entries that quote their handouts, a new set is one entry, stale arrays are
refused."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import grader.data
from grader.data import DataUnavailable, load_hidden, prepare, registry
from grader.data.file_sets import FilesSource, file_set, fixed_source, from_shared
from grader.data.registry import Convention, HiddenSetEntry
from grader.settings import GraderSettings, settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(settings().shared_data)
SEEDS = SHARED.parent / "seeds"
BUILT_IN = ("fashion_mnist", "dogs_and_cats/orig", "dogs_and_cats/aug", "dogs_and_cats/new",
            "emnist_balanced_small", "nist36_like", "mnist", "digits")
needs_emnist = pytest.mark.skipif(not (SHARED / "emnist_balanced_small" / "classes.json").is_file(),
                                  reason="no emnist_balanced_small in the shared data")


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_the_built_in_sets_are_registered_in_order() -> None:
    assert registry.names() == BUILT_IN == grader.data.ALL_SETS
    sizes = {n: registry.default_size(n) for n in BUILT_IN}
    assert sizes == {"fashion_mnist": (28, 28), "dogs_and_cats/orig": (96, 96), "dogs_and_cats/aug": (96, 96),
                     "dogs_and_cats/new": (96, 96), "emnist_balanced_small": (28, 28), "nist36_like": (32, 32),
                     "mnist": (28, 28), "digits": (8, 8)}
    nist = registry.entry("nist36_like")
    assert nist.classes[0] == "A" and nist.classes[26] == "0" and nist.stand_in and nist.version == 2
    assert registry.entry("dogs_and_cats/aug").needs == ("dogs_and_cats/orig",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        nist.version = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown hidden set 'cifar10'"):
        registry.entry("cifar10")


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_sets_conventions_quote_their_seed_line(name: str) -> None:
    entry = registry.entry(name)
    topics = {c.topic for c in entry.conventions}
    assert {"label order", "image orientation", "scaling"} <= topics or "ink" in topics
    assert len(entry.classes) == len(set(entry.classes)) and entry.channels in (1, 3) and entry.source
    for c in entry.conventions:
        assert c.rule
        if not c.quote:
            assert c.line == 0
            continue
        lines = (SEEDS / c.seed).read_text(encoding="utf-8").splitlines()
        window = _norm(" ".join(lines[max(0, c.line - 3): c.line + 3]))
        assert _norm(c.quote) in window, f"{name}: {c.topic}: {c.quote!r} is not at line {c.line} of {c.seed}"


def test_every_set_an_assignment_names_is_registered() -> None:
    """Each `data = "..."` / `hidden = "..."` of a spec is a registered set (load_hidden refuses unknown names)."""
    named = {m.group(2) for spec in (ROOT / "grader" / "assignments").rglob("*.toml")
             for m in re.finditer(r'\b(data|hidden) = "([^"]+)"', spec.read_text())}
    assert len(named) >= 8 and named <= set(registry.names()), sorted(named - set(registry.names()))


# --- a new set is one entry -------------------------------------------------------------------------------------

TOY_CLASSES = ("circle", "square", "triangle")


def _toy_npz(root: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(root / "toy.npz", allow_pickle=False) as z:
        return z["x"][:, None].astype(np.uint8), z["y"].astype(np.int64)


def toy_entry(name: str = "toy_shapes", **changes: object) -> HiddenSetEntry:
    """A small new set, as an instructor would add one: its source is shared/<name>/toy.npz."""
    entry = file_set(
        name=name, classes=TOY_CLASSES, image_size=(5, 4), channels=1, source=f"shared/{name}/toy.npz",
        fetch=from_shared(name, ("toy.npz",)),
        locate=fixed_source(FilesSource(dir=name, files=("toy.npz",), convert=_toy_npz,
                                        transform="x uint8 (N, 5, 4) -> (N, 1, 5, 4); labels y")),
        conventions=(Convention("label order", "y indexes TOY_CLASSES"),
                     Convention("image orientation", "as stored"), Convention("scaling", "0..255, / 255")),
    )  # fmt: skip
    return dataclasses.replace(entry, **changes)  # type: ignore[arg-type]


def make_toy_source(shared: Path, name: str = "toy_shapes", n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 256, (n, 5, 4)).astype(np.uint8), np.arange(n) % 3
    (shared / name).mkdir(parents=True)
    np.savez(shared / name / "toy.npz", x=x, y=y)
    return x, y


def test_a_new_set_is_one_registered_entry(tmp_path: Path) -> None:
    x, y = make_toy_source(tmp_path / "shared")
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=tmp_path / "shared")
    with registry.registered(toy_entry()):
        assert (*BUILT_IN, "toy_shapes") == grader.data.ALL_SETS and registry.default_size("toy_shapes") == (5, 4)
        logs: list[str] = []
        assert prepare(settings=cfg, sets=["toy_shapes"], log=logs.append) == ["toy_shapes"]
        h = load_hidden(cfg, "toy_shapes")
        assert h.classes == TOY_CLASSES and not h.stand_in
        assert np.array_equal(h.images[:, 0], x) and np.array_equal(h.labels, y) and h.images.dtype == np.uint8
        manifest = json.loads((cfg.hidden_data / "arrays/toy_shapes/5x4/manifest.json").read_text())
        assert manifest["set"] == {"version": 1, "fingerprint": registry.entry("toy_shapes").fingerprint()}
        assert manifest["source"]["origin"] == f"copied from {tmp_path / 'shared' / 'toy_shapes'}"
        prepare(settings=cfg, sets=["toy_shapes"], log=logs.append)
        assert "nothing to do" in logs[-1]
        with pytest.raises(DataUnavailable, match=r"'toy_shapes' exists at 5x4 only, not at 8x8"):
            load_hidden(cfg, "toy_shapes", image_size=(8, 8))
    assert registry.names() == BUILT_IN  # the temporary registry is gone
    with pytest.raises(DataUnavailable, match=r"unknown hidden set 'toy_shapes' \(known sets: fashion_mnist, "):
        load_hidden(cfg, "toy_shapes")


def test_a_new_sets_broken_source_is_refused_with_the_fix(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "toy_shapes").mkdir(parents=True)
    np.savez(shared / "toy_shapes" / "toy.npz", x=np.zeros((3, 6, 4), np.uint8), y=np.arange(3))  # 6 rows, not 5
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=shared)
    with registry.registered(toy_entry()), pytest.raises(DataUnavailable, match=r"expected uint8 \(N, 1, 5, 4\)"):
        prepare(settings=cfg, sets=["toy_shapes"], log=lambda s: None)
    with registry.registered(toy_entry(name="toy_missing")), pytest.raises(DataUnavailable, match="not found in"):
        prepare(settings=cfg, sets=["toy_missing"], log=lambda s: None)


def test_a_fifth_and_sixth_extra_set_break_nothing_at_import(tmp_path: Path) -> None:
    """Registering two more file sets before anything else is imported: every grader.data module imports, both
    sets prepare and load next to the built-in ones (today's tuple unpack of four extra sets is gone)."""
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from pathlib import Path
        from grader.data import registry
        from test_data_registry import make_toy_source, toy_entry
        shared, hidden = Path({str(tmp_path / "shared")!r}), Path({str(tmp_path / "hidden")!r})
        for name in ("toy_five", "toy_six"):
            make_toy_source(shared, name)
            registry.register(toy_entry(name=name))
        import grader.data
        for mod in pkgutil.iter_modules(grader.data.__path__):
            if mod.name not in ("augment", "images"):  # PIL-only modules, imported when preparing image folders
                importlib.import_module(f"grader.data.{{mod.name}}")
        import grader.engine
        from grader.settings import GraderSettings
        cfg = GraderSettings.from_env().with_(hidden_data=hidden, shared_data=shared)
        assert grader.data.ALL_SETS[-2:] == ("toy_five", "toy_six"), grader.data.ALL_SETS
        assert grader.data.prepare(settings=cfg, sets=["digits", "toy_five", "toy_six"], log=print) == [
            "digits", "toy_five", "toy_six"]
        print(sorted(len(grader.data.load_hidden(cfg, n)) for n in ("digits", "toy_five", "toy_six")))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[9, 9, 447]"


# --- stale arrays ------------------------------------------------------------------------------------------------


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


NIST36_V1_TRANSFORM = ("EMNIST test classes 0-9, A-Z only; zero-padded by 2 to 32x32; 255 - x (dark ink on white); "
                       "(N, 1, 32, 32); flatten row-major to 1024 and divide by 255 for the course's layout")
"""What nist36_like's manifest said before it followed NIST36's label order and storage (commit 2eb24db)."""


@needs_emnist
def test_nist36_arrays_prepared_under_the_old_conventions_are_refused(tmp_path: Path) -> None:
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=SHARED)
    prepare(settings=cfg, sets=["nist36_like"], log=lambda s: None)
    folder = cfg.hidden_data / "arrays/nist36_like/32x32"
    current = load_hidden(cfg, "nist36_like")
    # an install prepared before this version: no fingerprint, v1's transform and EMNIST's label order
    _edit_manifest(folder, set=None, transform=NIST36_V1_TRANSFORM, classes=[*"0123456789", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    with pytest.raises(DataUnavailable, match=r"nist36_like.*stale: they were prepared before conventions version 2 "
                                              r"\(before: labels 0-9 then A-Z .*not transposed\): run `autograder data "
                                              r"prepare`"):
        load_hidden(cfg, "nist36_like")
    logs: list[str] = []
    prepare(settings=cfg, sets=["nist36_like"], log=logs.append)  # the fix the message names
    assert any("nist36_like: 1800 images (the EMNIST stand-in)" in m for m in logs)
    again = load_hidden(cfg, "nist36_like")
    assert np.array_equal(again.images, current.images) and np.array_equal(again.labels, current.labels)


@needs_emnist
def test_legacy_arrays_in_the_current_conventions_still_load(tmp_path: Path) -> None:
    """Arrays prepared by the code before fingerprints (the shared hidden_data/): nist36_like's manifest has the
    current transform and label order, so it loads; a set whose conventions never changed loads regardless."""
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=SHARED)
    prepare(settings=cfg, sets=["nist36_like", "digits"], log=lambda s: None)
    for name, size in (("nist36_like", "32x32"), ("digits", "8x8")):
        _edit_manifest(cfg.hidden_data / "arrays" / name / size, set=None)
        assert len(load_hidden(cfg, name)) in (1800, 447)
    logs: list[str] = []
    prepare(settings=cfg, sets=["nist36_like", "digits"], log=logs.append)  # stamps them with their fingerprint
    assert any(m.startswith("nist36_like: 1800 images") for m in logs) and "nothing to do" not in logs[-1]
    manifest = json.loads((cfg.hidden_data / "arrays/nist36_like/32x32/manifest.json").read_text())
    assert manifest["set"] == {"version": 2, "fingerprint": registry.entry("nist36_like").fingerprint()}


def test_a_version_bump_makes_prepared_arrays_stale(tmp_path: Path) -> None:
    make_toy_source(tmp_path / "shared")
    cfg = GraderSettings.from_env().with_(hidden_data=tmp_path / "hidden", shared_data=tmp_path / "shared")
    with registry.registered(toy_entry()):
        prepare(settings=cfg, sets=["toy_shapes"], log=lambda s: None)
    bumped = toy_entry(version=2, history=("labels in reverse order",))
    with registry.registered(bumped):
        with pytest.raises(DataUnavailable, match=r"prepared under conventions version 1, the grader follows version "
                                                  r"2 \(before: labels in reverse order\): run `autograder data prepare`"):
            load_hidden(cfg, "toy_shapes")
        logs: list[str] = []
        prepare(settings=cfg, sets=["toy_shapes"], log=logs.append)
        assert any(m.startswith("toy_shapes: 9 images") for m in logs)
        assert len(load_hidden(cfg, "toy_shapes")) == 9
    relabelled = dataclasses.replace(bumped, classes=("square", "circle", "triangle"))  # same version, other classes
    with registry.registered(relabelled), pytest.raises(DataUnavailable, match=r"stale: they were prepared for other "
                                                                           r"classes .*\(3 classes square, circle"):
        load_hidden(cfg, "toy_shapes")


# --- the command line --------------------------------------------------------------------------------------------


def _autograder(*args: str, hidden: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOGRADER_HIDDEN_DATA": str(hidden),
           "AUTOGRADER_SHARED_DATA": str(SHARED)}
    return subprocess.run([sys.executable, "-m", "grader.cli", "data", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_data_prepare_one_set_and_status(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    done = _autograder("prepare", "--set", "digits", hidden=hidden)
    assert done.returncode == 0, done.stderr
    assert "digits: 447 images" in done.stderr and not (hidden / "arrays" / "fashion_mnist").exists()
    shown = _autograder("status", hidden=hidden)
    lines = dict(line.split("\t", 1) for line in shown.stdout.splitlines())
    assert shown.returncode == 1 and list(lines) == list(BUILT_IN)  # not all ready
    assert lines["digits"] == "8x8\t10 classes\tconventions v1\tready: 447 images"
    assert lines["nist36_like"].startswith("32x32\t36 classes\tconventions v2\tNOT READY: hidden set 'nist36_like' at "
                                           "32x32 is not prepared")
    _edit_manifest(hidden / "arrays/digits/8x8", set={"version": 0, "fingerprint": "0" * 64})
    assert "NOT READY: hidden set 'digits': the arrays in" in _autograder("status", hidden=hidden).stdout
    _edit_manifest(hidden / "arrays/digits/8x8", set=None)
    assert "ready: 447 images (prepared before conventions fingerprints" in _autograder("status", hidden=hidden).stdout
    wrong = _autograder("prepare", "--set", "cifar10", hidden=hidden)
    assert wrong.returncode == 2 and "unknown hidden sets ['cifar10']" in wrong.stderr
