"""Validation of metamers (paper section 3.1): rho at every layer, null distributions, the acceptance rule, tables.

A metamer counts only if (1) the model gives it the label of its natural stimulus and (2) the Spearman rho between
its activations and the stimulus's at the generation layer lies outside the *null*: the distribution of rho between
random pairs of natural stimuli at that layer.

The null is computed the fast way: every stimulus's activation vector is ranked once and standardized (zero mean,
unit norm), so that Spearman rho of a pair is a dot product and all pairs are blocks of a Gram matrix, computed in
float32 tiles whose size a memory budget bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from metamers.similarity import pearson, snr_db, spearman
from metamers.taps import Taps, frozen

__all__ = [
    "AcceptanceRule",
    "Verdict",
    "activations",
    "compare_layers",
    "verdict",
]


def activations(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str],
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for every item of ``x``, flattened to ``(N, features)`` on the CPU, in batches.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> {k: tuple(v.shape) for k, v in activations(net, torch.rand(5, 3), ["1", "2"], batch_size=2).items()}
    {'1': (5, 4), '2': (5, 2)}
    """
    device = torch.device(device) if device is not None else next(model.parameters(), x).device
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with frozen(model), torch.no_grad():
        taps = Taps(model, list(layers))
        for i in range(0, x.shape[0], batch_size):
            acts = taps(x[i : i + batch_size].to(device))
            for name in layers:
                out[name].append(acts[name].flatten(1).float().cpu())
    return {name: torch.cat(chunks) for name, chunks in out.items()}


def compare_layers(
    model: nn.Module,
    metamers: torch.Tensor,
    stimuli: torch.Tensor,
    layers: Sequence[str],
    batch_size: int = 16,
) -> dict[str, dict[str, torch.Tensor]]:
    """Spearman rho, Pearson r and SNR (dB) between each metamer and its stimulus at every layer in ``layers``.

    Returns
    -------
    dict
        ``{layer: {"spearman": (N,), "pearson": (N,), "snr_db": (N,)}}``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> x = torch.rand(2, 3)
    >>> round(float(compare_layers(net, x, x, ["2"])["2"]["spearman"][0]), 6)
    1.0
    """
    a = activations(model, metamers, layers, batch_size)
    b = activations(model, stimuli, layers, batch_size)
    return {
        name: {
            "spearman": spearman(a[name], b[name]),
            "pearson": pearson(a[name], b[name]),
            "snr_db": snr_db(b[name], a[name]),
        }
        for name in layers
    }


MIN_PAIRS = 10
"""The fewest pairs a null may have (a plan's ``validation.pairs``, ``metamers validate --pairs``)."""


@dataclass(frozen=True)
class AcceptanceRule:
    """When a metamer counts (paper section 3.1).

    Attributes
    ----------
    same_label : bool
        Require the model to give the metamer its stimulus's label.
    null_percentile : float
        Rho at the generation layer must exceed this percentile of the null; 100 (the default, the paper's rule)
        means above the null's maximum.
    """

    same_label: bool = True
    null_percentile: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.same_label, bool):
            raise TypeError(f"same_label must be true or false, got {self.same_label!r}.")
        p = self.null_percentile
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 100:
            raise ValueError(f"null_percentile = {p!r}: give a number in (0, 100] (100: above the null's maximum).")

    def threshold(self, null: torch.Tensor) -> float:
        """The rho a metamer must exceed."""
        if self.null_percentile >= 100:
            return float(null.max())
        return float(np.percentile(null.numpy(), self.null_percentile))


@dataclass(frozen=True)
class Verdict:
    """Whether one metamer is accepted, and why not when it is not."""

    accepted: bool
    reason: str
    rho: float
    threshold: float


def verdict(
    rho: float,
    null: torch.Tensor,
    label_metamer: int | str,
    label_stimulus: int | str,
    rule: AcceptanceRule | None = None,
    names: Callable[[int | str], str] = str,
) -> Verdict:
    """Judge one metamer: same label and rho at the generation layer outside the null.

    Examples
    --------
    >>> verdict(0.99, torch.tensor([0.1, 0.3]), 5, 5).accepted
    True
    >>> verdict(0.2, torch.tensor([0.1, 0.3]), 5, 5).reason
    'rho 0.2000 at the generation layer lies inside the null (must exceed 0.3000, the null maximum)'
    """
    rule = rule or AcceptanceRule()
    threshold = rule.threshold(null)
    bound = "the null maximum" if rule.null_percentile >= 100 else f"the null's {rule.null_percentile:g}th percentile"
    reasons = []
    if rule.same_label and label_metamer != label_stimulus:
        reasons.append(f"the model labels it {names(label_metamer)!r}, its stimulus {names(label_stimulus)!r}")
    if not rho > threshold:
        reasons.append(
            f"rho {rho:.4f} at the generation layer lies inside the null (must exceed {threshold:.4f}, {bound})"
        )
    return Verdict(not reasons, "; ".join(reasons) if reasons else "accepted", float(rho), threshold)
