"""The paper's image architectures from torchvision: VGG-19, ResNet-101 and Inception-V3.

Their ImageNet weights cannot be downloaded here, so they load from a file the user has: torchvision's cache
(``torch.hub.get_dir()/checkpoints``, where ``torchvision.models.*(weights=...)`` leaves them), a directory named by
``$METAMERS_WEIGHTS``, or an explicit path.  Without a file they load only when asked for explicitly as random
networks (``vgg19-random``), never silently.

About the versions: the paper used TF-Slim's ResNet-101-V2 (pre-activation).  torchvision has no pre-activation
ResNet; its ``resnet101`` is the v1.5 architecture, and its ``IMAGENET1K_V2`` weights are a newer training recipe, not
the V2 architecture.  We use torchvision's architecture and accept either of its weight files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from metamers._files import sha256_file
from metamers.models.base import Normalize, Preprocessed, ZooModel
from metamers.models.labels import imagenet_labels

__all__ = ["TORCHVISION", "TorchvisionArch", "find_weights", "torchvision_model"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TorchvisionArch:
    """A torchvision architecture: builder, input size, weight file names it accepts, stages (paper's names)."""

    builder: Callable[..., nn.Module]
    size: int
    files: tuple[str, ...]
    stages: dict[str, str]
    note: str


def _vgg19(**kw: object) -> nn.Module:
    from torchvision.models import vgg19

    return vgg19(weights=None, **kw)


def _resnet101(**kw: object) -> nn.Module:
    from torchvision.models import resnet101

    return resnet101(weights=None, **kw)


def _inception_v3(**kw: object) -> nn.Module:
    from torchvision.models import inception_v3

    # transform_input: torchvision's ImageNet weights expect it (they were trained on [-1, 1] inputs)
    return inception_v3(weights=None, aux_logits=True, init_weights=True, transform_input=True, **kw)


TORCHVISION: dict[str, TorchvisionArch] = {
    "vgg19": TorchvisionArch(
        _vgg19,
        224,
        ("vgg19-dcbb9e9d.pth",),
        {
            "conv1_2": "net.features.3",
            "conv2_2": "net.features.8",
            "conv3_4": "net.features.17",
            "conv4_4": "net.features.26",
            "conv5_4": "net.features.35",
            "fc6": "net.classifier.1",
            "fc7": "net.classifier.4",
            "logits": "net.classifier.6",
        },
        "VGG-19 (torchvision), the paper's architecture",
    ),
    "resnet101": TorchvisionArch(
        _resnet101,
        224,
        ("resnet101-cd907fc2.pth", "resnet101-63fe2227.pth"),
        {
            "conv_1": "net.relu",
            "block_1": "net.layer1",
            "block_2": "net.layer2",
            "block_3": "net.layer3",
            "block_4": "net.layer4",
            "global": "net.avgpool",
            "logits": "net.fc",
        },
        "ResNet-101 (torchvision v1.5 architecture; the paper used TF-Slim's pre-activation V2)",
    ),
    "inception_v3": TorchvisionArch(
        _inception_v3,
        299,
        ("inception_v3_google-0cc3c7bd.pth",),
        {
            "Conv2d_1a_3x3": "net.Conv2d_1a_3x3",
            "Conv2d_2b_3x3": "net.Conv2d_2b_3x3",
            "Conv2d_3b_1x1": "net.Conv2d_3b_1x1",
            "Conv2d_4a_3x3": "net.Conv2d_4a_3x3",
            "Mixed_5d": "net.Mixed_5d",
            "Mixed_6e": "net.Mixed_6e",
            "Mixed_7c": "net.Mixed_7c",
            "logits": "net.fc",
        },
        "Inception-V3 (torchvision), the paper's architecture",
    ),
}


def _search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("METAMERS_WEIGHTS"):
        dirs.append(Path(os.environ["METAMERS_WEIGHTS"]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_weights(arch: str) -> Path | None:
    """The first weight file for ``arch`` found in ``$METAMERS_WEIGHTS`` or torchvision's cache, else None."""
    for d in _search_dirs():
        for name in TORCHVISION[arch].files:
            if (d / name).is_file():
                return d / name
    return None


def missing_weights_message(arch: str) -> str:
    """What to do when ``arch``'s weights are not here."""
    files = " or ".join(TORCHVISION[arch].files)
    where = " or ".join(str(d) for d in _search_dirs())
    return (
        f"no ImageNet weights for {arch} here (looked for {files} in {where}; they cannot be downloaded offline). "
        f"Copy the file there, set METAMERS_WEIGHTS to its folder, pass weights=PATH, or load {arch}-random "
        "for the seeded random network"
    )


def torchvision_model(
    arch: str,
    pretrained: bool = True,
    seed: int = 0,
    weights: str | os.PathLike | None = None,
    name: str | None = None,
) -> ZooModel:
    """A torchvision architecture with ImageNet weights from a local file, or seeded random weights.

    Parameters
    ----------
    arch : {"vgg19", "resnet101", "inception_v3"}
        The architecture.
    pretrained : bool
        Load trained weights (from ``weights`` or the places :func:`find_weights` looks); ``False`` for a random
        network initialised with ``seed``.
    weights : path, optional
        A state dict file, e.g. a second training run of the same architecture (the paper's other-seed control).
    name : str, optional
        Name of the model (default ``arch``, ``arch-random``, or ``arch@<file stem>`` for an explicit file).

    Examples
    --------
    >>> m = torchvision_model("vgg19", pretrained=False, seed=1)
    >>> m.name, m.stages["conv1_2"], m.provenance["seed"]
    ('vgg19-random', 'net.features.3', 1)
    """
    spec = TORCHVISION[arch]
    if pretrained or weights is not None:
        path = Path(weights) if weights is not None else find_weights(arch)
        if path is None or not path.is_file():
            raise FileNotFoundError(missing_weights_message(arch) if weights is None else f"no weights file {path}")
        net = spec.builder()
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path} does not hold {arch} weights: {str(e).splitlines()[0]}") from e
        provenance = {"weights": f"file {path.name}", "path": str(path), "sha256": sha256_file(path)}
        default_name = arch if weights is None else f"{arch}@{path.stem}"
    else:
        torch.manual_seed(seed)
        net = spec.builder()
        provenance = {"weights": "random initialization", "seed": seed}
        default_name = f"{arch}-random"
    module = Preprocessed(Normalize(IMAGENET_MEAN, IMAGENET_STD), net).eval()
    return ZooModel(
        name=name or default_name,
        module=module,
        kind="image",
        input_shape=(3, spec.size, spec.size),
        bounds=(0.0, 1.0),
        labels=imagenet_labels(),
        stages={k: v for k, v in spec.stages.items()},
        provenance=provenance,
    )
