"""The 16-way entry-level categorization task of Geirhos et al. (2018), read out from a 1000-way ImageNet model.

Geirhos et al. 2018 ("Generalisation in humans and deep neural networks", NeurIPS) asked people to sort images
into 16 entry-level categories; Feather et al. 2019 used the same task for human and network recognition of
image metamers. A network trained on ImageNet-1k answers the task by pooling its 1000 class probabilities.

Source of the mapping
    The ImageNet-1k indices per category are the ``*_indices`` lists of ``HumanCategories`` in
    ``modelvshuman/helper/human_categories.py`` of the repository ``bethgelab/model-vs-human`` (commits
    292163431f5c and 3723ecea4256 hold identical lists). They are the ILSVRC-2012 classes whose WordNet ids appear
    in the WNID lists of ``code/accuracy_evaluation/human_categories.py`` in ``rgeirhos/generalisation-humans-DNNs``
    (checked here class by class). 207 of the 1000 classes belong to a category; the other 793 belong to none.
    Some choices are narrow: ``oven`` is only *rotisserie* (766), ``knife`` only *cleaver* (499), ``airplane`` only
    *airliner* (404), and *cougar* (286) counts as ``cat``; *Chihuahua* (151) and eight other breeds are not ``dog``.

Source of the decision rule
    ``ImageNetProbabilitiesTo16ClassesMapping`` in ``code/probabilities_to_decision.py`` of
    ``rgeirhos/texture-vs-shape`` and in ``modelvshuman/datasets/decision_mappings.py`` of
    ``bethgelab/model-vs-human``: softmax probabilities are aggregated within each category with
    ``aggregation_function=np.mean`` (the default in both) -- the MEAN, not the sum -- and the category with the
    largest mean wins (ties go to the alphabetically first category). An older helper, ``get_16AFC_decision`` in
    ``code/accuracy_evaluation/evaluate.py`` of ``rgeirhos/generalisation-humans-DNNs``, instead picks the category
    of the single most probable mapped class; ``aggregation="max"`` gives that rule, ``aggregation="sum"`` the sum.

The mean favours small categories: one confident *cat* class outweighs the same total probability spread over
the 109 *dog* classes.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import torch

__all__ = [
    "CATEGORIES",
    "CATEGORY_INDICES",
    "IMAGENET_TO_16",
    "NUM_IMAGENET_CLASSES",
    "category_of",
    "decision_16",
    "probabilities_16",
]

NUM_IMAGENET_CLASSES = 1000

# The 16 categories, in alphabetical order (the order of the output columns; index 0..15).
CATEGORIES: tuple[str, ...] = (
    "airplane",
    "bear",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "car",
    "cat",
    "chair",
    "clock",
    "dog",
    "elephant",
    "keyboard",
    "knife",
    "oven",
    "truck",
)

# ImageNet-1k indices (standard order, 0 = tench) per category. Data reproduced from
# bethgelab/model-vs-human, modelvshuman/helper/human_categories.py (HumanCategories.<category>_indices).
_INDICES: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (
        *(8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24),
        *(80, 81, 82, 83, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 98, 99, 100),
        *(127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145),
    ),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (
        *range(152, 192),  # skips 151 Chihuahua
        *range(193, 204),  # skips 192 cairn
        *range(205, 227),  # skips 204 Lhasa
        *range(228, 242),  # skips 227 kelpie
        *range(243, 251),  # skips 242 boxer
        *range(252, 258),  # skips 251 dalmatian
        259,  # skips 258 Samoyed
        *range(261, 264),  # skips 260 chow
        *range(265, 269),  # skips 264 Cardigan
    ),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

CATEGORY_INDICES: Mapping[str, tuple[int, ...]] = MappingProxyType({c: _INDICES[c] for c in CATEGORIES})
"""Read-only: category name -> the ImageNet-1k indices pooled into it (ascending)."""

IMAGENET_TO_16: Mapping[int, str] = MappingProxyType(
    dict(sorted((i, c) for c, indices in CATEGORY_INDICES.items() for i in indices))
)
"""Read-only: ImageNet-1k index -> category name, for the 207 mapped classes only."""

Aggregation = Literal["mean", "sum", "max"]

_POOLS = {"mean": torch.mean, "sum": torch.sum, "max": torch.amax}

_INDEX_CACHE: dict[torch.device, tuple[torch.Tensor, ...]] = {}


def _index_tensors(device: torch.device) -> tuple[torch.Tensor, ...]:
    if device not in _INDEX_CACHE:
        _INDEX_CACHE[device] = tuple(
            torch.tensor(CATEGORY_INDICES[c], dtype=torch.long, device=device) for c in CATEGORIES
        )
    return _INDEX_CACHE[device]


def category_of(imagenet_index: int) -> str | None:
    """The 16-way category of one ImageNet-1k class, or ``None`` where the source maps it to no category.

    Parameters
    ----------
    imagenet_index : int
        Class index in the standard ImageNet-1k order (0 = tench ... 999 = toilet tissue).

    Returns
    -------
    str or None
        One of :data:`CATEGORIES`, or ``None``.

    Raises
    ------
    ValueError
        If the index is outside 0..999.

    Examples
    --------
    >>> category_of(281), category_of(409), category_of(286)
    ('cat', 'clock', 'cat')
    >>> category_of(0) is None
    True
    """
    if isinstance(imagenet_index, bool):
        raise TypeError("imagenet_index must be an integer, not a bool")
    index = operator.index(imagenet_index)
    if not 0 <= index < NUM_IMAGENET_CLASSES:
        raise ValueError(f"imagenet_index must be in 0..{NUM_IMAGENET_CLASSES - 1}, got {index}")
    return IMAGENET_TO_16.get(index)


def probabilities_16(
    logits_or_probs: torch.Tensor,
    from_logits: bool = True,
    *,
    aggregation: Aggregation = "mean",
) -> torch.Tensor:
    """Pool 1000-way ImageNet outputs into one score per 16-way category.

    Parameters
    ----------
    logits_or_probs : torch.Tensor
        Floating tensor of shape ``(N, 1000)`` (or ``(1000,)``), in the standard ImageNet-1k class order.
    from_logits : bool, default True
        If True the input holds logits and a softmax over the last axis is taken first; if False it must
        already hold probabilities (values in [0, 1]).
    aggregation : {"mean", "sum", "max"}, default "mean"
        How the probabilities of a category's ImageNet classes are pooled. ``"mean"`` is the source's rule
        (Geirhos et al.'s ``ImageNetProbabilitiesTo16ClassesMapping``); the others are for comparison.

    Returns
    -------
    torch.Tensor
        Shape ``(N, 16)`` (or ``(16,)``), columns in the order of :data:`CATEGORIES`. With ``"mean"`` the rows
        do not sum to 1: they are per-category mean probabilities, not a distribution. Differentiable.

    Raises
    ------
    ValueError
        On a wrong shape, a non-floating dtype, probabilities outside [0, 1], or an unknown aggregation.

    Examples
    --------
    >>> p = torch.zeros(1, 1000)
    >>> p[0, 281] = 0.6  # tabby cat
    >>> p[0, 409] = 0.4  # analog clock
    >>> s = probabilities_16(p, from_logits=False)
    >>> s.shape, round(s[0, CATEGORIES.index("cat")].item(), 4), round(s[0, CATEGORIES.index("clock")].item(), 4)
    (torch.Size([1, 16]), 0.1, 0.1333)
    >>> CATEGORIES[int(decision_16(p, from_logits=False))]  # 'clock', though the top class is a cat
    'clock'
    """
    x = logits_or_probs
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (1, 2) or x.shape[-1] != NUM_IMAGENET_CLASSES:
        raise ValueError(
            f"expected shape (N, {NUM_IMAGENET_CLASSES}) or ({NUM_IMAGENET_CLASSES},), got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor, got {x.dtype}")
    if from_logits:
        probs = torch.softmax(x, dim=-1)
    else:
        if x.numel() and bool(((x < 0) | (x > 1) | x.isnan()).any()):
            raise ValueError("probabilities must lie in [0, 1]; pass from_logits=True for logits")
        probs = x
    pool = _POOLS.get(aggregation)
    if pool is None:
        raise ValueError(f"aggregation must be one of {sorted(_POOLS)}, got {aggregation!r}")
    return torch.stack([pool(probs.index_select(-1, idx), dim=-1) for idx in _index_tensors(probs.device)], dim=-1)


def decision_16(
    logits_or_probs: torch.Tensor,
    from_logits: bool = True,
    *,
    aggregation: Aggregation = "mean",
) -> torch.Tensor:
    """The 16-way decision: the category with the largest pooled probability (mean over its classes by default).

    Parameters
    ----------
    logits_or_probs : torch.Tensor
        Floating tensor of shape ``(N, 1000)`` (or ``(1000,)``) in the standard ImageNet-1k class order.
    from_logits : bool, default True
        Whether to apply a softmax first (True for raw network outputs).
    aggregation : {"mean", "sum", "max"}, default "mean"
        Pooling within a category; see :func:`probabilities_16`. ``"mean"`` is the source's rule.

    Returns
    -------
    torch.Tensor
        ``int64`` category indices in 0..15 (index into :data:`CATEGORIES`), shape ``(N,)`` (or ``()``).
        Ties go to the first category in alphabetical order, as in the source's strict ``>`` loop.

    Examples
    --------
    >>> logits = torch.zeros(2, 1000)
    >>> logits[0, 409] = 10.0  # analog clock
    >>> logits[1, 508] = 10.0  # computer keyboard
    >>> [CATEGORIES[i] for i in decision_16(logits).tolist()]
    ['clock', 'keyboard']
    """
    return probabilities_16(logits_or_probs, from_logits, aggregation=aggregation).argmax(dim=-1)
