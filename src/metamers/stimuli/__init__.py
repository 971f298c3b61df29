"""Stimulus sets: natural images that installed packages ship, and the augmentations that stretch them."""

from metamers.stimuli.augment import CropFlip, augmented_batches
from metamers.stimuli.images import IMAGES, NULL_IMAGES, PHOTOS, full_images, load_photos, save_png, to_image_tensor

__all__ = [
    "IMAGES",
    "NULL_IMAGES",
    "PHOTOS",
    "CropFlip",
    "augmented_batches",
    "full_images",
    "load_photos",
    "save_png",
    "to_image_tensor",
]
