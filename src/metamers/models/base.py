"""A model as the toolkit uses it: a frozen network with its preprocessing inside, its input, labels and layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Normalize", "Preprocessed", "ZooModel", "wrap"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, inside the graph so that gradients reach the raw input.

    Examples
    --------
    >>> Normalize([0.5], [0.5])(torch.ones(1, 1, 2, 2)).flatten().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.mean.shape[1]
        if x.dim() != 4 or x.shape[1] != c:  # broadcasting would take 1 channel, or no batch dimension, silently
            if x.dim() != 4:
                hint = f"got {x.dim()}-d input" + (": x[None] adds the batch dimension" if x.dim() == 3 else "")
            else:
                hint = f"these have {x.shape[1]} channels"
                if x.shape[1] == 1 and c == 3:
                    hint += " (grey images: x.expand(-1, 3, -1, -1))"
                elif x.shape[1] == 4 and c == 3:
                    hint += " (drop the alpha channel: x[:, :3])"
            raise ValueError(f"the model takes images (N, {c}, H, W), batch first; {hint}.")
        return (x - self.mean) / self.std


class Preprocessed(nn.Module):
    """A network behind its preprocessing: layer names read ``net.<path in the network>``."""

    def __init__(self, preprocess: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))


@dataclass
class ZooModel:
    """A model ready for synthesis, with what is needed to use it (after torchvision's weights objects).

    Attributes
    ----------
    name : str
        Registry name, e.g. ``efficientnet-lite0`` or ``efficientnet-lite0-random``.
    module : nn.Module
        Takes the raw stimulus (images in ``bounds``) and returns logits; preprocessing is inside.
    kind : {"image", "audio", "cochleagram"}
        Input kind: images, waveforms, or cochleagrams (a word network without its cochleagram, see ``frontend``).
    input_shape : tuple of int
        Shape of one stimulus, e.g. ``(3, 224, 224)``.
    bounds : (float, float)
        Valid input range.
    labels : list of str
        Class names, index = logit.
    stages : dict of str to str
        The layers worth generating from: a stage name to a layer name (``metamers layers`` lists all layers).
    provenance : dict
        Where the weights came from (package, file, sha256) or the seed of a random network.
    frontend : nn.Module, optional
        For a model whose input is a representation of a sound rather than the sound (``kind="cochleagram"``, the
        network of a word model without its cochleagram): the module that turns a waveform into that input.
    """

    name: str
    module: nn.Module
    kind: str
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    labels: list[str]
    stages: dict[str, str] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    frontend: nn.Module | None = None

    @property
    def weights_id(self) -> object:
        """What identifies this network's weights: the weight file's sha256, else a random network's seed, else (a
        user's model without weights) its code's sha256 or its module. Keys the null store and the reuse of results.

        Examples
        --------
        >>> m = wrap(nn.Flatten(), input_shape=(1, 2, 2), labels=["a"], provenance={"sha256": "abc"})
        >>> m.weights_id
        'abc'
        """
        p = self.provenance
        return p.get("sha256", p.get("seed", p.get("random_init_seed", p.get("code_sha256", p.get("module")))))

    def layer(self, name: str) -> str:
        """The layer name for ``name``, which may be a stage name (``"block_4"``) or a layer name."""
        return self.stages.get(name, name)

    def example(self, batch: int = 1) -> torch.Tensor:
        """A mid-grey input of the right shape."""
        lo, hi = self.bounds
        return torch.full((batch, *self.input_shape), (lo + hi) / 2)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Top-1 label indices for a batch of stimuli."""
        was = self.module.training
        self.module.eval()
        param = next(self.module.parameters(), None)
        try:
            return self.module(x.to(param.device) if param is not None else x).argmax(dim=-1).cpu()
        finally:
            self.module.train(was)


def wrap(
    module: nn.Module,
    *,
    name: str = "custom",
    input_shape: Sequence[int],
    labels: Sequence[str],
    kind: str = "image",
    bounds: tuple[float, float] = (0.0, 1.0),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    stages: dict[str, str] | None = None,
    provenance: dict | None = None,
) -> ZooModel:
    """Bring your own network: wrap any ``nn.Module`` so every feature of the toolkit works on it.

    Parameters
    ----------
    module : nn.Module
        Your network.  If it expects normalized input, pass ``mean`` and ``std`` and it receives raw stimuli in
        ``bounds`` normalized inside the graph (its layers are then named ``net.<path>``).
    input_shape : sequence of int
        One stimulus's shape, e.g. ``(3, 224, 224)``.
    labels : sequence of str
        Class names in logit order.

    Examples
    --------
    >>> m = wrap(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), input_shape=(3, 2, 2), labels=["a", "b"])
    >>> m.predict(m.example()).shape
    torch.Size([1])
    """
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither.")
    net = module if mean is None else Preprocessed(Normalize(mean, std), module)
    return ZooModel(
        name=name,
        module=net.eval(),
        kind=kind,
        input_shape=tuple(int(s) for s in input_shape),
        bounds=bounds,
        labels=list(labels),
        stages=dict(stages or {}),
        provenance=dict(provenance or {"source": "user"}),
    )
