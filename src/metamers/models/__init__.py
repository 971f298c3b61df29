"""The model zoo: networks by name, with preprocessing, labels, stages and provenance; and any model you bring."""

from metamers.models.base import Normalize, Preprocessed, ZooModel, wrap
from metamers.models.labels import imagenet_labels
from metamers.models.registry import available, load, names

__all__ = ["Normalize", "Preprocessed", "ZooModel", "available", "imagenet_labels", "load", "names", "wrap"]
