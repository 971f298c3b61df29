"""Stimulus sets: natural images that installed packages ship."""

from metamers.stimuli.images import PHOTOS, load_photos, to_image_tensor

__all__ = ["PHOTOS", "load_photos", "to_image_tensor"]
