"""When an item of a synthesis stops: a non-finite loss, ``stop_loss``, ``stop_rho`` and ``stop_label``.

The loop looks only every ``check_every`` iterations.  The fidelity check (rho at the generation layer, and the
model's label) runs on the device, on the items still running; the host reads one flag per item.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from metamers.modality import RESOLUTIONS, quantize
from metamers.settings import SynthesisSettings
from metamers.similarity import pearson, rank

__all__: list[str] = []

_AS = {"8-bit": " as an 8-bit image", "16-bit": " as a 16-bit waveform"}


class Fidelity:
    """The fidelity test of one synthesis: rho at the generation layer against the stimuli's, and the label.

    Parameters
    ----------
    target : torch.Tensor
        The stimuli's activations at the generation layer (batch first).
    acts : callable
        ``acts(x)``: the generation layer's activations for inputs ``x`` (no gradient needed).
    logits : callable, optional
        ``logits(x)``: the model's output for ``x``; with it, an item also needs its stimulus's top-1 label.
    labels : torch.Tensor, optional
        The model's top-1 labels of the stimuli (with ``logits``).
    chunk : int
        Items per pass.
    stop_on : {"float", "8-bit", "16-bit"}
        Judge the metamer as optimised, or as an 8-bit image or a 16-bit waveform file will hold it.

    Examples
    --------
    >>> target = torch.rand(2, 10)
    >>> f = Fidelity(target, acts=lambda x: x)
    >>> f.rho(target.clone(), torch.tensor([0, 1])).tolist()
    [1.0, 1.0]
    """

    def __init__(
        self,
        target: torch.Tensor,
        acts: Callable[[torch.Tensor], torch.Tensor],
        logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
        chunk: int = 2,
        stop_on: str = "float",
    ) -> None:
        if stop_on not in RESOLUTIONS:
            raise ValueError(f"stop_on={stop_on!r} is not one of {', '.join(RESOLUTIONS)}.")
        self._target_ranks = rank(target.flatten(1).double())
        self._acts, self._logits, self._labels, self._chunk = acts, logits, labels, max(1, chunk)
        self._stop_on = stop_on

    def _items(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``x[ids]`` as the test judges them: as they are, or as a file of the chosen resolution holds them."""
        return quantize(x.detach().index_select(0, ids), self._stop_on)

    @torch.no_grad()
    def rho(self, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Spearman rho at the generation layer of ``x[items]`` against their stimuli (float64, on the device)."""
        out = []
        for a in range(0, len(items), self._chunk):
            ids = items[a : a + self._chunk]
            acts = self._acts(self._items(x, ids)).flatten(1).double()
            out.append(pearson(rank(acts), self._target_ranks.index_select(0, ids)))
        return torch.cat(out)

    @torch.no_grad()
    def same_label(self, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether the model's top-1 output for ``x[items]`` is their stimuli's (all true without a label test)."""
        if self._logits is None or self._labels is None:
            return torch.ones(len(items), dtype=torch.bool, device=items.device)
        out = []
        for a in range(0, len(items), self._chunk):
            ids = items[a : a + self._chunk]
            out.append(_top1(self._logits(self._items(x, ids))) == self._labels.index_select(0, ids))
        return torch.cat(out)


def _top1(output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"stop_label needs a model whose output is one row of class scores per item, got {shape}; "
            "set stop_label=false and stop on stop_rho alone."
        )
    return output.argmax(1)


def stimulus_labels(logits: Callable[[torch.Tensor], torch.Tensor], stimuli: torch.Tensor, chunk: int) -> torch.Tensor:
    """The model's top-1 label of each stimulus."""
    with torch.no_grad():
        return torch.cat([_top1(logits(stimuli[a : a + chunk])) for a in range(0, len(stimuli), max(1, chunk))])


def check(
    losses: torch.Tensor,
    active: torch.Tensor,
    x: torch.Tensor,
    snapshot: torch.Tensor,
    snapshot_it: int,
    opt: torch.optim.Optimizer,
    it: int,
    s: SynthesisSettings,
    stop_iteration: list[int],
    stop_reason: list[str],
    fidelity: Fidelity | None = None,
) -> torch.Tensor:
    """The look every ``check_every`` iterations: non-finite losses, then ``stop_loss`` / ``stop_rho`` / label.

    Stopped items get ``active`` false, their stop iteration and reason, and their optimiser moments zeroed (so a
    zero gradient leaves them where they are).  Returns the losses on the host (NaN where a loss was not finite).
    """
    host = losses.detach().double().cpu()
    live = torch.nonzero(active.cpu()).flatten().tolist()
    stopping = []
    for i in list(live):
        v = float(host[i])
        if v != v or v in (float("inf"), float("-inf")):
            stop_reason[i] = (
                f"stopped: loss became {v} by iteration {it}; kept the metamer from iteration {snapshot_it}. "
                "Lower the learning rate or check the model for operations with unbounded gradients."
            )
            stop_iteration[i] = snapshot_it
            with torch.no_grad():
                x[i] = snapshot[i]
            host[i] = float("nan")
            stopping.append(i)
            live.remove(i)
    close = [i for i in live if s.stop_loss is not None and float(host[i]) <= s.stop_loss]
    reason = {i: "reached stop_loss" for i in close}
    if s.stop_rho is not None and fidelity is not None:
        rest = [i for i in live if i not in reason]
        if rest:
            ids = torch.tensor(rest, device=x.device)
            rho = fidelity.rho(x, ids)
            for i, r in zip(rest, (rho >= s.stop_rho).cpu().tolist(), strict=True):
                if r:
                    close.append(i)
                    reason[i] = f"reached stop_rho {s.stop_rho:g}" + _AS.get(s.stop_on, "")
    if s.stop_label and close and fidelity is not None:
        ids = torch.tensor(close, device=x.device)
        same = fidelity.same_label(x, ids).cpu().tolist()
        close = [i for i, ok in zip(close, same, strict=True) if ok]
        reason = {i: reason[i] + " with the stimulus's label" for i in close}
    for i in close:
        stop_reason[i] = reason[i]
        stop_iteration[i] = it
        stopping.append(i)
    if stopping:
        idx = torch.tensor(stopping, device=active.device)
        active[idx] = False
        for state in opt.state.values():
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][idx] = 0
    return host
