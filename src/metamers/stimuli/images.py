"""Natural pictures: those inside scikit-image and scikit-learn, and photographs from Debian packages
(:mod:`metamers.stimuli.photos`), centre-cropped and resized for a model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from metamers.stimuli.photos import PHOTO_IMAGES, read_photo

__all__ = [
    "BUILTIN_IMAGES",
    "IMAGES",
    "NULL_IMAGES",
    "PHOTOS",
    "full_images",
    "load_photos",
    "save_png",
    "sixteen_way_photos",
    "to_image_tensor",
]

# Every picture scikit-image ships that loads offline (``skimage.data``; ``cat`` is ``chelsea`` again and is left
# out), and scikit-learn's two sample photographs: name -> (what it shows, its category in the 16-way task of Geirhos
# et al. 2018 or None, source and license as the packages' own notes give them).  19 distinct images.
IMAGES: dict[str, tuple[str, str | None, str]] = {
    "astronaut": ("astronaut Eileen Collins", None, "NASA Great Images; public domain"),
    "brick": ("a brick wall", None, "CC0Textures; CC0"),
    "camera": ("a man with a camera on a tripod (grey)", None, "Lav Varshney; CC0"),
    "chelsea": ("Chelsea the cat", "cat", "Stefan van der Walt; CC0"),
    "clock": ("a wall clock, motion-blurred (grey)", "clock", "Stefan van der Walt; public domain"),
    "coffee": ("a cup of coffee", None, "Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0"),
    "coins": ("Greek coins from Pompeii (grey)", None, "Brooklyn Museum Collection; no known copyright restrictions"),
    "grass": ("grass (grey)", None, "DeviantArt (linolafett); CC0"),
    "gravel": ("gravel (grey)", None, "CC0Textures; CC0"),
    "hubble_deep_field": ("the Hubble eXtreme Deep Field", None, "NASA / HubbleSite; public domain"),
    "immunohistochemistry": ("immunohistochemical staining", None, "no known copyright restrictions"),
    "moon": ("the surface of the moon (grey)", None, "scikit-image test image; no license stated"),
    "retina": ("a human retina (fundus photograph)", None, "Wikimedia Commons; CC0"),
    "rocket": ("the launch of DSCOVR on a Falcon 9", None, "SpaceX; public domain"),
    "cell": ("a cell floating in saline (phase image)", None, "CC0"),
    "page": ("a scanned page of text (grey)", None, "scikit-image test image; no license stated"),
    "text": ("printed text (grey)", None, "Wikipedia; public domain"),
    "china": ("a Chinese temple (scikit-learn)", None, "danielbuechele on Flickr; CC BY 2.0"),
    "flower": ("a flower (scikit-learn)", None, "vultilion on Flickr; CC BY 2.0"),
}
# The 19 above install with the Python packages; the photographs of GCompris (``gc_*``) and of Tux Paint's stamps
# (``tp_*``) with the Debian packages gcompris-qt-data and tuxpaint-stamps-default (``scripts/system-packages demo``).
BUILTIN_IMAGES: tuple[str, ...] = tuple(IMAGES)
IMAGES.update(PHOTO_IMAGES)
# where each picture comes from: scikit-image's ``skimage.data`` unless listed here
_SKLEARN = {"china": "china.jpg", "flower": "flower.jpg"}
# The photographs the demo uses (objects a person would name).
PHOTOS: dict[str, tuple[str, str]] = {
    n: (IMAGES[n][0], IMAGES[n][2]) for n in ("chelsea", "coffee", "rocket", "astronaut", "camera", "clock")
}
# The default source of null distributions: the 19 built-in pictures (natural images in the broad sense; none is
# synthetic), which install with the Python packages, so a null and its key in the null store stay as they were.
# Any names of IMAGES can be given instead (``validate_dir(..., images=NULL_IMAGES + tuple(PHOTO_IMAGES))``).
NULL_IMAGES: tuple[str, ...] = BUILTIN_IMAGES


def sixteen_way_photos() -> dict[str, str]:
    """The pictures of :data:`IMAGES` that show one of the 16 categories of the 16-way task: name -> category.

    Examples
    --------
    >>> cats = [n for n, c in sixteen_way_photos().items() if c == "cat"]
    >>> cats
    ['chelsea', 'gc_cat', 'gc_kitten']
    """
    return {n: c for n, (_, c, _) in IMAGES.items() if c is not None}


def full_images(names: Sequence[str] = NULL_IMAGES) -> list[torch.Tensor]:
    """Pictures at full resolution as ``(3, H, W)`` tensors in [0, 1] (grey ones repeated to RGB; stamps composited
    onto a square grey canvas).

    Examples
    --------
    >>> [tuple(t.shape) for t in full_images(["chelsea", "camera"])]
    [(3, 300, 451), (3, 512, 512)]
    """
    out = []
    for n in names:
        img = _raw(n)
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1).clamp(0, 1))
    return out


def _raw(name: str) -> np.ndarray:
    """One picture as the package ships it (a Debian photograph as :func:`.photos.read_photo` gives it)."""
    if name in PHOTO_IMAGES:
        return read_photo(name)
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(_SKLEARN[name]))
    from skimage import data

    return np.asarray(getattr(data, name)())


def to_image_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    """An RGB(A)/grey uint8 or float image as a ``(3, size, size)`` float tensor in [0, 1], centre-cropped square.

    Examples
    --------
    >>> to_image_tensor(np.zeros((10, 20), dtype=np.uint8), 8).shape
    torch.Size([3, 8, 8])
    """
    from skimage.transform import resize

    img = np.asarray(img)
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    k = min(h, w)
    top, left = (h - k) // 2, (w - k) // 2
    img = resize(img[top : top + k, left : left + k], (size, size), anti_aliasing=True)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).clamp(0, 1).float()


def load_photos(names: Sequence[str] | None = None, size: int = 224) -> tuple[torch.Tensor, list[str]]:
    """Load pictures of :data:`IMAGES` as a batch ``(N, 3, size, size)`` in [0, 1] (default: :data:`PHOTOS`).

    Examples
    --------
    >>> x, names = load_photos(["chelsea", "coffee"], size=64)
    >>> tuple(x.shape), names
    ((2, 3, 64, 64), ['chelsea', 'coffee'])
    """
    names = list(names) if names is not None else list(PHOTOS)
    unknown = [n for n in names if n not in IMAGES]
    if unknown:
        shown = ", ".join(list(IMAGES)[:30])
        raise ValueError(
            f"unknown photo(s) {unknown}; choose from metamers.stimuli.IMAGES ({shown}, ...: {len(IMAGES)})."
        )
    return torch.stack([to_image_tensor(_raw(n), size) for n in names]), names


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a ``(3, H, W)`` image in [0, 1] as an 8-bit PNG (what a person sees)."""
    from PIL import Image

    arr = (image.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path
