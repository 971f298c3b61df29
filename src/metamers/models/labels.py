"""Label spaces: the 1000 ImageNet classes with readable names."""

from __future__ import annotations

from functools import cache

__all__ = ["imagenet_labels"]


@cache
def _imagenet() -> tuple[str, ...]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard index order (from torchvision).

    Examples
    --------
    >>> imagenet_labels()[0], len(imagenet_labels())
    ('tench', 1000)
    """
    return list(_imagenet())
