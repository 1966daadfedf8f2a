"""The dogs_and_cats image folders (rpz-cnn): orig and new copied from the shared data, aug generated from orig."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.data import arrays, stamps
from grader.data.catalog import DEFAULT_IMAGE_SIZE, DOGS_AND_CATS, DOGS_AND_CATS_CLASSES, arrays_dir
from grader.data.errors import DataUnavailable
from grader.data.folders import FolderListing, list_image_folder, stat_digest
from grader.data.registry import Convention, HiddenSetEntry, Log, PrepareContext, Size

if TYPE_CHECKING:  # importing augment at run time pulls in PIL
    from grader.data.augment import AugmentConfig

ORIG, AUG, NEW = DOGS_AND_CATS
RPZ = "003_44b2933e3c7e9bf0.txt"
"""rpz-cnn's handout (shared/seeds/)."""
_SOURCES = {
    ORIG: "the handout's dogs_and_cats images (shared/data/dogs_and_cats/orig/), copied",
    AUG: "generated from dogs_and_cats/orig by grader.data.augment (deterministic, seeded)",
    NEW: "new photos of cats and dogs (shared/data/dogs_and_cats/new/), copied",
}
CONVENTIONS = (
    Convention("label order", "ImageFolder's order, the sorted class folders: cat = 0, dog = 1",
               "from torchvision.datasets import ImageFolder", RPZ, 668),
    Convention("image orientation", "RGB, channels first (3, 96, 96), upright, the whole photo resized (no crop)",
               "transform=transforms.Compose([transforms.Resize((96, 96)), transforms.ToTensor()])", RPZ, 672),
    Convention("scaling", "uint8 0..255; divided by 255 they are transforms.ToTensor()'s values",
               "transform=transforms.Compose([transforms.Resize((96, 96)), transforms.ToTensor()])", RPZ, 672),
)


def entries() -> tuple[HiddenSetEntry, ...]:
    return tuple(
        HiddenSetEntry(
            name=name, classes=DOGS_AND_CATS_CLASSES, image_size=DEFAULT_IMAGE_SIZE, channels=3,
            source=_SOURCES[name], conventions=CONVENTIONS, resizable=True,
            fetch=_fetch_aug if name == AUG else _fetch_copy, build=_build, needs=(ORIG,) if name == AUG else (),
        )
        for name in DOGS_AND_CATS
    )


def _fetch_copy(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    part = entry.name.removeprefix("dogs_and_cats/")
    return _ensure_copied(ctx.shared / "dogs_and_cats" / part, ctx.hidden / entry.name, ctx.log)


def _fetch_aug(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    from grader.data.augment import AugmentConfig

    return _ensure_aug(ctx.hidden, ctx.augment or AugmentConfig(), ctx.force, ctx.workers, ctx.log)


def _build(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    return sum(_prepare_folder_arrays(entry, ctx.hidden, (int(h), int(w)), ctx.force, ctx.log) for h, w in ctx.sizes)


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
    stamps.write_stamp(tmp, {"origin": f"copied from {src}"})
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
    dest = hidden / AUG
    stamp = stamps.read_stamp(dest)
    if dest.is_dir() and stamp is None:
        log(f"dogs_and_cats/aug: supplied by the instructor (no {stamps.SOURCE_STAMP}), left as is")
        return 0
    orig = _dogs_and_cats_listing(hidden / ORIG)
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
    stamps.write_stamp(tmp, {
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


def _prepare_folder_arrays(entry: HiddenSetEntry, hidden: Path, size: Size, force: bool, log: Log) -> int:
    import PIL

    from grader.data.images import folder_arrays, transform_description

    name = entry.name
    listing = _dogs_and_cats_listing(hidden / name)
    digest, transform = listing.digest(), transform_description(size)
    key = arrays.cache_key(source_digest=digest, transform=transform, size=list(size), pillow=PIL.__version__,
                           conventions=entry.fingerprint())
    out = arrays_dir(hidden, name, size)
    if not force and arrays.is_current(out, key, entry.manifest_stamp()):
        log(f"{name}: up to date ({out})")
        return 0
    t0 = time.perf_counter()
    images, labels = folder_arrays(listing, size)
    manifest = _manifest(
        name, key, size, listing.classes, labels,
        source={"kind": "folder", "dir": name, "digest": digest, "origin": stamps.origin(hidden / name)},
        transform=transform, seconds=time.perf_counter() - t0, files=list(listing.files),
    )  # fmt: skip
    manifest["set"] = entry.manifest_stamp()
    arrays.write_arrays(out, images, labels, manifest)
    log(f"{name}: {len(images)} images {listing.counts()} -> {out} ({time.perf_counter() - t0:.1f} s)")
    return 1


def _manifest(
    name: str, key: str, size: Size, classes: Sequence[str], labels: np.ndarray, *,
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


def _rel(path: Path) -> str:
    return "/".join(path.parts[-2:])
