"""Label spaces: the 1000 ImageNet classes with readable names; AudioSet's speech classes."""

from __future__ import annotations

from functools import cache

__all__ = ["AUDIOSET_SPEECH", "imagenet_labels", "speech_classes"]

AUDIOSET_SPEECH = (
    "Speech",
    "Male speech, man speaking",
    "Female speech, woman speaking",
    "Child speech, kid speaking",
    "Conversation",
    "Narration, monologue",
    "Babbling",
    "Speech synthesizer",
)
"""AudioSet's "Speech" class and its children in the AudioSet ontology (display names). YAMNet has six of them (it
drops the male and female classes)."""


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


def speech_classes(labels: list[str]) -> list[int]:
    """Indices of AudioSet's speech classes (:data:`AUDIOSET_SPEECH`) in a model's label list; empty if it has none.

    Examples
    --------
    >>> speech_classes(["Dog", "Speech", "Conversation", "Music"])
    [1, 2]
    """
    return [i for i, name in enumerate(labels) if name in AUDIOSET_SPEECH]
