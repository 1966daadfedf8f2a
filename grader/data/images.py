"""Decoding image folders into uint8 arrays exactly as the seed's ImageFolder transform does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from grader.data.folders import FolderListing


def transform_description(size: tuple[int, int]) -> str:
    return (
        f"PIL open + convert('RGB') (ImageFolder's loader), torchvision.transforms.Resize({tuple(size)}) "
        "(PIL bilinear), uint8 pixels in CHW order; divide by 255 to get transforms.ToTensor()'s values"
    )


def load_rgb(path: Path) -> Image.Image:
    """torchvision.datasets.folder.pil_loader."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def folder_arrays(listing: FolderListing, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, H, W) uint8 and labels (N,) int64 of an ImageFolder listing, resized to `size` (H, W)."""
    from torchvision import transforms  # heavy: only when (re)building

    resize = transforms.Resize(tuple(size))
    images = np.empty((len(listing.files), 3, *size), dtype=np.uint8)
    for i, rel in enumerate(listing.files):
        pixels = np.asarray(resize(load_rgb(listing.root / rel)), dtype=np.uint8)
        images[i] = pixels.transpose(2, 0, 1)
    return images, np.asarray(listing.labels, dtype=np.int64)
