"""Network-to-network transfer (paper sections 4.4-4.5): metamers of one model, classified by another.

If two networks share invariances, the metamers of one are recognized by the other.  The measure is the proportion of
accepted metamers that the recognizing model gives the reference label of their natural stimulus, with a bootstrap
standard error over stimuli; the recognizing model's accuracy on the natural stimuli is the ceiling to compare with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["TransferCell", "bootstrap_sem", "recognition", "transfer_cell"]


def bootstrap_sem(values: Sequence[float] | np.ndarray | torch.Tensor, n_boot: int = 10_000, seed: int = 0) -> float:
    """Bootstrap standard error of the mean: the standard deviation of the means of ``n_boot`` resamples.

    Examples
    --------
    >>> round(bootstrap_sem([0, 1] * 50, seed=0), 2)  # analytic: sqrt(0.25 / 100) = 0.05
    0.05
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return float("nan")
    idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
    return float(v[idx].mean(axis=1).std(ddof=1))


def recognition(
    predicted: torch.Tensor | Sequence[int],
    reference: torch.Tensor | Sequence[int],
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, int]:
    """Proportion of items whose predicted label is the reference label, its bootstrap SEM, and the item count.

    Examples
    --------
    >>> recognition([1, 2, 3, 3], [1, 2, 3, 4], n_boot=100)[0]
    0.75
    """
    p = torch.as_tensor(predicted).flatten()
    r = torch.as_tensor(reference).flatten()
    if p.shape != r.shape:
        raise ValueError(f"{p.numel()} predictions for {r.numel()} references.")
    correct = (p == r).double().numpy()
    if correct.size == 0:
        return float("nan"), float("nan"), 0
    return float(correct.mean()), bootstrap_sem(correct, n_boot, seed), int(correct.size)


@dataclass(frozen=True)
class TransferCell:
    """One entry of the transfer matrix: metamers of ``generator`` at ``layer``, recognized by ``recognizer``."""

    generator: str
    layer: str
    recognizer: str
    label_space: str
    source: str
    n: int
    proportion: float
    sem: float
    natural_accuracy: float
    natural_sem: float
    chance: float
    own: bool

    def as_dict(self) -> dict:
        """Plain dict."""
        return asdict(self)


def transfer_cell(
    generator: str,
    layer: str,
    recognizer: str,
    label_space: str,
    source: str,
    metamer_predictions: torch.Tensor,
    natural_predictions: torch.Tensor,
    reference: torch.Tensor,
    n_classes: int,
    n_boot: int = 10_000,
    seed: int = 0,
) -> TransferCell:
    """Build one :class:`TransferCell` from predictions on metamers and on their natural stimuli.

    Parameters
    ----------
    generator, layer, recognizer : str
        Who made the metamers, at which layer, and who classifies them.
    label_space : str
        ``"imagenet"`` (1000-way), ``"16-way"``, or a word task name.
    source : str
        ``"png"`` (what a person sees) or ``"full"`` (full precision).
    metamer_predictions, natural_predictions, reference : torch.Tensor
        The recognizer's labels for the (accepted) metamers and for their stimuli, and the stimuli's reference labels.
    n_classes : int
        Size of the label space (chance is ``1 / n_classes``).

    Examples
    --------
    >>> c = transfer_cell("a", "l", "b", "16-way", "png", torch.tensor([1, 1]), torch.tensor([1, 2]),
    ...                   torch.tensor([1, 2]), 16, n_boot=100)
    >>> c.proportion, c.natural_accuracy, c.chance
    (0.5, 1.0, 0.0625)
    """
    prop, sem, n = recognition(metamer_predictions, reference, n_boot, seed)
    nat, nat_sem, _ = recognition(natural_predictions, reference, n_boot, seed)
    return TransferCell(
        generator=generator,
        layer=layer,
        recognizer=recognizer,
        label_space=label_space,
        source=source,
        n=n,
        proportion=prop,
        sem=sem,
        natural_accuracy=nat,
        natural_sem=nat_sem,
        chance=1.0 / n_classes,
        own=generator == recognizer,
    )
