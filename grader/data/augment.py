"""Deterministic augmentation of ORIG into AUG: one augmented PNG per image, seeded per file name.

Each image gets its own numpy Generator seeded from sha256(global seed, relative path), so the
output does not depend on processing order, parallelism or torch's global RNG. The operations are
plain PIL calls with the sampled parameters, applied in this order:

1. rotation by an angle in [-max_rotation, +max_rotation] degrees (bicubic), then a crop to the
   largest upright rectangle inside the rotated image, so no black corners appear;
2. random resized crop inside that rectangle (area fraction in crop_scale, aspect ratio in
   crop_ratio), resized back to the original width and height (bicubic);
3. horizontal flip with probability flip_p;
4. colour jitter: brightness, contrast, saturation factors in [1 - x, 1 + x], hue shift in [-hue, hue]
   (fraction of the colour circle);
5. Gaussian blur with probability blur_p, radius (sigma) in blur_sigma.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from grader.data.images import load_rgb

AUGMENT_VERSION = 1
"""Bump when the algorithm changes, so that existing AUG folders are regenerated."""


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    seed: int = 20251123
    max_rotation: float = 20.0
    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.35
    contrast: float = 0.35
    saturation: float = 0.35
    hue: float = 0.04
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.4, 1.6)

    def key(self) -> str:
        """Stable text of the algorithm version and all parameters (part of AUG's cache key)."""
        return json.dumps({"version": AUGMENT_VERSION, **asdict(self)}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class AugmentParams:
    """What was done to one image (sampled by `sample_params`)."""

    angle: float
    box: tuple[float, float, float, float]
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    hue: float
    blur_sigma: float
    """0.0 means no blur."""


def image_seed(seed: int, relpath: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{relpath}".encode()).digest()[:8], "big")


def _inscribed(w: float, h: float, angle_deg: float) -> tuple[float, float]:
    """Largest axis-aligned rectangle inside a w x h rectangle rotated by angle_deg."""
    a = math.radians(angle_deg)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short_side
        return (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a


def sample_params(cfg: AugmentConfig, rng: np.random.Generator, width: int, height: int) -> AugmentParams:
    angle = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    iw, ih = _inscribed(width, height, angle)
    area = iw * ih * rng.uniform(*cfg.crop_scale)
    ratio = math.exp(rng.uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])))
    cw, ch = min(iw, math.sqrt(area * ratio)), min(ih, math.sqrt(area / ratio))
    left = (width - iw) / 2 + rng.uniform(0, iw - cw)
    top = (height - ih) / 2 + rng.uniform(0, ih - ch)
    flip = bool(rng.random() < cfg.flip_p)
    brightness, contrast, saturation = (
        float(rng.uniform(1 - x, 1 + x)) for x in (cfg.brightness, cfg.contrast, cfg.saturation)
    )
    hue = float(rng.uniform(-cfg.hue, cfg.hue))
    blur = float(rng.uniform(*cfg.blur_sigma)) if rng.random() < cfg.blur_p else 0.0
    return AugmentParams(
        angle, (left, top, left + cw, top + ch), flip, brightness, contrast, saturation, hue, blur
    )


def _shift_hue(img: Image.Image, hue: float) -> Image.Image:
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(hue * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def apply(img: Image.Image, p: AugmentParams) -> Image.Image:
    """Apply sampled parameters to an RGB image; the output has the input's size."""
    size = img.size
    out = img.rotate(p.angle, resample=Image.Resampling.BICUBIC, expand=False)
    out = out.resize(size, Image.Resampling.BICUBIC, box=p.box)
    if p.flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(p.brightness)
    out = ImageEnhance.Contrast(out).enhance(p.contrast)
    out = ImageEnhance.Color(out).enhance(p.saturation)
    if p.hue:
        out = _shift_hue(out, p.hue)
    if p.blur_sigma:
        out = out.filter(ImageFilter.GaussianBlur(radius=p.blur_sigma))
    return out


def augment_file(src_root: Path, dst_root: Path, relpath: str, cfg: AugmentConfig) -> str:
    """Augment one image of src_root into dst_root as PNG; returns the output's relative path."""
    img = load_rgb(src_root / relpath)
    rng = np.random.default_rng(image_seed(cfg.seed, relpath))
    out = apply(img, sample_params(cfg, rng, *img.size))
    rel_out = Path(relpath).with_suffix(".png").as_posix()
    (dst_root / rel_out).parent.mkdir(parents=True, exist_ok=True)
    out.save(dst_root / rel_out, format="PNG", compress_level=6)
    return rel_out
