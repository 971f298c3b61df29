"""The paper's validation figures: Figure S1 (metamer rho against the null, per layer) and Figure 2(c)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["null_grid", "relu_comparison_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def null_grid(
    metamer_rho: dict[str, dict[str, Sequence[float]]],
    null_rho: dict[str, Sequence[float]],
    measured: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Figure S1: generation layers (rows) by measured layers (columns), metamer rho against the null.

    Parameters
    ----------
    metamer_rho : dict
        ``{generation layer: {measured layer: rho of each metamer}}``.
    null_rho : dict
        ``{measured layer: null rho values}``.
    measured : sequence of str
        Column order.
    path : path
        Where to write the figure (PNG or SVG by suffix).
    """
    plt = _plt()
    rows = list(metamer_rho)
    fig, axes = plt.subplots(
        len(rows), len(measured), figsize=(1.9 * len(measured), 1.5 * len(rows) + 0.6), squeeze=False
    )
    bins = np.linspace(-1, 1, 81)
    for r, gen in enumerate(rows):
        for c, lay in enumerate(measured):
            ax = axes[r][c]
            if lay in null_rho and len(null_rho[lay]):
                ax.hist(np.asarray(null_rho[lay]), bins=bins, color="#d62728", alpha=0.6, density=True, label="null")
            vals = metamer_rho[gen].get(lay)
            if vals is not None and len(vals):
                ax.hist(np.asarray(vals), bins=bins, color="#1f77b4", alpha=0.8, density=True, label="metamers")
            ax.set_yticks([])
            ax.set_xlim(-0.3, 1.02)
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(lay, fontsize=7, color="black")
            if c == 0:
                ax.set_ylabel(f"from\n{gen}", fontsize=7)
            if lay == gen:
                for side in ax.spines.values():
                    side.set_color("#d62728")
                    side.set_linewidth(1.5)
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.suptitle(title or "Spearman rho: metamers (blue) against the null (red); generation layer framed", fontsize=9)
    fig.supxlabel("measured layer", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def relu_comparison_figure(
    results: dict[str, dict[str, Sequence[float]]],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Figure 2(c): matching fidelity per generation layer with the standard and the linear-gradient ReLU.

    Parameters
    ----------
    results : dict
        ``{"standard": {layer: rho per metamer}, "linear": {layer: rho per metamer}}``.
    path : path
        Output file.
    """
    plt = _plt()
    layers = list(next(iter(results.values())))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(layers) + 1.5), 3.2))
    colors = {"standard": "#1f77b4", "linear": "#d62728"}
    labels = {"standard": "standard ReLU gradient", "linear": "linear-gradient ReLU"}
    for k, (kind, per_layer) in enumerate(results.items()):
        xs = np.arange(len(layers)) + (k - 0.5) * 0.25
        for x, lay in zip(xs, layers, strict=True):
            vals = np.asarray(per_layer[lay])
            ax.scatter(np.full(len(vals), x), vals, s=10, color=colors.get(kind, "grey"), alpha=0.7,
                       label=labels.get(kind, kind) if lay == layers[0] else None)  # fmt: skip
        ax.plot(xs, [np.median(per_layer[lay]) for lay in layers], color=colors.get(kind, "grey"), lw=1)
    ax.set_xticks(np.arange(len(layers)))
    ax.set_xticklabels(layers, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("Spearman rho at the layer")
    ax.set_title(title or "Matching fidelity by generation layer", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
