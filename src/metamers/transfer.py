"""Network-to-network transfer (paper sections 4.4-4.5): metamers of one model, classified by another.

If two networks share invariances, the metamers of one are recognized by the other.  The measure is the proportion of
accepted metamers that the recognizing model gives the reference label of their natural stimulus, with a bootstrap
standard error over stimuli; the recognizing model's accuracy on the natural stimuli is the ceiling to compare with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["TransferCell", "bootstrap_sem", "figure5_trend", "recognition", "transfer_cell"]


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
    chance: float | None = None,
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
    chance : float, optional
        The chance level when it is not ``1 / n_classes`` (a reference that is a set of classes).

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
        chance=1.0 / n_classes if chance is None else chance,
        own=generator == recognizer,
    )


def figure5_trend(cells: Sequence[dict], stages: dict | None = None) -> list[dict]:
    """Per generating model and label space: do OTHER trained networks recognize its early metamers more often?

    The paper's Figure 5: metamers from early layers of one network are recognized by other networks; those from
    late layers are not.  For each trained generator, over the recognizers that are neither the generator itself
    nor random networks, this compares the mean proportion recognized at the first generation layer with that at
    the last.

    Parameters
    ----------
    cells : sequence of dict
        Transfer rows (``catalog.sqlite`` table ``transfer``), generation layers in depth order.  Cells without
        accepted metamers (``proportion`` None) are left out.
    stages : dict, optional
        ``{(generator, layer): stage name}``, to name the layers as the plan did.

    Returns
    -------
    list of dict
        ``{"generator", "space", "first", "last", "early", "late", "shown", "verdict", "recognizers", "text"}``:
        ``verdict`` is ``"shown"`` when the fall from the first to the last layer exceeds twice its bootstrap standard
        error (the cells' ``sem``), ``"unclear"`` when it falls by less, ``"not shown"`` when it does not fall.

    Examples
    --------
    >>> cells = [dict(generator="a", layer=lay, recognizer="b", label_space="imagenet", own=0, proportion=p)
    ...          for lay, p in (("l1", 0.8), ("l9", 0.1))]
    >>> figure5_trend(cells)[0]["shown"]
    True
    """
    out = []
    stages = stages or {}
    cells = [c for c in cells if c.get("proportion") is not None]
    for gen in dict.fromkeys(c["generator"] for c in cells):
        if gen.endswith("-random"):
            continue
        for space in dict.fromkeys(c["label_space"] for c in cells if c["generator"] == gen):
            sel = [c for c in cells if c["generator"] == gen and c["label_space"] == space]
            others = [c for c in sel if not c["own"] and not c["recognizer"].endswith("-random")]
            layers = list(dict.fromkeys(c["layer"] for c in sel))
            if not others or len(layers) < 2:
                continue
            first, last = layers[0], layers[-1]
            name = {lay: stages.get((gen, lay), lay) for lay in (first, last)}

            def mean(layer: str, key: str = "proportion", others: list = others) -> float:
                vals = [c.get(key) or 0.0 for c in others if c["layer"] == layer]
                return sum(vals) / len(vals) if vals else float("nan")

            early, late = mean(first), mean(last)
            # the bootstrap SEM of each mean (the recognizers' SEMs averaged: they judge the same stimuli)
            spread = math.hypot(mean(first, "sem"), mean(last, "sem"))
            shown = early - late > 2 * spread
            verdict = "shown" if shown else ("unclear" if early > late else "not shown")
            recs = sorted({c["recognizer"] for c in others})
            judged = {
                "shown": "the paper's Figure 5 trend (recognition by other networks falls with depth) holds here"
                + (f", the fall more than twice its standard error (±{spread:.0%})." if spread else "."),
                "unclear": f"it falls with depth, as in the paper's Figure 5, but by less than twice its standard "
                f"error (±{spread:.0%}): too few stimuli to tell; more stimuli would (the plan's [stimuli]).",
                "not shown": "these data do NOT show the paper's Figure 5 trend.",
            }
            text = (
                f"{', '.join(recs)} recognized {early:.0%} of the {gen} metamers from its first generation layer "
                f"({name[first]}) and {late:.0%} of those from its last ({name[last]}) [{space} labels]: "
                + judged[verdict]
            )
            out.append(
                {
                    "generator": gen,
                    "space": space,
                    "first": first,
                    "last": last,
                    "early": early,
                    "late": late,
                    "shown": shown,
                    "verdict": verdict,
                    "recognizers": recs,
                    "text": text,
                }
            )
    return out
