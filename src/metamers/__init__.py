"""metamers: model metamers for any PyTorch model (Feather et al., NeurIPS 2019).

The public face is flat::

    import metamers
    layers = metamers.list_layers(model, example)
    result = metamers.synthesize(model, images, "features.3", iterations=2000)
"""

from metamers.noise import gaussian_noise, pink_noise, white_noise
from metamers.settings import PRESETS, SynthesisSettings
from metamers.similarity import pearson, rank, snr_db, spearman
from metamers.synthesis import CheckpointMismatch, SynthesisResult, item_losses, synthesize
from metamers.taps import Layer, LayerError, Taps, capture, frozen, list_layers

__all__ = [
    "PRESETS",
    "CheckpointMismatch",
    "Layer",
    "LayerError",
    "SynthesisResult",
    "SynthesisSettings",
    "Taps",
    "capture",
    "frozen",
    "gaussian_noise",
    "item_losses",
    "list_layers",
    "pearson",
    "pink_noise",
    "rank",
    "snr_db",
    "spearman",
    "synthesize",
    "white_noise",
]
