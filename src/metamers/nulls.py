"""Null distributions for many layers at once, and a store that saves them for reuse.

The activations of every stimulus are computed once, in batches, for all layers together; each layer's standardized
ranks go to RAM when they fit a budget and to a memory-mapped file otherwise; the pairs are then drawn per layer by
:func:`null_rho`.  A null is keyed by everything that decides it (model, layer, stimulus set,
augmentation, number of pairs, seed), so a later validation reuses it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metamers._files import DamagedFile, atomic_path, set_aside
from metamers.similarity import rank
from metamers.taps import Taps, frozen

__all__ = ["NullStore", "compute_nulls", "null_from_activations", "null_key", "null_rho", "standardized_ranks"]


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


def null_key(**fields: object) -> str:
    """A short stable key for a null's defining fields.

    Examples
    --------
    >>> null_key(model="m", layer="a") == null_key(layer="a", model="m")
    True
    """
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:20]


class NullStore:
    """Nulls saved under a directory, one ``.safetensors`` file per (model, layer, set, augmentation, pairs, seed).

    Examples
    --------
    >>> store = NullStore(tempfile.mkdtemp())
    >>> fields = dict(model="m", layer="a", stimuli="s", augment="none", pairs=3, seed=0)
    >>> store.get(**fields) is None
    True
    >>> path = store.put(torch.tensor([0.1, 0.2, 0.3]), **fields)
    >>> [round(v, 3) for v in store.get(**fields).tolist()]
    [0.1, 0.2, 0.3]
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def _path(self, fields: dict) -> Path:
        return self.directory / f"null_{null_key(**fields)}.safetensors"

    def get(self, **fields: object) -> torch.Tensor | None:
        """The stored null for ``fields``, or None: also when its file is damaged, which is then set aside
        (``.corrupt``, with a warning naming it) for the null to be computed again."""
        from safetensors.torch import load_file

        path = self._path(fields)
        if not path.exists():
            return None
        try:
            return load_file(str(path))["rho"]
        except Exception as e:  # truncated or overwritten: safetensors' errors have no common class
            import warnings

            moved = set_aside(path)
            warnings.warn(f"{DamagedFile(path, e, f'set aside as {moved.name}; computing it again.')}", stacklevel=2)
            return None

    def put(self, rho: torch.Tensor, **fields: object) -> Path:
        """Store a null (atomically)."""
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(fields)
        with atomic_path(path) as tmp:
            save_file({"rho": rho.float().contiguous()}, str(tmp), metadata={"fields": json.dumps(fields, default=str)})
        return path


def compute_nulls(
    model: nn.Module,
    layers: Sequence[str],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_pairs: int | None,
    seed: int = 0,
    total: int | None = None,
    max_bytes: int = 1024 * 2**20,
    device: str | torch.device | None = None,
    workdir: str | os.PathLike | None = None,
) -> dict[str, torch.Tensor]:
    """Null distributions of Spearman rho at several layers, from one pass over the stimuli.

    Parameters
    ----------
    model : nn.Module
        The model.
    layers : sequence of str
        Layers to compute nulls for.
    batches : iterable of (stimuli, sources)
        Stimuli in batches with the index of the source each came from (pairs from one source are excluded), e.g.
        :func:`metamers.stimuli.augmented_batches`.
    n_pairs : int or None
        Pairs per layer (all valid pairs when None).
    seed : int
        Seed of the pair draw (the same pairs at every layer).
    total : int, optional
        Number of stimuli the batches hold.  When given, a layer whose standardized ranks would exceed
        ``max_bytes`` is written to a memory-mapped file instead of RAM.
    max_bytes : int
        Memory budget for ranks held in RAM per layer, and for the Gram tiles in flight.
    device : str or torch.device, optional
        Where the model and the matrix products run (default: the model's device).
    workdir : path, optional
        Where memory-mapped files go (a temporary directory, removed afterwards, by default).

    Returns
    -------
    dict
        ``{layer: rho}``, each a float32 tensor of ``n_pairs`` values.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    >>> data = [(torch.rand(10, 8), torch.arange(10))]
    >>> {k: v.shape for k, v in compute_nulls(net, ["1", "2"], data, n_pairs=45).items()}
    {'1': torch.Size([45]), '2': torch.Size([45])}
    """
    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
    store: dict[str, torch.Tensor | np.ndarray] = {}
    filled = 0
    sources: list[torch.Tensor] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, frozen(model), torch.no_grad():
        taps = Taps(model, list(layers))
        for x, src in batches:
            acts = taps(x.to(device))
            n = x.shape[0]
            sources.append(torch.as_tensor(src).flatten())
            for name in layers:
                z = standardized_ranks(acts[name].flatten(1).float()).cpu()
                if name not in store:
                    rows = total if total is not None else n
                    if total is not None and rows * z.shape[1] * 4 > max_bytes:
                        path = Path(tmp) / f"z_{null_key(layer=name)}.npy"
                        store[name] = np.lib.format.open_memmap(path, "w+", np.float32, (rows, z.shape[1]))
                    else:
                        store[name] = torch.empty(rows, z.shape[1])
                buf = store[name]
                if filled + n > buf.shape[0]:
                    if isinstance(buf, np.ndarray):
                        raise ValueError(f"the batches hold more than total={total} stimuli.")
                    grown = torch.empty(max(2 * buf.shape[0], filled + n), buf.shape[1])
                    grown[:filled] = buf[:filled]
                    store[name] = buf = grown
                buf[filled : filled + n] = z.numpy() if isinstance(buf, np.ndarray) else z
            filled += n
        groups = torch.cat(sources)
        out = {}
        for name in layers:
            z = store.pop(name)[:filled]
            out[name] = null_rho(z, n_pairs=n_pairs, seed=seed, groups=groups, max_bytes=max_bytes, device=device)
            del z
        return out
