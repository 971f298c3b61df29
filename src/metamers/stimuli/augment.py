"""The paper's image augmentations (random crops, flips), to draw a null of many pairs from few photographs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CropFlip", "augmented_batches"]


@dataclass(frozen=True)
class CropFlip:
    """Random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``) and a horizontal flip half the time.

    Examples
    --------
    >>> CropFlip().spec()
    'cropflip(scale=0.35-1,ratio=0.75-1.333,flip=0.5)'
    """

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5

    def spec(self) -> str:
        """A short text that names these settings (used in cache keys)."""
        return (
            f"cropflip(scale={self.scale[0]:g}-{self.scale[1]:g},ratio={self.ratio[0]:.4g}-{self.ratio[1]:.4g},"
            f"flip={self.flip:g})"
        )

    def __call__(self, image: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
        """One augmented view of a ``(3, H, W)`` image in [0, 1], resized to ``(3, size, size)``."""
        _, h, w = image.shape
        area = h * w
        for _ in range(20):
            target = area * float(torch.empty(1).uniform_(*self.scale, generator=g))
            logr = torch.empty(1).uniform_(*torch.log(torch.tensor(self.ratio)).tolist(), generator=g)
            r = float(torch.exp(logr))
            cw, ch = round((target * r) ** 0.5), round((target / r) ** 0.5)
            if 0 < cw <= w and 0 < ch <= h:
                break
        else:
            ch = cw = min(h, w)
        top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
        crop = image[:, top : top + ch, left : left + cw]
        out = F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        if float(torch.rand(1, generator=g)) < self.flip:
            out = out.flip(-1)
        return out.clamp(0, 1)


def augmented_batches(
    images: Sequence[torch.Tensor],
    per_image: int,
    size: int,
    augment: CropFlip | None = None,
    seed: int = 0,
    batch_size: int = 32,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(views, sources)`` batches: ``per_image`` seeded augmented views of every image, and which image each is.

    Examples
    --------
    >>> imgs = [torch.rand(3, 40, 50), torch.rand(3, 30, 30)]
    >>> [(tuple(v.shape), s.tolist()) for v, s in augmented_batches(imgs, 2, 16, batch_size=3)]
    [((3, 3, 16, 16), [0, 0, 1]), ((1, 3, 16, 16), [1])]
    """
    augment = augment or CropFlip()
    g = torch.Generator().manual_seed(seed)
    views, sources = [], []
    for k, img in enumerate(images):
        for _ in range(per_image):
            views.append(augment(img, size, g))
            sources.append(k)
            if len(views) == batch_size:
                yield torch.stack(views), torch.tensor(sources)
                views, sources = [], []
    if views:
        yield torch.stack(views), torch.tensor(sources)
