"""The state of a synthesis loop, and its checkpoint files (written atomically: a temporary name, flushed, renamed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from metamers._files import DamagedFile, atomic_path, set_aside

__all__ = ["LoopState"]


@dataclass
class LoopState:
    """Everything a synthesis loop carries from one iteration to the next, beside the optimiser's own state: the
    metamers, which items still run, when and why each stopped, the recorded losses, the last checked point, the
    iteration and the time spent. A checkpoint is this state and the optimiser's, so a resumed loop goes on exactly.

    Examples
    --------
    >>> st = LoopState.fresh(torch.zeros(2, 3), iterations=10)
    >>> st.stop_reason, int(st.active.sum())
    (['completed', 'completed'], 2)
    >>> back = LoopState.from_checkpoint(st.to_checkpoint("abc", {}), torch.zeros(2, 3), "cpu")
    >>> back.stop_iteration, back.iteration
    ([10, 10], 0)
    """

    x: torch.Tensor
    active: torch.Tensor
    stop_iteration: list[int]
    stop_reason: list[str]
    snapshot: torch.Tensor
    snapshot_it: int = 0
    history: list[torch.Tensor] = field(default_factory=list)
    record_its: list[int] = field(default_factory=list)
    iteration: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def fresh(cls, x: torch.Tensor, iterations: int) -> LoopState:
        """The state before the first iteration: every item running, each to run all ``iterations``."""
        n = x.shape[0]
        active = torch.ones(n, dtype=torch.bool, device=x.device)
        return cls(x, active, [iterations] * n, ["completed"] * n, x.detach().clone())

    def to_checkpoint(self, fingerprint: str, optimizer: dict, elapsed_s: float | None = None) -> dict:
        """The checkpoint's contents (tensors on the CPU): this state, the optimiser's, and the synthesis's
        fingerprint (a resume checks it)."""
        return {
            "fingerprint": fingerprint,
            "iteration": self.iteration,
            "x": self.x.detach().cpu().contiguous(),
            "optimizer": optimizer,
            "active": self.active.cpu(),
            "stop_iteration": self.stop_iteration,
            "stop_reason": self.stop_reason,
            "history": [h.cpu() for h in self.history],
            "record_its": self.record_its,
            "snapshot": self.snapshot.cpu(),
            "snapshot_it": self.snapshot_it,
            "elapsed_s": self.elapsed_s if elapsed_s is None else elapsed_s,
        }

    @classmethod
    def from_checkpoint(cls, state: dict, x: torch.Tensor, device: torch.device | str) -> LoopState:
        """The state a checkpoint holds, its metamers copied into ``x`` (the tensor being optimised)."""
        with torch.no_grad():
            x.copy_(state["x"].to(device))
        return cls(
            x=x,
            active=state["active"].to(device),
            stop_iteration=list(state["stop_iteration"]),
            stop_reason=list(state["stop_reason"]),
            snapshot=state["snapshot"].to(device),
            snapshot_it=int(state["snapshot_it"]),
            history=[h.to(device) for h in state["history"]],
            record_its=list(state["record_its"]),
            iteration=int(state["iteration"]),
            elapsed_s=float(state["elapsed_s"]),
        )


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
