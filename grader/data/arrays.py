"""The preprocessed-array cache: images.npy, labels.npy and manifest.json per set and size."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT = 1


def cache_key(**parts: Any) -> str:
    """sha256 of everything the arrays depend on (source digest, transform, size, format)."""
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_current(folder: Path, key: str, stamp: dict[str, Any] | None = None) -> bool:
    """The arrays in folder were built with `key` (and carry the set's `stamp`, when given) and are there."""
    manifest = read_manifest(folder)
    return (
        manifest is not None
        and manifest.get("key") == key
        and (stamp is None or manifest.get("set") == stamp)
        and all((folder / f"{part}.npy").is_file() for part in ("images", "labels"))
    )


def _replace_atomically(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _array_info(name: str, array: np.ndarray) -> dict[str, Any]:
    return {
        "file": f"{name}.npy",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).data).hexdigest(),
    }


def write_arrays(
    folder: Path, images: np.ndarray, labels: np.ndarray, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Write both arrays, then the manifest (each by atomic rename); returns the full manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    full = {
        **manifest,
        "format": FORMAT,
        "images": _array_info("images", images),
        "labels": _array_info("labels", labels),
    }
    for name, array in (("images", images), ("labels", labels)):
        _replace_atomically(folder / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False))
    _replace_atomically(folder / MANIFEST, lambda f: f.write(json.dumps(full, indent=1).encode() + b"\n"))
    return full
