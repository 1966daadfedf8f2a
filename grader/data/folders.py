"""ImageFolder-compatible listing of an image folder, and stat digests used as cache keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""torchvision.datasets.folder.IMG_EXTENSIONS."""


@dataclass(frozen=True, slots=True)
class FolderListing:
    """The samples torchvision.datasets.ImageFolder(root) would see, in its order."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[str, ...]
    """POSIX paths relative to root, e.g. "cat/cat.1.jpg"."""
    labels: tuple[int, ...]

    def counts(self) -> dict[str, int]:
        return {c: self.labels.count(i) for i, c in enumerate(self.classes)}

    def digest(self) -> str:
        return stat_digest(self.root, self.files)


def list_image_folder(root: Path) -> FolderListing:
    """List `root` exactly as ImageFolder does: sorted class folders, sorted walk, image extensions only."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    classes = tuple(sorted(e.name for e in os.scandir(root) if e.is_dir()))
    files: list[str] = []
    labels: list[int] = []
    for index, cls in enumerate(classes):
        for dirpath, _, names in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
            prefix = os.path.relpath(dirpath, root).replace(os.sep, "/")
            for fname in sorted(names):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    files.append(f"{prefix}/{fname}")
                    labels.append(index)
    return FolderListing(root=root, classes=classes, files=tuple(files), labels=tuple(labels))


def stat_digest(root: Path, relpaths: Iterable[str]) -> str:
    """sha256 over (name, size, mtime) of each file: cheap, and changes when any file is replaced."""
    h = hashlib.sha256()
    base = os.fspath(root)
    for rel in relpaths:
        st = os.stat(os.path.join(base, rel))
        h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
