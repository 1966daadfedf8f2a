"""Loading a prepared hidden set at grading time (numpy only: cheap to import, fast to call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.data import registry
from grader.data.arrays import read_manifest
from grader.data.catalog import PREPARE_HINT, arrays_dir
from grader.data.dither_key import read_key, set_seed
from grader.data.errors import DataUnavailable
from grader.data.folders import list_image_folder, stat_digest
from grader.settings import GraderSettings

DITHER_LEVELS = 1
"""Default dither of 8-bit hidden images (scale 255) a run shows the sandbox, in grey levels; images on other
scales (sklearn digits: 0..16) get none unless asked. 0 shows them bit-exact."""
_DITHER_CHUNK = 256


@dataclass(frozen=True, slots=True, eq=False)
class HiddenSet:
    """A hidden test set as the judge holds it. Labels stay on the judge's side, always."""

    name: str
    images: np.ndarray
    """uint8 (N, C, H, W), read-only (memory-mapped). Divided by 255 in float32 (torch's `.float() / 255`,
    numpy's `/ np.float32(255)`) they equal transforms.ToTensor()'s values bit for bit."""
    labels: np.ndarray
    """int64 (N,), indices into classes."""
    classes: tuple[str, ...]
    dither_seed: bytes
    """Seed of this set's dither noise, from the installation's secret key (`grader.data.dither_key`)."""
    stand_in: bool = False
    """A stand-in for the course's own test set (manifest ``"stand_in": true``, e.g. nist36_like built from
    EMNIST): checks may hold it to a bar calibrated for it instead of the handout's."""

    def __len__(self) -> int:
        return len(self.labels)

    def for_sandbox(
        self, *, dither: int | None = None, scale: float = 255.0, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of `shown` (its order stays with the caller's judge)."""
        images, labels, _ = self.shown(dither=dither, scale=scale, rng=rng)
        return images, labels

    def shown(
        self, *, dither: int | None = None, scale: float = 255.0, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What one run may show the sandbox: (images, labels), both in a fresh random order (OS entropy unless
        rng is given), every pixel moved by a whole number of grey levels in -dither..+dither (clipped to
        0..255; None: DITHER_LEVELS for 8-bit images, i.e. `scale` 255, else 0). The images go to the
        sandbox, the labels stay with the judge.

        The public test sets' labels can be downloaded: the order makes a list of them in test-set order
        worthless, the dither a table keyed by a public image's exact bytes, its zero mask or a coarse
        quantization of it. The dither noise comes from the secret key, the same for every run: a regrade
        gives the same accuracy and every student is graded on the same images. A real network does not
        notice (`bench/dither.py`). The third array is the order: the stored index of each image shown (for
        metrics the handout computes over the set in its stored order, e.g. means over its batches).
        """
        dither = (DITHER_LEVELS if scale == 255 else 0) if dither is None else int(dither)
        rng = rng or np.random.default_rng()
        perm = rng.permutation(len(self.labels))
        where = np.empty_like(perm)
        where[perm] = np.arange(len(perm))  # where[i]: the position image i is shown at
        noise = np.random.default_rng(np.frombuffer(self.dither_seed, dtype=np.uint32))
        images = np.empty(self.images.shape, np.uint8)
        for start in range(0, len(perm), _DITHER_CHUNK):  # in stored order: same noise per image every run
            chunk = self.images[start:start + _DITHER_CHUNK]
            if dither:
                noisy = chunk.astype(np.int16)  # chunks keep the int16 copies small and in cache
                noisy += noise.integers(-dither, dither + 1, size=noisy.shape, dtype=np.int16)
                chunk = np.clip(noisy, 0, 255, out=noisy)
            images[where[start:start + _DITHER_CHUNK]] = chunk
        labels = self.labels[perm]
        labels.setflags(write=False)
        return images, labels, perm


def load_hidden(
    settings: GraderSettings,
    name: str,
    *,
    image_size: tuple[int, int] | None = None,
    mmap: bool = True,
    check_fresh: bool = True,
) -> HiddenSet:
    """Load the registered set `name` (e.g. "fashion_mnist", "dogs_and_cats/orig", "nist36_like") at image_size (H, W).

    image_size defaults to the set's registry entry (28x28 for fashion_mnist, 96x96 for image folders). With
    check_fresh, the source folder's listing (names, sizes, mtimes) must still match what the arrays were built
    from. Raises DataUnavailable, with what to do, when the set is unknown, missing, stale (prepared from other
    files or under other conventions than its entry's) or inconsistent.
    """
    entry = registry.get(name, settings.assignment_dirs)
    if entry is None:
        raise DataUnavailable(f"unknown hidden set {name!r} (known sets: "
                              f"{', '.join(registry.names(settings.assignment_dirs))})")
    size = tuple(image_size or entry.image_size)
    hidden = Path(settings.hidden_data)
    folder = arrays_dir(hidden, name, size)  # type: ignore[arg-type]
    manifest = read_manifest(folder)
    if manifest is None:
        if size != entry.image_size and not entry.resizable:
            h, w = entry.image_size
            raise DataUnavailable(f"hidden set {name!r} exists at {h}x{w} only, not at {size[0]}x{size[1]}")
        raise DataUnavailable(
            f"hidden set {name!r} at {size[0]}x{size[1]} is not prepared in {hidden}: {PREPARE_HINT}"
            + ("" if size == entry.image_size else f" with sizes including {size}")
        )
    stale = registry.stale_message(entry, folder, manifest)
    if stale:
        raise DataUnavailable(stale)
    if check_fresh:
        _check_fresh(hidden, name, manifest)
    try:
        images = np.load(folder / "images.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataUnavailable(
            f"hidden set {name!r}: cannot read arrays in {folder} ({exc}): {PREPARE_HINT}"
        ) from exc
    classes = tuple(manifest["classes"])
    n = manifest["count"]
    if (
        images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != n or tuple(images.shape[2:]) != size
        or labels.dtype != np.int64 or labels.shape != (n,)
        or (n and (labels.min() < 0 or labels.max() >= len(classes)))
    ):  # fmt: skip
        raise DataUnavailable(
            f"hidden set {name!r}: arrays in {folder} ({images.dtype} {images.shape}, labels {labels.dtype} "
            f"{labels.shape}) do not match the manifest ({n} images, {size}): {PREPARE_HINT} --force"
        )
    labels.setflags(write=False)
    seed = set_seed(read_key(hidden), name, size)
    return HiddenSet(name=name, images=images, labels=labels, classes=classes, dither_seed=seed,
                     stand_in=bool(manifest.get("stand_in", False)))


def _check_fresh(hidden: Path, name: str, manifest: dict[str, Any]) -> None:
    source = manifest["source"]
    root = hidden / source["dir"]
    try:
        if source["kind"] in ("idx", "files"):
            digest = stat_digest(root, source["files"])
        else:
            digest = list_image_folder(root).digest()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise DataUnavailable(
            f"hidden set {name!r}: its source {root} is gone ({exc}): {PREPARE_HINT}"
        ) from exc
    if digest != source["digest"]:
        raise DataUnavailable(
            f"hidden set {name!r}: the files in {root} changed since the arrays were built: {PREPARE_HINT}"
        )
