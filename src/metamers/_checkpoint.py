"""Atomic checkpoint files: written to a temporary name, flushed, then renamed over the old one."""

from __future__ import annotations

from pathlib import Path

import torch

from metamers._files import DamagedFile, atomic_path, set_aside

__all__: list[str] = []


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` so that a crash at any moment leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only).

    Raises
    ------
    DamagedFile
        When the file cannot be read (truncated, or not a checkpoint of ours).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not ours, or from an incompatible version
        raise DamagedFile(path, e, "a synthesis sets it aside and starts afresh.") from e
    if not isinstance(state, dict) or "fingerprint" not in state:
        raise DamagedFile(path, "not a metamers checkpoint", "a synthesis sets it aside and starts afresh.")
    return state


def resume_state(path: Path | None) -> dict | None:
    """The checkpoint's state; None without one, or when it is damaged: then it is set aside (``.corrupt``), a
    warning names it, and the synthesis starts afresh (what it held cannot be read anyway)."""
    if path is None or not path.exists():
        return None
    try:
        return load_checkpoint(path)
    except DamagedFile as e:
        import warnings

        warnings.warn(f"{e} It was set aside as {set_aside(path).name}; starting afresh.", stacklevel=3)
        return None
