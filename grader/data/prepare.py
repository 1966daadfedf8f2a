"""`autograder data prepare`: build hidden_data/ from the real sources, idempotently.

Source folders (fashion_mnist/, dogs_and_cats/orig/, dogs_and_cats/new/) are copied in only when
absent, so an instructor's substitutes are never overwritten; AUG is regenerated whenever ORIG or
the augmentation changes (unless the instructor supplied their own); the arrays are rebuilt whenever
their source listing (names, sizes, mtimes), the transform or Pillow's version changes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.data import arrays
from grader.data.catalog import (
    ALL_SETS,
    DEFAULT_IMAGE_SIZE,
    DOGS_AND_CATS,
    DOGS_AND_CATS_CLASSES,
    EXTRA_SETS,
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SIZE,
    arrays_dir,
)
from grader.data.dither_key import KEY_FILE, ensure_key
from grader.data.errors import DataUnavailable
from grader.data.extra import prepare_extra
from grader.data.folders import FolderListing, list_image_folder, stat_digest
from grader.settings import GraderSettings

if TYPE_CHECKING:  # importing augment at run time pulls in PIL
    from grader.data.augment import AugmentConfig

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SOURCE_STAMP = "SOURCE.json"
"""Written into each source folder prepare creates: where it came from (for AUG: its cache key)."""
FASHION_MIRROR = "ossci-datasets.s3.amazonaws.com"

ORIG, AUG, NEW = DOGS_AND_CATS
Log = Callable[[str], None]


def prepare(
    *,
    settings: GraderSettings,
    force: bool = False,
    log: Log = print,
    sets: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = (DEFAULT_IMAGE_SIZE,),
    fashion_mnist_source: Path = DEBIAN_FASHION_MNIST,
    allow_download: bool = True,
    augment: AugmentConfig | None = None,
    workers: int | None = None,
) -> list[str]:
    """Build settings.hidden_data; returns the names of the sets that are ready.

    `force` rebuilds AUG and all arrays but never overwrites source folders. `sizes` are the
    (height, width) the image-folder sets are cached at. Raises DataUnavailable (after preparing
    everything it could) when a source is missing.
    """
    from grader.data.augment import AugmentConfig

    wanted = ALL_SETS if sets is None else tuple(sets)
    unknown = sorted(set(wanted) - set(ALL_SETS))
    if unknown:
        raise ValueError(f"unknown hidden sets {unknown}; known: {list(ALL_SETS)}")
    hidden = Path(settings.hidden_data)
    hidden.mkdir(parents=True, exist_ok=True)
    start, built, ready, errors, failed = time.perf_counter(), 0, [], [], set()
    if ensure_key(hidden):  # never replaced: a new key changes the images every later grading sees
        built += 1
        log(f"{hidden / KEY_FILE}: new secret dither key (keep it with the data; copies of hidden_data/ need it)")

    def attempt(name: str, work: Callable[[], int]) -> bool:
        nonlocal built
        try:
            built += work()
            return True
        except DataUnavailable as exc:
            errors.append(str(exc))
            failed.add(name)
            log(f"{name}: NOT prepared: {exc}")
            return False

    if FASHION_MNIST in wanted and attempt(
        FASHION_MNIST, lambda: _prepare_fashion(hidden, fashion_mnist_source, allow_download, force, log)
    ):
        ready.append(FASHION_MNIST)
    shared = Path(settings.shared_data) / "dogs_and_cats"
    sources: dict[str, Callable[[], int]] = {  # orig before aug, which is made from it
        ORIG: lambda: _ensure_copied(shared / "orig", hidden / ORIG, log),
        NEW: lambda: _ensure_copied(shared / "new", hidden / NEW, log),
        AUG: lambda: _ensure_aug(hidden, augment or AugmentConfig(), force, workers, log),
    }
    for name, work in sources.items():
        if name in wanted or (name == ORIG and AUG in wanted):
            if name == AUG and ORIG in failed:
                failed.add(AUG)
            else:
                attempt(name, work)
    for name in wanted:
        if name in sources and name not in failed:
            work = partial(_prepare_folder_arrays_all, hidden, name, sizes, force, log)
            if attempt(name, work):
                ready.append(name)
    for name in wanted:
        if name in EXTRA_SETS and attempt(name, partial(prepare_extra, hidden, name, Path(settings.shared_data), force, log)):
            ready.append(name)
    if errors:
        raise DataUnavailable("\n".join(errors))
    elapsed = time.perf_counter() - start
    if built == 0:
        log(f"hidden data in {hidden} is up to date ({', '.join(ready)}): nothing to do ({elapsed:.2f} s)")
    else:
        log(f"hidden data in {hidden} prepared ({', '.join(ready)}) in {elapsed:.1f} s")
    return ready


# --- FashionMNIST -------------------------------------------------------------------------------


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


def _missing_fashion(dest: Path, source: Path, reason: str) -> DataUnavailable:
    return DataUnavailable(
        f"FashionMNIST test set not found ({reason}). Install Debian's package with "
        f"`sudo apt-get install dataset-fashion-mnist` (it puts the IDX files in {DEBIAN_FASHION_MNIST}), or put "
        f"{FASHION_FILES[0]}.gz and {FASHION_FILES[1]}.gz (or the uncompressed files) into {dest} "
        f"(looked in {dest} and {source}), then run `autograder data prepare` again."
    )


def _ensure_fashion_source(dest: Path, source: Path, allow_download: bool, log: Log) -> int:
    if _fashion_files(dest):
        return 0
    files = _fashion_files(source)
    if files:
        origin = f"copied from {source}"
    elif not allow_download:
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
    _write_stamp(dest, {"origin": origin})
    log(f"fashion_mnist: {origin} into {dest}")
    return 1


def _prepare_fashion(hidden: Path, source: Path, allow_download: bool, force: bool, log: Log) -> int:
    from grader.data.idx import IdxError, read_idx

    dest = hidden / FASHION_MNIST
    built = _ensure_fashion_source(dest, source, allow_download, log)
    files = _fashion_files(dest)
    assert files is not None
    rel = [f.name for f in files]
    digest = stat_digest(dest, rel)
    transform = "IDX uint8 pixels as (N, 1, 28, 28); divide by 255 to get transforms.ToTensor()'s values"
    key = arrays.cache_key(source_digest=digest, transform=transform, size=list(FASHION_MNIST_SIZE))
    out = arrays_dir(hidden, FASHION_MNIST, FASHION_MNIST_SIZE)
    if not force and arrays.is_current(out, key):
        log(f"fashion_mnist: up to date ({out})")
        return built
    t0 = time.perf_counter()
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
    labels = labels.astype(np.int64)
    manifest = _manifest(
        FASHION_MNIST, key, FASHION_MNIST_SIZE, FASHION_MNIST_CLASSES, labels,
        source={"kind": "idx", "dir": FASHION_MNIST, "files": rel, "digest": digest, "origin": _origin(dest)},
        transform=transform, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    arrays.write_arrays(out, images[:, None], labels, manifest)
    log(f"fashion_mnist: {len(images)} images -> {out} ({time.perf_counter() - t0:.2f} s)")
    return built + 1


# --- image folders (dogs_and_cats) ----------------------------------------------------------------


def _ensure_copied(src: Path, dest: Path, log: Log) -> int:
    """Copy the ImageFolder src to dest when dest does not exist yet (never overwrites)."""
    if dest.is_dir():
        return 0
    if not src.is_dir():
        raise DataUnavailable(
            f"{dest} is missing and its source {src} does not exist: put an ImageFolder with cat/ and dog/ "
            f"sub-folders at {dest} (or set AUTOGRADER_SHARED_DATA), then run `autograder data prepare`"
        )
    t0 = time.perf_counter()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=shutil.copy2)
    _write_stamp(tmp, {"origin": f"copied from {src}"})
    os.replace(tmp, dest)
    log(f"{_rel(dest)}: copied from {src} ({time.perf_counter() - t0:.1f} s)")
    return 1


def _dogs_and_cats_listing(root: Path) -> FolderListing:
    try:
        listing = list_image_folder(root)
    except FileNotFoundError as exc:
        raise DataUnavailable(f"{root} is missing; run `autograder data prepare`") from exc
    if listing.classes != DOGS_AND_CATS_CLASSES:
        raise DataUnavailable(
            f"{root}: class folders are {list(listing.classes)}; dogs_and_cats needs exactly cat/ and dog/ (cat=0, dog=1)"
        )
    empty = [c for c, n in listing.counts().items() if n == 0]
    if empty:
        raise DataUnavailable(f"{root}: no images in {empty}")
    return listing


def _ensure_aug(hidden: Path, cfg: AugmentConfig, force: bool, workers: int | None, log: Log) -> int:
    dest = hidden / "dogs_and_cats/aug"
    stamp = _read_stamp(dest)
    if dest.is_dir() and stamp is None:
        log(f"dogs_and_cats/aug: supplied by the instructor (no {SOURCE_STAMP}), left as is")
        return 0
    orig = _dogs_and_cats_listing(hidden / "dogs_and_cats/orig")
    key = arrays.cache_key(orig_digest=orig.digest(), augment=cfg.key())
    if (
        not force
        and stamp
        and stamp.get("key") == key
        and _listing_digest(dest) == stamp.get("output_digest")
    ):
        log("dogs_and_cats/aug: up to date")
        return 0
    t0 = time.perf_counter()
    tmp = dest.with_name(f".aug.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    outputs = _augment_all(orig, tmp, cfg, workers)
    _write_stamp(tmp, {
        "origin": "generated from dogs_and_cats/orig by grader.data.augment (see hidden_data/README.md)",
        "key": key, "augment": json.loads(cfg.key()), "files": len(outputs),
        "output_digest": stat_digest(tmp, outputs),
    })  # fmt: skip
    old = dest.with_name(f".aug.{os.getpid()}.old")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    log(f"dogs_and_cats/aug: generated {len(outputs)} images from orig ({time.perf_counter() - t0:.1f} s)")
    return 1


def _augment_all(orig: FolderListing, dest: Path, cfg: AugmentConfig, workers: int | None) -> list[str]:
    from grader.data.augment import augment_file

    n = workers or min(4, os.cpu_count() or 1)
    args = [(orig.root, dest, rel, cfg) for rel in orig.files]
    if n <= 1:
        return [augment_file(*a) for a in args]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=n) as pool:
        return list(pool.map(augment_file, *zip(*args, strict=True), chunksize=32))


def _listing_digest(root: Path) -> str | None:
    try:
        return list_image_folder(root).digest()
    except FileNotFoundError:
        return None


def _prepare_folder_arrays_all(
    hidden: Path, name: str, sizes: Sequence[tuple[int, int]], force: bool, log: Log
) -> int:
    return sum(_prepare_folder_arrays(hidden, name, (int(h), int(w)), force, log) for h, w in sizes)


def _prepare_folder_arrays(hidden: Path, name: str, size: tuple[int, int], force: bool, log: Log) -> int:
    import PIL

    from grader.data.images import folder_arrays, transform_description

    listing = _dogs_and_cats_listing(hidden / name)
    digest, transform = listing.digest(), transform_description(size)
    key = arrays.cache_key(source_digest=digest, transform=transform, size=list(size), pillow=PIL.__version__)
    out = arrays_dir(hidden, name, size)
    if not force and arrays.is_current(out, key):
        log(f"{name}: up to date ({out})")
        return 0
    t0 = time.perf_counter()
    images, labels = folder_arrays(listing, size)
    manifest = _manifest(
        name, key, size, listing.classes, labels,
        source={"kind": "folder", "dir": name, "digest": digest, "origin": _origin(hidden / name)},
        transform=transform, seconds=time.perf_counter() - t0, files=list(listing.files),
    )  # fmt: skip
    arrays.write_arrays(out, images, labels, manifest)
    log(f"{name}: {len(images)} images {listing.counts()} -> {out} ({time.perf_counter() - t0:.1f} s)")
    return 1


# --- helpers ----------------------------------------------------------------------------------


def _manifest(
    name: str, key: str, size: tuple[int, int], classes: Sequence[str], labels: np.ndarray, *,
    source: dict[str, Any], transform: str, seconds: float, files: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    counts = np.bincount(labels, minlength=len(classes))
    manifest: dict[str, Any] = {
        "name": name, "key": key, "count": int(len(labels)), "classes": list(classes),
        "counts": {c: int(n) for c, n in zip(classes, counts, strict=True)}, "image_size": list(size),
        "transform": transform, "source": source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "build_seconds": round(seconds, 3),
    }  # fmt: skip
    if files is not None:
        manifest["files"] = files
    return manifest


def _write_stamp(folder: Path, data: dict[str, Any]) -> None:
    stamp = {**data, "prepared": datetime.now(UTC).isoformat(timespec="seconds")}
    (folder / SOURCE_STAMP).write_text(json.dumps(stamp, indent=1) + "\n")


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SOURCE_STAMP).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _origin(folder: Path) -> str:
    stamp = _read_stamp(folder)
    return stamp["origin"] if stamp else f"supplied by the instructor (no {SOURCE_STAMP})"


def _rel(path: Path) -> str:
    return "/".join(path.parts[-2:])
