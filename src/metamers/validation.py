"""Validation of metamers (paper section 3.1): rho at every layer, null distributions, the acceptance rule, tables.

A metamer counts only if (1) the model gives it the label of its natural stimulus and (2) the Spearman rho between
its activations and the stimulus's at the generation layer lies outside the *null*: the distribution of rho between
random pairs of natural stimuli at that layer.

The null is computed the fast way: every stimulus's activation vector is ranked once and standardized (zero mean,
unit norm), so that Spearman rho of a pair is a dot product and all pairs are blocks of a Gram matrix, computed in
float32 tiles whose size a memory budget bounds.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from metamers.settings import SynthesisSettings
from metamers.similarity import pearson, rank, snr_db, spearman
from metamers.taps import Taps, frozen

__all__ = [
    "AcceptanceRule",
    "Verdict",
    "activations",
    "compare_layers",
    "format_table",
    "null_from_activations",
    "null_rho",
    "relu_comparison",
    "standardized_ranks",
    "summary_table",
    "table_csv",
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


def standardized_ranks(acts: torch.Tensor) -> torch.Tensor:
    """Rank each row (ties averaged), centre it and scale it to unit norm, in float32.

    The dot product of two such rows is their Spearman rho.

    Examples
    --------
    >>> z = standardized_ranks(torch.tensor([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]))
    >>> round(float(z[0] @ z[0]), 6), round(float(z[0] @ z[1]), 6)
    (1.0, -0.5)
    """
    r = rank(acts.flatten(1).float())
    r = r - r.mean(dim=1, keepdim=True)
    return r / r.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _valid_pairs(n: int, groups: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(n, n, offset=1)
    if groups is not None:
        keep = groups[i] != groups[j]
        i, j = i[keep], j[keep]
    return i, j


def null_rho(
    z: torch.Tensor | np.ndarray,
    n_pairs: int | None = None,
    seed: int = 0,
    groups: Sequence[int] | torch.Tensor | None = None,
    max_bytes: int = 512 * 2**20,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Spearman rho of random pairs of rows of ``z`` (from :func:`standardized_ranks`), by tiles of the Gram matrix.

    Parameters
    ----------
    z : (N, F) tensor or array
        Standardized ranks, one row per stimulus; may be a ``numpy.memmap`` on disk.
    n_pairs : int, optional
        How many distinct pairs to draw; all valid pairs when None.  At most the number of valid pairs.
    seed : int
        Seed of the pair draw.
    groups : sequence of int, optional
        Source of each row (e.g. the image an augmentation came from); pairs within a group are excluded, so that two
        crops of one photo do not count as a random pair.
    max_bytes : int
        Memory budget for the two row tiles in flight (float32), which fixes the tile size.
    device : str or torch.device
        Where the matrix products run.

    Returns
    -------
    torch.Tensor
        ``n_pairs`` values of rho (float32), in a seeded random order.

    Examples
    --------
    >>> z = standardized_ranks(torch.randn(50, 1000))
    >>> null_rho(z, n_pairs=100).shape
    torch.Size([100])
    """
    n, f = z.shape
    g = torch.as_tensor(np.asarray(groups)) if groups is not None else None
    i, j = _valid_pairs(n, g)
    total = i.numel()
    if n_pairs is None:
        n_pairs = total
    if n_pairs > total:
        raise ValueError(
            f"{n_pairs} pairs asked for, but {n} stimuli give only {total} distinct pairs across sources; "
            "use more stimuli or more augmentations per stimulus, or ask for fewer pairs."
        )
    pick = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n_pairs]
    i, j = i[pick], j[pick]
    rows = max(1, min(n, int(max_bytes // (2 * 4 * max(f, 1)))))
    out = torch.empty(n_pairs, dtype=torch.float32)
    ti, tj = i // rows, j // rows
    tile_id = ti * (n // rows + 1) + tj
    order = torch.argsort(tile_id)
    bounds = [*torch.searchsorted(tile_id[order], torch.unique(tile_id[order])).tolist(), n_pairs]

    def load(t: int) -> torch.Tensor:
        return torch.as_tensor(np.asarray(z[t * rows : (t + 1) * rows]), dtype=torch.float32).to(device)

    cur, tile_a = -1, None
    for start, stop in itertools.pairwise(bounds):
        sel = order[start:stop]
        a, b = int(ti[sel[0]]), int(tj[sel[0]])
        if a != cur:
            cur, tile_a = a, load(a)
        gram = tile_a @ (tile_a if b == a else load(b)).T
        out[sel] = gram[(i[sel] - a * rows).to(gram.device), (j[sel] - b * rows).to(gram.device)].float().cpu()
    return out


def null_from_activations(
    acts: torch.Tensor,
    n_pairs: int | None = None,
    seed: int = 0,
    groups: Sequence[int] | None = None,
    max_bytes: int = 512 * 2**20,
) -> torch.Tensor:
    """Standardize ``acts`` ``(N, F)`` and draw the null: :func:`standardized_ranks` then :func:`null_rho`.

    Examples
    --------
    >>> from scipy.stats import spearmanr
    >>> acts = torch.randn(4, 30)
    >>> rho = null_from_activations(acts, seed=0)  # all 6 pairs
    >>> sorted(round(float(v), 5) for v in rho) == sorted(
    ...     round(spearmanr(acts[a], acts[b]).statistic, 5) for a in range(4) for b in range(a + 1, 4))
    True
    """
    return null_rho(standardized_ranks(acts), n_pairs=n_pairs, seed=seed, groups=groups, max_bytes=max_bytes)


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


TABLE_COLUMNS = (
    "model",
    "layer",
    "generated",
    "accepted",
    "features",
    "median_rho_layer",
    "median_null_rho_layer",
    "median_rho_logits",
)


def summary_table(records: Iterable[dict]) -> list[dict]:
    """The paper's Table S4/S5 columns per (model, generation layer).

    Parameters
    ----------
    records : iterable of dict
        One per metamer with keys ``model``, ``layer``, ``accepted``, ``features``, ``rho_layer``, ``rho_logits``,
        ``null_median``.

    Examples
    --------
    >>> rows = summary_table([dict(model="m", layer="a", accepted=True, features=10, rho_layer=0.9,
    ...                            rho_logits=0.99, null_median=0.1)])
    >>> rows[0]["generated"], rows[0]["accepted"]
    (1, 1)
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["layer"]), []).append(r)
    rows = []
    for (model, layer), rs in groups.items():
        rows.append(
            {
                "model": model,
                "layer": layer,
                "generated": len(rs),
                "accepted": sum(bool(r["accepted"]) for r in rs),
                "features": rs[0]["features"],
                "median_rho_layer": float(np.median([r["rho_layer"] for r in rs])),
                "median_null_rho_layer": float(rs[0]["null_median"]),
                "median_rho_logits": float(np.median([r["rho_logits"] for r in rs])),
            }
        )
    return rows


def table_csv(rows: list[dict]) -> str:
    """The summary table as CSV text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(TABLE_COLUMNS), lineterminator=os.linesep)
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in TABLE_COLUMNS})
    return buf.getvalue()


def format_table(rows: list[dict]) -> str:
    """The summary table for a terminal."""
    head = (
        f"{'model':28s} {'layer':18s} {'gen':>4s} {'acc':>4s} {'features':>9s} {'rho@layer':>9s} {'null':>7s} "
        f"{'rho@logits':>10s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model'][:28]:28s} {r['layer'][:18]:18s} {r['generated']:4d} {r['accepted']:4d} {r['features']:9d} "
            f"{r['median_rho_layer']:9.4f} {r['median_null_rho_layer']:7.4f} {r['median_rho_logits']:10.4f}"
        )
    return "\n".join(lines)


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
    from metamers.synthesis import synthesize

    settings = (settings or SynthesisSettings()).replace(**changes)
    out: dict[str, dict[str, list[float]]] = {"standard": {}, "linear": {}}
    for layer in layers:
        for kind, linear in (("standard", False), ("linear", True)):
            r = synthesize(model, stimuli, layer, settings.replace(linear_grad_relu=linear))
            out[kind][layer] = [float(v) for v in r.layer_rho]
    return out
