"""Hidden data: IDX reader, prepare (real FashionMNIST and dogs_and_cats sources), load_hidden."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grader.data import DataUnavailable, HiddenSet, load_hidden, prepare
from grader.data.augment import AugmentConfig, augment_file
from grader.data.folders import list_image_folder
from grader.data.idx import IdxError, read_idx, read_idx_bytes, write_idx
from grader.settings import GraderSettings

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
T10K_IMAGES = DEBIAN / "t10k-images-idx3-ubyte.gz"
T10K_LABELS = DEBIAN / "t10k-labels-idx1-ubyte.gz"
SHARED = GraderSettings.from_env().shared_data
SHARED_DC = SHARED / "dogs_and_cats"
PER_CLASS = 12
SETS = ["fashion_mnist", "dogs_and_cats/orig", "dogs_and_cats/aug", "dogs_and_cats/new"]

needs_debian = pytest.mark.skipif(not T10K_IMAGES.is_file(), reason="apt-get install dataset-fashion-mnist")
needs_shared = pytest.mark.skipif(not (SHARED_DC / "orig").is_dir(), reason=f"no shared data in {SHARED_DC}")


def make_settings(hidden: Path, shared: Path = SHARED) -> GraderSettings:
    return GraderSettings.from_env().with_(hidden_data=hidden, shared_data=shared)


def tree_bytes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_prepare(settings: GraderSettings, **kwargs: object) -> tuple[list[str], list[str]]:
    logs: list[str] = []
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("sets", SETS)  # the notebook-era sets have their own tests (tests/test_extra_data.py)
    names = prepare(settings=settings, log=logs.append, **kwargs)  # type: ignore[arg-type]
    return names, logs


@pytest.fixture(scope="module")
def small_shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared-data folder with the first PER_CLASS real images per class of orig, new and train."""
    root = tmp_path_factory.mktemp("shared")
    for part in ("orig", "new", "train"):
        for cls in ("cat", "dog"):
            dest = root / "dogs_and_cats" / part / cls
            dest.mkdir(parents=True)
            for f in sorted((SHARED_DC / part / cls).iterdir())[:PER_CLASS]:
                shutil.copy2(f, dest / f.name)
    return root


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, small_shared: Path
) -> tuple[GraderSettings, list[str]]:
    settings = make_settings(tmp_path_factory.mktemp("hidden"), small_shared)
    names, logs = run_prepare(settings)
    assert names == SETS
    return settings, logs


# --- IDX --------------------------------------------------------------------------------------


@needs_debian
def test_idx_reads_the_real_fashion_mnist_test_set() -> None:
    images, labels = read_idx(T10K_IMAGES), read_idx(T10K_LABELS)
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    assert 0 < images.mean() < 255


def test_idx_roundtrip_plain_and_gzip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.int32, np.float64):
        array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
        for compress in (False, True):
            path = tmp_path / f"a-{np.dtype(dtype).name}-{compress}"
            write_idx(path, array, compress=compress)
            back = read_idx(path)
            assert back.dtype == array.dtype and np.array_equal(back, array)


@needs_debian
def test_idx_rejects_bad_magic(tmp_path: Path) -> None:
    raw = bytearray(gzip.decompress(T10K_LABELS.read_bytes()))
    for offset, value in ((0, 1), (2, 0x07), (3, 0)):
        bad = bytearray(raw)
        bad[offset] = value
        with pytest.raises(IdxError, match="bad magic"):
            read_idx_bytes(bytes(bad))
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x08\x03\x00\x00" + bytes(raw[4:])))
    with pytest.raises(IdxError, match=r"bad\.gz: bad magic number 0x08030000"):
        read_idx(tmp_path / "bad.gz")


