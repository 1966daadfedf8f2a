"""The FashionMNIST test set (rpz-cnn): Debian's dataset-fashion-mnist package, or torchvision's download."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np

from grader.data import stamps
from grader.data.catalog import FASHION_MNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_SIZE
from grader.data.errors import DataUnavailable
from grader.data.file_sets import FilesSource, file_set
from grader.data.registry import Convention, HiddenSetEntry, Log, PrepareContext

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MIRROR = "ossci-datasets.s3.amazonaws.com"
TRANSFORM = "IDX uint8 pixels as (N, 1, 28, 28); divide by 255 to get transforms.ToTensor()'s values"
RPZ = "003_44b2933e3c7e9bf0.txt"
"""rpz-cnn's handout (shared/seeds/)."""


def entries() -> tuple[HiddenSetEntry, ...]:
    return (
        file_set(
            name=FASHION_MNIST, classes=FASHION_MNIST_CLASSES, image_size=FASHION_MNIST_SIZE, channels=1,
            fetch=_fetch, locate=_locate,
            source=f"FashionMNIST's t10k IDX files: Debian's dataset-fashion-mnist ({DEBIAN_FASHION_MNIST}), else "
                   "torchvision's download",
            conventions=(
                Convention("label order", "torchvision's FashionMNIST.classes: 0 T-shirt/top ... 9 Ankle boot",
                           "dataset = datasets.FashionMNIST('data', train=True, download=True,", RPZ, 600),
                Convention("image orientation", "upright, row by row, as torchvision reads the IDX files"),
                Convention("scaling", "uint8 0..255; divided by 255 they are transforms.ToTensor()'s values",
                           "transform=transforms.ToTensor())", RPZ, 601),
            ),
        ),
    )


def _fashion_files(folder: Path) -> list[Path] | None:
    """The two test-set IDX files in folder (plain or .gz), or None when either is missing."""
    found = []
    for stem in FASHION_FILES:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found


def _locate(hidden: Path) -> FilesSource:
    dest = hidden / FASHION_MNIST
    files = _fashion_files(dest)
    if files is None:
        raise _missing_fashion(dest, DEBIAN_FASHION_MNIST, "not in hidden_data")
    return FilesSource(dir=FASHION_MNIST, files=tuple(f.name for f in files), transform=TRANSFORM, kind="idx",
                       convert=lambda root: _convert(files))


def _convert(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    from grader.data.idx import IdxError, read_idx

    try:
        images, labels = read_idx(files[0]), read_idx(files[1])
    except IdxError as exc:
        raise DataUnavailable(
            f"fashion_mnist: {exc}; replace the file and run `autograder data prepare`"
        ) from exc
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != FASHION_MNIST_SIZE:
        raise DataUnavailable(
            f"fashion_mnist: {files[0]} holds {images.dtype} {images.shape}; expected uint8 (N, 28, 28)"
        )
    if (
        labels.ndim != 1
        or len(labels) != len(images)
        or (labels.size and labels.max() >= len(FASHION_MNIST_CLASSES))
    ):
        raise DataUnavailable(
            f"fashion_mnist: {files[1]} holds {labels.shape} labels for {len(images)} images, or a label >= 10"
        )
    return images[:, None], labels.astype(np.int64)


def _missing_fashion(dest: Path, source: Path, reason: str) -> DataUnavailable:
    return DataUnavailable(
        f"FashionMNIST test set not found ({reason}). Install Debian's package with "
        f"`sudo apt-get install dataset-fashion-mnist` (it puts the IDX files in {DEBIAN_FASHION_MNIST}), or put "
        f"{FASHION_FILES[0]}.gz and {FASHION_FILES[1]}.gz (or the uncompressed files) into {dest} "
        f"(looked in {dest} and {source}), then run `autograder data prepare` again."
    )


def _fetch(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    dest, source, log = ctx.hidden / FASHION_MNIST, ctx.fashion_mnist_source, ctx.log
    if _fashion_files(dest):
        return 0
    files = _fashion_files(source)
    if files:
        origin = f"copied from {source}"
    elif not ctx.allow_download:
        raise _missing_fashion(dest, source, "downloading disabled")
    else:
        try:
            socket.create_connection((FASHION_MIRROR, 443), timeout=5).close()
        except OSError as exc:
            raise _missing_fashion(dest, source, f"offline: {exc}") from exc
        tmp = Path(tempfile.mkdtemp(prefix="fashion-mnist-"))
        try:
            files = _download_fashion(tmp, log)
            origin = "downloaded by torchvision.datasets.FashionMNIST(train=False, download=True)"
            return _copy_fashion(files, dest, origin, log)
        except Exception as exc:  # any download failure becomes a message for the instructor
            raise _missing_fashion(dest, source, f"download failed: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _copy_fashion(files, dest, origin, log)


def _download_fashion(tmp: Path, log: Log) -> list[Path]:
    from torchvision.datasets import FashionMNIST

    log("fashion_mnist: not on this machine; downloading with torchvision")
    FashionMNIST(str(tmp), train=False, download=True)
    files = _fashion_files(tmp / "FashionMNIST" / "raw")
    if not files:
        raise RuntimeError("torchvision did not leave the raw IDX files")
    return files


def _copy_fashion(files: list[Path], dest: Path, origin: str, log: Log) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    stamps.write_stamp(dest, {"origin": origin})
    log(f"fashion_mnist: {origin} into {dest}")
    return 1
