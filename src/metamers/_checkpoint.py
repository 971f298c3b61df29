"""Atomic checkpoint files: written to a temporary name, flushed, then renamed over the old one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__: list[str] = []


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` so that a crash at any moment leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file that is not ours, or from an incompatible version
        raise RuntimeError(f"cannot read checkpoint {path}: {e}. Delete it to start the synthesis afresh.") from e
