"""Natural photographs that ship inside scikit-image, centre-cropped and resized for a model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["NULL_IMAGES", "PHOTOS", "full_images", "load_photos", "to_image_tensor"]

# name in skimage.data -> (what it shows, source and license as scikit-image documents them)
PHOTOS: dict[str, tuple[str, str]] = {
    "chelsea": ("a tabby cat", "Stefan van der Walt, CC0"),
    "coffee": ("a cup of coffee", "Rachel Michetti, CC0"),
    "rocket": ("a rocket on a launch pad", "SpaceX, CC0"),
    "astronaut": ("astronaut Eileen Collins", "NASA, public domain"),
    "camera": ("a man with a camera on a tripod (greyscale)", "scikit-image, CC0"),
}


# Every scikit-image picture that loads offline, for null distributions: photographs, textures, microscopy and
# astronomy (natural images in the broad sense: none is synthetic). CC0 / public domain per scikit-image's data notes.
NULL_IMAGES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
    "immunohistochemistry", "moon", "retina", "rocket", "cell", "page", "text",
)  # fmt: skip


def full_images(names: Sequence[str] = NULL_IMAGES) -> list[torch.Tensor]:
    """scikit-image pictures at full resolution as ``(3, H, W)`` tensors in [0, 1] (grey ones repeated to RGB).

    Examples
    --------
    >>> [tuple(t.shape) for t in full_images(["chelsea", "camera"])]
    [(3, 300, 451), (3, 512, 512)]
    """
    from skimage import data

    out = []
    for n in names:
        img = np.asarray(getattr(data, n)())
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1).clamp(0, 1))
    return out


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
    """Load scikit-image photographs as a batch ``(N, 3, size, size)`` in [0, 1].

    Examples
    --------
    >>> x, names = load_photos(["chelsea", "coffee"], size=64)
    >>> tuple(x.shape), names
    ((2, 3, 64, 64), ['chelsea', 'coffee'])
    """
    from skimage import data

    names = list(names) if names is not None else list(PHOTOS)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"unknown photo(s) {unknown}; choose from {', '.join(PHOTOS)}.")
    return torch.stack([to_image_tensor(getattr(data, n)(), size) for n in names]), names
