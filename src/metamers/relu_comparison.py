"""The paper's Figure 2c experiment: metamers with the standard ReLU against the linear-gradient ReLU.

Examples
--------
>>> net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
>>> out = relu_comparison(net, torch.rand(2, 6), ["1"], iterations=5)
>>> sorted(out)
['linear', 'standard']
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from metamers.settings import SynthesisSettings
from metamers.synthesis import synthesize

__all__ = ["relu_comparison"]


def relu_comparison(
    model: nn.Module,
    stimuli: torch.Tensor,
    layers: Sequence[str],
    settings: SynthesisSettings | None = None,
    **changes: object,
) -> dict[str, dict[str, list[float]]]:
    """Figure 2(c)'s experiment: match each layer with the standard and with the linear-gradient ReLU.

    Parameters
    ----------
    model : nn.Module
        The model.
    stimuli : torch.Tensor
        Natural stimuli (a batch).
    layers : sequence of str
        Generation layers; those taken after a ReLU are where the two differ.
    settings : SynthesisSettings, optional
        Shared settings (keyword arguments override fields); the same seed and noise for both variants.

    Returns
    -------
    dict
        ``{"standard": {layer: rho per metamer}, "linear": {layer: rho per metamer}}``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> out = relu_comparison(net, torch.rand(2, 6), ["1"], iterations=5)
    >>> sorted(out), len(out["linear"]["1"])
    (['linear', 'standard'], 2)
    """
    settings = (settings or SynthesisSettings()).replace(**changes)
    out: dict[str, dict[str, list[float]]] = {"standard": {}, "linear": {}}
    for layer in layers:
        for kind, linear in (("standard", False), ("linear", True)):
            r = synthesize(model, stimuli, layer, settings.replace(linear_grad_relu=linear))
            out[kind][layer] = [float(v) for v in r.layer_rho]
    return out
