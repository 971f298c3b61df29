"""How alike two sets of activations are: Spearman rho (ties averaged), Pearson r and SNR, row by row, in torch."""

from __future__ import annotations

import torch

__all__ = ["pearson", "rank", "snr_db", "spearman"]


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)


def rank(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension, 1-based, ties given their average rank (as ``scipy.stats.rankdata``).

    Examples
    --------
    >>> rank(torch.tensor([[10.0, 20.0, 10.0, 5.0]])).tolist()
    [[2.5, 4.0, 2.5, 1.0]]
    """
    s, idx = x.sort(dim=-1)
    n = x.shape[-1]
    pos = torch.arange(n, device=x.device).expand_as(s)
    new = torch.ones_like(s, dtype=torch.bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    last = torch.ones_like(new)
    last[..., :-1] = new[..., 1:]
    start = torch.where(new, pos, torch.zeros_like(pos)).cummax(dim=-1).values
    end = torch.where(last, pos, torch.full_like(pos, n)).flip(-1).cummin(dim=-1).values.flip(-1)
    dtype = x.dtype if x.is_floating_point() else torch.float64
    avg = (start + end).to(dtype) / 2 + 1
    return torch.empty_like(avg).scatter_(-1, idx, avg)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r between matching rows of ``a`` and ``b`` (each item flattened), computed in float64.

    Examples
    --------
    >>> float(pearson(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 4.0, 7.0]]))[0])  # doctest: +ELLIPSIS
    0.99...
    """
    a, b = _rows(a).double(), _rows(b).double()
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return (a * b).sum(dim=1) / den.clamp_min(1e-300)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rho between matching rows of ``a`` and ``b`` (each item flattened; ties averaged).

    Parameters
    ----------
    a, b : torch.Tensor
        Same shape, first dimension the batch.

    Returns
    -------
    torch.Tensor
        One rho per item, float64.

    Examples
    --------
    >>> round(float(spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 5.0, 9.0]]))[0]), 6)
    1.0
    """
    if a.shape != b.shape:
        raise ValueError(f"spearman needs tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
    return pearson(rank(_rows(a).double()), rank(_rows(b).double()))


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio in dB of ``estimate`` against ``reference``, per item.

    Examples
    --------
    >>> round(float(snr_db(torch.ones(1, 100), torch.ones(1, 100) * 1.1)[0]), 1)
    20.0
    """
    r, e = _rows(reference).double(), _rows(estimate).double()
    return 10 * torch.log10(r.pow(2).sum(1) / (r - e).pow(2).sum(1).clamp_min(1e-300))
