"""Hidden sets built from a few source files in one folder of hidden_data/ (IDX, npz, csv, mat): the shared build.

An entry made by `file_set` names how to find its source (`locate`: folder, files, the conversion from those
files to arrays and a description of it) and how to fetch the source when absent; the build here stat-digests the
files, skips when the arrays are current, converts, checks the arrays against the entry and writes them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from grader.data import arrays, stamps
from grader.data.catalog import arrays_dir
from grader.data.errors import DataUnavailable
from grader.data.folders import stat_digest
from grader.data.registry import Convention, HiddenSetEntry, Log, PrepareContext, Size, Step

Convert = Callable[[Path], tuple[np.ndarray, np.ndarray]]
"""From the source folder to (images uint8 (N, C, H, W), labels int64 (N,)) in the entry's conventions."""


@dataclass(frozen=True, slots=True)
class FilesSource:
    """Where one preparation builds a set from, and how."""

    dir: str
    """Folder under hidden_data/."""
    files: tuple[str, ...]
    transform: str
    """What `convert` does, in words (part of the cache key and of the manifest)."""
    convert: Convert
    stand_in: bool | None = None
    """Written into the manifest as "stand_in" unless None."""
    note: str = ""
    """Said after the image count in the log, e.g. " (the EMNIST stand-in)"."""
    kind: str = "files"
    """The manifest's source kind ("files" or "idx": both are checked by stat digest)."""


Locate = Callable[[Path], FilesSource]
"""From hidden_data/ to the source of this preparation (may raise DataUnavailable with the fix)."""


def file_set(
    *, name: str, classes: tuple[str, ...], image_size: Size, channels: int, source: str, locate: Locate,
    fetch: Step, conventions: tuple[Convention, ...] = (), stand_in: bool = False, version: int = 1,
    history: tuple[str, ...] = (), legacy_transforms: tuple[str, ...] | None = None,
) -> HiddenSetEntry:  # fmt: skip
    """A registry entry for a set built from files (`locate`), fetched by `fetch`."""
    return HiddenSetEntry(
        name=name, classes=classes, image_size=image_size, channels=channels, source=source,
        conventions=conventions, stand_in=stand_in, fetch=fetch, build=partial(build_files, locate),
        version=version, history=history, legacy_transforms=legacy_transforms,
    )  # fmt: skip


def fixed_source(src: FilesSource) -> Locate:
    """A `locate` for a set that is always built from the same source."""
    return lambda hidden: src


def from_shared(folder: str, files: tuple[str, ...]) -> Step:
    """A fetch that copies `files` from shared_data/`folder` into hidden_data/`folder` unless they are there."""

    def fetch(entry: HiddenSetEntry, ctx: PrepareContext) -> int:
        src = ctx.shared / folder
        return copy_files(src, ctx.hidden / folder, files, f"copied from {src}", ctx.log)

    return fetch


def copy_files(src: Path, dest: Path, names: tuple[str, ...], origin: str, log: Log) -> int:
    """Copy `names` from src into dest (stamped with `origin`) unless dest has them all; 1 when copied."""
    if all((dest / n).is_file() for n in names):
        return 0
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise DataUnavailable(f"{dest.name}: {', '.join(missing)} not found in {src}; put the files into {dest} "
                              "(or set AUTOGRADER_SHARED_DATA), then run `autograder data prepare`")
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy2(src / n, dest / n)
    write_origin(dest, origin)
    log(f"{dest.name}: {origin}")
    return 1


def write_origin(folder: Path, origin: str) -> None:
    """The source folder's SOURCE.json (where its files came from)."""
    (folder / stamps.SOURCE_STAMP).write_text(json.dumps({"origin": origin}, indent=1) + "\n")


def build_files(locate: Locate, entry: HiddenSetEntry, ctx: PrepareContext) -> int:
    """(Re)build the arrays of `entry` from its located source unless they are current; 1 when built."""
    name, size, log = entry.name, entry.image_size, ctx.log
    src = locate(ctx.hidden)
    root = ctx.hidden / src.dir
    digest = stat_digest(root, list(src.files))
    key = arrays.cache_key(source_digest=digest, transform=src.transform, size=list(size),
                           conventions=entry.fingerprint())
    out = arrays_dir(ctx.hidden, name, size)
    if not ctx.force and arrays.is_current(out, key, entry.manifest_stamp()):
        log(f"{name}: up to date ({out})")
        return 0
    t0 = time.perf_counter()
    images, labels = src.convert(root)
    classes = entry.classes
    if (
        images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (entry.channels, *size)
        or labels.shape != (len(images),)
    ):  # fmt: skip
        raise DataUnavailable(f"{name}: source in {root} gives {images.dtype} {images.shape} and labels "
                              f"{labels.shape}; expected uint8 (N, {entry.channels}, {size[0]}, {size[1]}) and (N,): "
                              "replace it and run `autograder data prepare`")
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataUnavailable(f"{name}: source in {root} has labels outside 0..{len(classes) - 1}: replace it and "
                              "run `autograder data prepare`")
    counts = np.bincount(labels, minlength=len(classes))
    manifest = {
        "name": name, "key": key, "count": int(len(labels)), "classes": list(classes),
        "counts": {c: int(n) for c, n in zip(classes, counts, strict=True)}, "image_size": list(size),
        "transform": src.transform,
        "source": {"kind": src.kind, "dir": src.dir, "files": list(src.files), "digest": digest,
                   "origin": stamps.origin(root)},
        **({} if src.stand_in is None else {"stand_in": src.stand_in}),
        "set": entry.manifest_stamp(),
        "build_seconds": round(time.perf_counter() - t0, 3),
    }  # fmt: skip
    arrays.write_arrays(out, np.ascontiguousarray(images), labels, manifest)
    log(f"{name}: {len(images)} images{src.note} -> {out} ({time.perf_counter() - t0:.2f} s)")
    return 1
