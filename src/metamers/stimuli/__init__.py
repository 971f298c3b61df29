"""Stimulus sets: natural images that installed packages ship, and the augmentations that stretch them."""

from metamers.stimuli.augment import CropFlip, augmented_batches
from metamers.stimuli.images import (
    BUILTIN_IMAGES,
    IMAGES,
    NULL_IMAGES,
    PHOTOS,
    full_images,
    load_photos,
    save_png,
    sixteen_way_photos,
    to_image_tensor,
)
from metamers.stimuli.photos import PhotoSourceMissing

__all__ = [
    "BUILTIN_IMAGES",
    "IMAGES",
    "NULL_IMAGES",
    "PHOTOS",
    "CropFlip",
    "PhotoSourceMissing",
    "augmented_batches",
    "full_images",
    "load_photos",
    "save_png",
    "sixteen_way_photos",
    "to_image_tensor",
]
