"""Null distributions for many layers at once, and a store that saves them for reuse.

The activations of every stimulus are computed once, in batches, for all layers together; each layer's standardized
ranks go to RAM when they fit a budget and to a memory-mapped file otherwise; the pairs are then drawn per layer by
:func:`metamers.validation.null_rho`.  A null is keyed by everything that decides it (model, layer, stimulus set,
augmentation, number of pairs, seed), so a later validation reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metamers._files import DamagedFile, set_aside
from metamers.taps import Taps, frozen
from metamers.validation import null_rho, standardized_ranks

__all__ = ["NullStore", "compute_nulls", "null_key"]


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
        tmp = path.with_name(path.name + ".tmp")
        save_file({"rho": rho.float().contiguous()}, str(tmp), metadata={"fields": json.dumps(fields, default=str)})
        os.replace(tmp, path)
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
