"""Natural photographs that ship inside scikit-image, centre-cropped and resized for a model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["PHOTOS", "load_photos", "to_image_tensor"]

# name in skimage.data -> (what it shows, source and license as scikit-image documents them)
PHOTOS: dict[str, tuple[str, str]] = {
    "chelsea": ("a tabby cat", "Stefan van der Walt, CC0"),
    "coffee": ("a cup of coffee", "Rachel Michetti, CC0"),
    "rocket": ("a rocket on a launch pad", "SpaceX, CC0"),
    "astronaut": ("astronaut Eileen Collins", "NASA, public domain"),
    "camera": ("a man with a camera on a tripod (greyscale)", "scikit-image, CC0"),
}


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
