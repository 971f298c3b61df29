"""The optimisers of a synthesis: Adam (fused where available) and the 2023 follow-up's normalised-gradient step."""

from __future__ import annotations

import torch

__all__: list[str] = []


class L2Step(torch.optim.Optimizer):
    """x <- x - lr * g / ||g||, the norm taken per item (the 2023 follow-up's projected-gradient step)."""

    def __init__(self, params: list[torch.Tensor], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                norm = g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1)))
                p.add_(g / (norm + 1e-10), alpha=-group["lr"])


def adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch supports it for the device (an order of magnitude faster on CPU)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
