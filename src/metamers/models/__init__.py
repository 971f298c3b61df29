"""The model zoo: networks by name, with preprocessing, labels, stages and provenance; and any model you bring."""

from metamers.models.base import Normalize, Preprocessed, ZooModel, wrap
from metamers.models.geirhos16 import CATEGORIES, category_of, decision_16, probabilities_16
from metamers.models.labels import AUDIOSET_SPEECH, imagenet_labels, speech_classes
from metamers.models.registry import available, load, names

__all__ = [
    "AUDIOSET_SPEECH",
    "CATEGORIES",
    "Normalize",
    "Preprocessed",
    "ZooModel",
    "available",
    "category_of",
    "decision_16",
    "imagenet_labels",
    "load",
    "names",
    "probabilities_16",
    "speech_classes",
    "wrap",
]
