"""Stimulus sets: natural images that installed packages ship, and the augmentations that stretch them."""

from metamers.stimuli.augment import CropFlip, augmented_batches
from metamers.stimuli.images import NULL_IMAGES, PHOTOS, full_images, load_photos, to_image_tensor

__all__ = ["NULL_IMAGES", "PHOTOS", "CropFlip", "augmented_batches", "full_images", "load_photos", "to_image_tensor"]
