"""The paper's validation figures: Figure S1 (metamer rho against the null, per layer) and Figure 2(c)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["cochleagram_grid", "cochleagram_image", "image_grid", "null_grid", "relu_comparison_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    """Lay out, write (PNG or SVG by suffix) and close a figure."""
    plt = _plt()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    if path.suffix == ".png" and path.parent.name == "figures":  # charts: also as SVG, for print
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return path


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
    return _save(fig, path)


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
    return _save(fig, path)


def transfer_curves(cells: Sequence, order: dict[str, int], path: str | os.PathLike, title: str = "") -> Path:
    """Figure 5 style: one panel per recognizing model, recognition against generation layer per generating model.

    Parameters
    ----------
    cells : sequence of TransferCell
        One label space.
    order : dict
        Layer name to its position in the forward pass (x-axis order).
    path : path
        Output file.
    """
    plt = _plt()
    recognizers = list(dict.fromkeys(c.recognizer for c in cells))
    generators = list(dict.fromkeys(c.generator for c in cells))
    fig, axes = plt.subplots(1, len(recognizers), figsize=(3.3 * len(recognizers), 3.2), squeeze=False, sharey=True)
    space = cells[0].label_space
    for ax, rec in zip(axes[0], recognizers, strict=True):
        ticks: dict[int, list[str]] = {}  # position -> the layer names there (generators of two architectures)
        for k, gen in enumerate(generators):
            sel = sorted((c for c in cells if c.recognizer == rec and c.generator == gen), key=lambda c: order[c.layer])
            if not sel:
                continue
            xs = np.arange(len(sel))
            label = f"{gen} (own)" if gen == rec else gen
            ax.errorbar(xs, [c.proportion for c in sel], yerr=[c.sem for c in sel], marker="o", ms=4, capsize=2,
                        label=label, color=f"C{k % 10}")  # fmt: skip
            ax.plot(xs, [c.natural_accuracy for c in sel], ls="--", lw=1, color=f"C{k % 10}", alpha=0.6)
            for x, c in zip(xs, sel, strict=True):
                names = ticks.setdefault(int(x), [])
                if c.layer.replace("net.", "") not in names:
                    names.append(c.layer.replace("net.", ""))
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels(["/".join(ticks[x]) for x in sorted(ticks)], rotation=35, ha="right", fontsize=7)
        ax.axhline(sel[0].chance if sel else 0, ls=":", color="grey", lw=1)
        ax.set_title(f"recognized by {rec}", fontsize=8)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("generation layer", fontsize=8)
    axes[0][0].set_ylabel(f"proportion correct ({space})", fontsize=8)
    handles: dict[str, object] = {}  # every generator once, in one legend below the panels
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(4, max(len(handles), 1)), fontsize=7, frameon=False)  # fmt: skip
    fig.suptitle(title or f"Metamer transfer ({space}): dashed = natural stimuli, dotted = chance; error bars = "
                 "bootstrap SEM", fontsize=8)  # fmt: skip
    return _save(fig, path)


def transfer_matrix(cells: Sequence, order: dict[str, int], path: str | os.PathLike) -> Path:
    """The transfer matrix: (generating model, layer) rows by recognizing model columns, proportion recognized."""
    plt = _plt()
    rows = sorted({(c.generator, c.layer) for c in cells}, key=lambda gl: (gl[0], order[gl[1]]))
    cols = list(dict.fromkeys(c.recognizer for c in cells))
    m = np.full((len(rows), len(cols)), np.nan)
    for c in cells:
        m[rows.index((c.generator, c.layer)), cols.index(c.recognizer)] = c.proportion
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 3, 0.45 * len(rows) + 1.5))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] < 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{g}: {lay.replace('net.', '')}" for g, lay in rows], fontsize=7)
    ax.set_xlabel("recognizing model", fontsize=8)
    fig.colorbar(im, ax=ax, label="proportion recognized")
    ax.set_title(f"Metamer transfer matrix ({cells[0].label_space})", fontsize=9)
    return _save(fig, path)


def image_grid(
    originals: torch.Tensor,
    columns: dict[str, torch.Tensor],
    row_names: Sequence[str],
    path: Path,
    notes: dict[str, list[str]] | None = None,
) -> Path:
    """A figure of stimuli (rows) by generation stage (columns), the original first."""
    plt = _plt()
    cols = ["original", *columns]
    n = len(row_names)
    fig, axes = plt.subplots(n, len(cols), figsize=(2.2 * len(cols), 2.3 * n), squeeze=False)
    for i, name in enumerate(row_names):
        for j, col in enumerate(cols):
            img = originals[i] if col == "original" else columns[col][i]
            ax = axes[i][j]
            ax.imshow(img.clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col, fontsize=10)
            if j == 0:
                ax.set_ylabel(name, fontsize=10)
            if notes and col in notes:
                ax.set_xlabel(notes[col][i], fontsize=8)
    return _save(fig, path)


def cochleagram_grid(
    originals: torch.Tensor,
    columns: dict[str, torch.Tensor],
    row_names: Sequence[str],
    centre_frequencies: Sequence[float],
    path: str | os.PathLike,
    env_sr: float = 200.0,
    notes: dict[str, list[str]] | None = None,
) -> Path:
    """Cochleagrams of stimuli (rows) and their metamers (columns, one per generation stage), the original first.

    Parameters
    ----------
    originals, columns
        Cochleagrams ``[n, 1, channels, frames]`` (or ``[n, channels, frames]``), e.g. from
        :class:`metamers.audio.cochleagram.Cochleagram`.
    row_names : sequence of str
        One name per stimulus (e.g. the word).
    centre_frequencies : sequence of float
        Each channel's centre frequency (Hz), for the frequency axis.
    path : path
        PNG or SVG file to write.
    env_sr : float
        Frame rate (Hz), for the time axis.
    notes : dict, optional
        Per column, one line under each panel (e.g. the Spearman rho and the network's label).

    Examples
    --------
    >>> import tempfile
    >>> c = torch.rand(1, 1, 211, 400)
    >>> cochleagram_grid(c, {"conv_0": c}, ["seven"], list(range(1, 212)), tempfile.mkdtemp() + "/c.png").suffix
    '.png'
    """
    plt = _plt()
    cols = ["original", *columns]
    n = len(row_names)
    fig, axes = plt.subplots(n, len(cols), figsize=(2.6 * len(cols), 2.2 * n), squeeze=False)
    cf = np.asarray(centre_frequencies, dtype=float)
    ticks_hz = [t for t in (100, 300, 1000, 3000, 8000) if cf.min() <= t <= cf.max()]
    tick_rows = [int(np.argmin(np.abs(cf - t))) for t in ticks_hz]
    top = (
        max(float(originals.max()), *(float(v.max()) for v in columns.values())) if columns else float(originals.max())
    )
    for i, name in enumerate(row_names):
        for j, col in enumerate(cols):
            c = (originals[i] if col == "original" else columns[col][i]).detach().float().cpu()
            c = c.reshape(c.shape[-2], c.shape[-1]).numpy()
            ax = axes[i][j]
            seconds = c.shape[1] / env_sr
            ax.imshow(
                c, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=top, extent=(0, seconds, 0, c.shape[0])
            )
            ax.set_yticks([r + 0.5 for r in tick_rows])
            ax.set_yticklabels([f"{t / 1000:g}k" if t >= 1000 else str(t) for t in ticks_hz] if j == 0 else [])
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(col, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{name}\nfrequency (Hz)", fontsize=8)
            if i == n - 1:
                ax.set_xlabel("time (s)" + (f"\n{notes[col][i]}" if notes and col in notes else ""), fontsize=8)
            elif notes and col in notes:
                ax.set_xlabel(notes[col][i], fontsize=8)
    return _save(fig, path)


def cochleagram_image(cochleagram: torch.Tensor, path: str | os.PathLike, vmax: float | None = None) -> Path:
    """One cochleagram ``[channels, frames]`` as a bare PNG (low frequencies at the bottom, magma colours).

    Each pixel is one channel and frame (211 x 400 for a 2-second clip): cheap enough to write one per sound.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> p = cochleagram_image(torch.rand(211, 400), tempfile.mkdtemp() + "/c.png")
    >>> Image.open(p).size
    (400, 211)
    """
    import matplotlib
    from PIL import Image

    c = cochleagram.detach().float().cpu()
    c = c.reshape(c.shape[-2], c.shape[-1]).numpy()
    top = float(c.max()) if vmax is None else vmax
    rgb = matplotlib.colormaps["magma"](np.clip(c / max(top, 1e-12), 0, 1)[::-1])[..., :3]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return path