@needs_debian
def test_idx_rejects_truncated_and_padded_files(tmp_path: Path) -> None:
    raw = gzip.decompress(T10K_IMAGES.read_bytes())
    with pytest.raises(IdxError, match=r"truncated: 7839999 bytes, shape \(10000, 28, 28\) needs 7840016"):
        read_idx_bytes(raw[:-17])
    with pytest.raises(IdxError, match="truncated header"):
        read_idx_bytes(raw[:10])
    with pytest.raises(IdxError, match="too short"):
        read_idx_bytes(raw[:3])
    with pytest.raises(IdxError, match="trailing bytes"):
        read_idx_bytes(raw + b"\0")
    cut = T10K_IMAGES.read_bytes()[:100_000]  # a gzip stream cut short
    (tmp_path / "cut.gz").write_bytes(cut)
    with pytest.raises(IdxError, match="corrupt gzip"):
        read_idx(tmp_path / "cut.gz")


# --- prepare -----------------------------------------------------------------------------------


@needs_debian
@needs_shared
def test_prepare_builds_the_layout(prepared: tuple[GraderSettings, list[str]]) -> None:
    settings, _ = prepared
    hidden = settings.hidden_data
    assert sorted(p.name for p in hidden.iterdir()) == ["arrays", "dither.key", "dogs_and_cats", "fashion_mnist"]
    key = hidden / "dither.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert sorted(p.name for p in (hidden / "dogs_and_cats").iterdir()) == ["aug", "new", "orig"]  # no train
    for part in ("orig", "aug", "new"):
        listing = list_image_folder(hidden / "dogs_and_cats" / part)
        assert listing.classes == ("cat", "dog")
        assert listing.counts() == {"cat": PER_CLASS, "dog": PER_CLASS}
        manifest = json.loads((hidden / "arrays/dogs_and_cats" / part / "96x96/manifest.json").read_text())
        assert manifest["counts"] == {"cat": PER_CLASS, "dog": PER_CLASS}
        assert manifest["image_size"] == [96, 96] and manifest["files"] == list(listing.files)
        assert manifest["images"]["shape"] == [2 * PER_CLASS, 3, 96, 96]
        images = np.load(hidden / "arrays/dogs_and_cats" / part / "96x96/images.npy")
        assert manifest["images"]["sha256"] == hashlib.sha256(images.data).hexdigest()
    aug = list_image_folder(hidden / "dogs_and_cats/aug")
    assert all(f.endswith(".png") for f in aug.files)
    orig = list_image_folder(hidden / "dogs_and_cats/orig")
    assert [Path(f).stem for f in aug.files] == [Path(f).stem for f in orig.files]
    fashion = json.loads((hidden / "arrays/fashion_mnist/28x28/manifest.json").read_text())
    assert fashion["count"] == 10_000 and fashion["counts"]["Ankle boot"] == 1000
    assert fashion["source"]["origin"] == f"copied from {DEBIAN}"


@needs_debian
@needs_shared
def test_second_prepare_does_no_heavy_work(prepared: tuple[GraderSettings, list[str]]) -> None:
    settings, _ = prepared
    before = {p: p.stat().st_mtime_ns for p in settings.hidden_data.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    names, logs = run_prepare(settings)
    assert names == SETS
    assert time.perf_counter() - t0 < 2.0
    assert "nothing to do" in logs[-1]
    assert {p: p.stat().st_mtime_ns for p in settings.hidden_data.rglob("*") if p.is_file()} == before


@needs_debian
@needs_shared
def test_aug_is_deterministic(
    prepared: tuple[GraderSettings, list[str]], small_shared: Path, tmp_path: Path
) -> None:
    settings, _ = prepared
    again = make_settings(tmp_path / "again", small_shared)
    run_prepare(again, sets=["dogs_and_cats/aug"], workers=2)  # other process layout, same bytes
    first = tree_bytes(settings.hidden_data / "dogs_and_cats/aug")
    second = tree_bytes(again.hidden_data / "dogs_and_cats/aug")
    del first["SOURCE.json"], second["SOURCE.json"]  # holds a timestamp
    assert first == second and len(first) == 2 * PER_CLASS
    a = load_hidden(settings, "dogs_and_cats/aug")
    b = load_hidden(again, "dogs_and_cats/aug")
    assert np.array_equal(a.images, b.images)
    # one image on its own (order-independent seeding) gives the same file
    orig = settings.hidden_data / "dogs_and_cats/orig"
    rel = list_image_folder(orig).files[-1]
    out = augment_file(orig, tmp_path / "single", rel, AugmentConfig())
    assert tree_bytes(tmp_path / "single")[out] == first[out]
    # a different seed gives different images; and AUG is not ORIG
    other = augment_file(orig, tmp_path / "seed", rel, AugmentConfig(seed=1))
    assert tree_bytes(tmp_path / "seed")[other] != first[out]
    assert not np.array_equal(a.images, load_hidden(settings, "dogs_and_cats/orig").images)


@needs_debian
@needs_shared
def test_cache_is_rebuilt_when_an_image_is_added(small_shared: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", small_shared)
    run_prepare(settings, sets=["dogs_and_cats/orig", "dogs_and_cats/aug"])
    orig = settings.hidden_data / "dogs_and_cats/orig"
    extra = sorted((SHARED_DC / "orig/dog").iterdir())[PER_CLASS]
    shutil.copy(extra, orig / "dog" / extra.name)  # an instructor adds an image
    with pytest.raises(DataUnavailable, match="changed since the arrays were built.*autograder data prepare"):
        load_hidden(settings, "dogs_and_cats/orig")
    names, logs = run_prepare(settings, sets=["dogs_and_cats/orig", "dogs_and_cats/aug"])
    assert any("dogs_and_cats/aug: generated 25 images" in m for m in logs)
    assert any("dogs_and_cats/orig: 25 images" in m for m in logs)
    for name in names:
        hs = load_hidden(settings, name)
        assert len(hs) == 2 * PER_CLASS + 1 and hs.labels.tolist().count(1) == PER_CLASS + 1
    # replacing a file's content (same name) also invalidates
    target = orig / "cat" / sorted(os.listdir(orig / "cat"))[0]
    shutil.copy(sorted((SHARED_DC / "orig/cat").iterdir())[PER_CLASS], target)
    with pytest.raises(DataUnavailable, match="changed"):
        load_hidden(settings, "dogs_and_cats/orig")
    _, logs = run_prepare(settings, sets=["dogs_and_cats/orig"])
    assert any("dogs_and_cats/orig: 25 images" in m for m in logs)


@needs_debian
@needs_shared
def test_instructor_data_is_never_overwritten(small_shared: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", small_shared)
    mine = settings.hidden_data / "dogs_and_cats/new"
    for cls in ("cat", "dog"):
        (mine / cls).mkdir(parents=True)
        for f in sorted((SHARED_DC / "new" / cls).iterdir())[-3:]:
            shutil.copy(f, mine / cls / f.name)
    my_aug = settings.hidden_data / "dogs_and_cats/aug"
    shutil.copytree(mine, my_aug)
    _, logs = run_prepare(settings, sets=["dogs_and_cats/new", "dogs_and_cats/aug"], force=True)
    assert any("supplied by the instructor" in m for m in logs)
    for name in ("dogs_and_cats/new", "dogs_and_cats/aug"):
        assert len(load_hidden(settings, name)) == 6
    manifest = json.loads((settings.hidden_data / "arrays/dogs_and_cats/new/96x96/manifest.json").read_text())
    assert manifest["source"]["origin"].startswith("supplied by the instructor")


@needs_debian
@needs_shared
def test_force_rebuilds_arrays(small_shared: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", small_shared)
    run_prepare(settings, sets=["fashion_mnist"])
    manifest = settings.hidden_data / "arrays/fashion_mnist/28x28/manifest.json"
    first = manifest.stat().st_mtime_ns
    _, logs = run_prepare(settings, sets=["fashion_mnist"], force=True)
    assert manifest.stat().st_mtime_ns != first and "nothing to do" not in logs[-1]


# --- load_hidden -------------------------------------------------------------------------------


@needs_debian
@needs_shared
def test_load_hidden_shapes_dtypes_labels(prepared: tuple[GraderSettings, list[str]]) -> None:
    settings, _ = prepared
    fashion = load_hidden(settings, "fashion_mnist")
    assert isinstance(fashion, HiddenSet) and fashion.name == "fashion_mnist"
    assert fashion.images.shape == (10_000, 1, 28, 28) and fashion.images.dtype == np.uint8
    assert fashion.labels.dtype == np.int64 and fashion.classes[9] == "Ankle boot"
    assert np.array_equal(fashion.labels, read_idx(T10K_LABELS))
    assert np.array_equal(fashion.images[:, 0], read_idx(T10K_IMAGES))
    for name in SETS[1:]:
        t0 = time.perf_counter()
        hs = load_hidden(settings, name)
        assert time.perf_counter() - t0 < 0.5
        assert hs.images.shape == (2 * PER_CLASS, 3, 96, 96) and hs.images.dtype == np.uint8
        assert hs.labels.tolist() == [0] * PER_CLASS + [1] * PER_CLASS and hs.classes == ("cat", "dog")
        assert not hs.labels.flags.writeable and not hs.images.flags.writeable

    def by_content(images: np.ndarray) -> np.ndarray:
        rows = images.reshape(len(images), -1)
        return rows[np.lexsort(rows.T)]

    runs = [fashion.for_sandbox() for _ in range(3)]
    assert len({tuple(labels[:40]) for _, labels in runs}) == 3  # a fresh order per run
    for images, labels in runs:
        assert images.shape == fashion.images.shape and images.dtype == np.uint8
        assert sorted(labels) == sorted(fashion.labels) and not labels.flags.writeable
    # the same dither every run (regrades agree, every student sees the same images), never the exact images
    assert np.array_equal(by_content(runs[0][0]), by_content(runs[1][0]))
    assert not np.array_equal(by_content(runs[0][0]), by_content(np.asarray(fashion.images)))
    assert np.array_equal(by_content(fashion.for_sandbox(dither=0)[0]), by_content(np.asarray(fashion.images)))
    # another installation's key gives other noise
    other = dataclasses.replace(fashion, dither_seed=bytes(32))
    assert not np.array_equal(by_content(other.for_sandbox()[0]), by_content(runs[0][0]))


@needs_debian
@needs_shared
def test_cached_arrays_equal_the_seed_transform(prepared: tuple[GraderSettings, list[str]]) -> None:
    """The arrays are exactly ImageFolder + Compose([Resize((96, 96)), ToTensor()]) times 255."""
    check_against_image_folder(prepared[0], SETS[1:], step=1)


def check_against_image_folder(settings: GraderSettings, names: list[str], step: int) -> None:
    import torch
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    transform = transforms.Compose([transforms.Resize((96, 96)), transforms.ToTensor()])
    for name in names:
        dataset = ImageFolder(root=str(settings.hidden_data / name), transform=transform)
        hs = load_hidden(settings, name)
        assert dataset.class_to_idx == {"cat": 0, "dog": 1} and len(dataset) == len(hs)
        manifest = json.loads((settings.hidden_data / "arrays" / name / "96x96/manifest.json").read_text())
        assert [Path(p).relative_to(dataset.root).as_posix() for p, _ in dataset.samples] == manifest["files"]
        for i in range(0, len(dataset), step):
            x, y = dataset[i]
            assert y == hs.labels[i], (name, i)
            assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(np.array(hs.images[i])))
            assert torch.equal(x, torch.from_numpy(np.array(hs.images[i])).float() / 255), (
                name,
                manifest["files"][i],
            )


@needs_debian
def test_fashion_arrays_equal_torchvision_to_tensor(
    prepared: tuple[GraderSettings, list[str]], tmp_path: Path
) -> None:
    import torch
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (T10K_IMAGES, T10K_LABELS):
        (raw / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).touch()  # torchvision only checks that they exist; train=False reads the t10k files
    dataset = FashionMNIST(str(tmp_path), train=False, download=False, transform=transforms.ToTensor())
    hs = load_hidden(prepared[0], "fashion_mnist")
    assert tuple(dataset.classes) == hs.classes
    for i in (0, 1, 4999, 9999):
        x, y = dataset[i]
        assert y == hs.labels[i] and torch.equal(x, torch.from_numpy(hs.images[i] / np.float32(255)))


@needs_shared
def test_other_sizes_for_other_assignments(small_shared: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", small_shared)
    run_prepare(settings, sets=["dogs_and_cats/new"], sizes=[(96, 96), (32, 48)])
    hs = load_hidden(settings, "dogs_and_cats/new", image_size=(32, 48))
    assert hs.images.shape == (2 * PER_CLASS, 3, 32, 48)
    assert load_hidden(settings, "dogs_and_cats/new").images.shape == (2 * PER_CLASS, 3, 96, 96)


@needs_shared
def test_load_hidden_refuses_inconsistent_arrays(small_shared: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", small_shared)
    run_prepare(settings, sets=["dogs_and_cats/new"])
    labels = settings.hidden_data / "arrays/dogs_and_cats/new/96x96/labels.npy"
    np.save(labels, np.zeros(3, dtype=np.int64))
    with pytest.raises(DataUnavailable, match=r"do not match the manifest.*autograder data prepare` --force"):
        load_hidden(settings, "dogs_and_cats/new")
    labels.write_bytes(b"not an npy file")
    with pytest.raises(DataUnavailable, match="cannot read arrays"):
        load_hidden(settings, "dogs_and_cats/new")
    _, logs = run_prepare(settings, sets=["dogs_and_cats/new"], force=True)
    assert len(load_hidden(settings, "dogs_and_cats/new")) == 2 * PER_CLASS


# --- messages ----------------------------------------------------------------------------------


def test_load_hidden_unprepared_says_what_to_do(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(
        DataUnavailable, match=r"'fashion_mnist' at 28x28 is not prepared.*`autograder data prepare`"
    ):
        load_hidden(settings, "fashion_mnist")
    with pytest.raises(DataUnavailable, match=r"known sets: fashion_mnist, dogs_and_cats/orig"):
        load_hidden(settings, "cifar10")


@needs_debian
@needs_shared
def test_dither_key_is_needed_and_never_replaced(prepared: tuple[GraderSettings, list[str]], tmp_path: Path) -> None:
    settings, _ = prepared
    key = settings.hidden_data / "dither.key"
    before = key.read_bytes()
    run_prepare(settings)
    assert key.read_bytes() == before  # a second prepare keeps the key (and so the images gradings see)
    copy = tmp_path / "copy"  # a worker's copy of hidden_data/ without the key
    shutil.copytree(settings.hidden_data, copy, symlinks=True)
    (copy / "dither.key").unlink()
    elsewhere = settings.with_(hidden_data=copy)
    with pytest.raises(DataUnavailable, match=r"dither.key is missing .*`autograder data prepare`"):
        load_hidden(elsewhere, "fashion_mnist", check_fresh=False)
    (copy / "dither.key").write_bytes(b"short")
    with pytest.raises(DataUnavailable, match=r"too short to be a key"):
        load_hidden(elsewhere, "fashion_mnist", check_fresh=False)
    (copy / "dither.key").write_bytes(before)  # the same key: the same dither on every worker
    a = load_hidden(elsewhere, "fashion_mnist", check_fresh=False)
    b = load_hidden(settings, "fashion_mnist")
    assert a.dither_seed == b.dither_seed != load_hidden(settings, "dogs_and_cats/orig").dither_seed


@needs_debian
@needs_shared
def test_load_hidden_other_size_needs_prepare(prepared: tuple[GraderSettings, list[str]]) -> None:
    with pytest.raises(DataUnavailable, match=r"at 224x224 is not prepared.*sizes including \(224, 224\)"):
        load_hidden(prepared[0], "dogs_and_cats/orig", image_size=(224, 224))


def test_prepare_without_fashion_mnist_source_names_the_fix(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailable) as info:
        run_prepare(
            settings, sets=["fashion_mnist"], fashion_mnist_source=tmp_path / "empty", allow_download=False
        )
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "hidden" / "fashion_mnist") in message and "t10k-images-idx3-ubyte.gz" in message


def test_prepare_offline_download_fails_clearly(tmp_path: Path) -> None:
    import socket

    try:
        socket.create_connection(("ossci-datasets.s3.amazonaws.com", 443), timeout=3).close()
        pytest.skip("this machine is online; the offline message cannot be provoked")
    except OSError:
        pass
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailable, match=r"offline.*apt-get install dataset-fashion-mnist"):
        run_prepare(
            make_settings(tmp_path / "hidden"),
            sets=["fashion_mnist"],
            fashion_mnist_source=tmp_path / "empty",
        )


@needs_debian
def test_prepare_rejects_a_corrupt_idx_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden")
    dest = settings.hidden_data / "fashion_mnist"
    dest.mkdir(parents=True)
    shutil.copy(T10K_LABELS, dest)
    (dest / "t10k-images-idx3-ubyte").write_bytes(gzip.decompress(T10K_IMAGES.read_bytes())[:-1])
    with pytest.raises(DataUnavailable, match="truncated"):
        run_prepare(settings, sets=["fashion_mnist"])


def test_prepare_without_dogs_and_cats_source_names_the_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", tmp_path / "nowhere")
    with pytest.raises(DataUnavailable) as info:
        run_prepare(settings, sets=["dogs_and_cats/orig", "dogs_and_cats/aug", "dogs_and_cats/new"])
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "dogs_and_cats" / "orig") in message
    assert str(tmp_path / "nowhere" / "dogs_and_cats" / "new") in message
    assert "cat/ and dog/" in message


@needs_shared
def test_prepare_rejects_misnamed_class_folders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden", tmp_path / "nowhere")
    for cls in ("cats", "dogs"):
        (settings.hidden_data / "dogs_and_cats/orig" / cls).mkdir(parents=True)
        shutil.copy(
            next((SHARED_DC / "orig" / cls[:-1]).iterdir()), settings.hidden_data / "dogs_and_cats/orig" / cls
        )
    with pytest.raises(
        DataUnavailable, match=r"class folders are \['cats', 'dogs'\]; .*exactly cat/ and dog/"
    ):
        run_prepare(settings, sets=["dogs_and_cats/orig"])


def test_importing_grader_data_is_cheap() -> None:
    code = "import sys, grader.data; print(sorted(m for m in ('PIL', 'torch', 'torchvision') if m in sys.modules))"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


# --- the full data -----------------------------------------------------------------------------


@pytest.mark.slow
@needs_debian
@needs_shared
def test_full_prepare(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hidden")
    logs: list[str] = []
    assert prepare(settings=settings, sets=SETS, log=logs.append) == SETS
    expected = {
        "fashion_mnist": (10_000, [1000] * 10),
        "dogs_and_cats/orig": (1593, [796, 797]),
        "dogs_and_cats/aug": (1593, [796, 797]),
        "dogs_and_cats/new": (2000, [1000, 1000]),
    }
    for name, (count, per_class) in expected.items():
        t0 = time.perf_counter()
        hs = load_hidden(settings, name)
        assert time.perf_counter() - t0 < 0.5
        assert len(hs) == count and np.bincount(hs.labels).tolist() == per_class
    assert not (settings.hidden_data / "dogs_and_cats/train").exists()
    check_against_image_folder(settings, SETS[1:], step=1)  # every image, bit for bit
    logs.clear()
    t0 = time.perf_counter()
    prepare(settings=settings, sets=SETS, log=logs.append)
    assert time.perf_counter() - t0 < 2.0 and "nothing to do" in logs[-1]
