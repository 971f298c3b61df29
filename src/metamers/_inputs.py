"""The one check of :func:`metamers.synthesize`'s inputs, before any work: each mistake named, with its fix."""

from __future__ import annotations

import torch
from torch import nn

from metamers.settings import SynthesisSettings

__all__: list[str] = []

_LOW = (torch.float16, torch.bfloat16)


def check_inputs(model: nn.Module, stimuli: object, settings: SynthesisSettings, checkpoint_every: object) -> None:
    """Raise a TypeError or ValueError naming what is wrong with the stimuli or the options, and how to fix it.

    The stimuli must be a non-empty float tensor, batch first, finite, inside ``settings.bounds``, in the dtype of
    the model's parameters (float32 for every zoo model; float16 and bfloat16 belong in ``precision=``, which keeps
    the metamers in float32).  ``checkpoint_every`` must be a whole number of at least 1.
    """
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a whole number of iterations, 1 or more, got {checkpoint_every!r}.")
    if not isinstance(stimuli, torch.Tensor):
        raise TypeError(f"stimuli must be a torch.Tensor with the batch first, got {type(stimuli).__name__}.")
    if not stimuli.is_floating_point():
        raise TypeError(f"stimuli must be floating point (got {stimuli.dtype}); scale images to [0, 1] floats first.")
    if stimuli.dim() < 2:
        raise ValueError(f"stimuli need a batch dimension first, got shape {tuple(stimuli.shape)} (x[None] adds it).")
    if stimuli.shape[0] == 0:
        raise ValueError(f"the batch of stimuli is empty (shape {tuple(stimuli.shape)}); give at least one stimulus.")
    param = next(model.parameters(), None)
    if stimuli.dtype in _LOW:
        raise TypeError(
            f"stimuli are {str(stimuli.dtype).removeprefix('torch.')}: give float32 stimuli (x.float()); for faster "
            "arithmetic pass precision='bfloat16' or 'float16', which lowers the model's forward pass only and keeps "
            "the metamers and the optimiser in float32."
        )
    if param is not None and param.is_floating_point() and stimuli.dtype != param.dtype:
        have, want = (str(t).removeprefix("torch.") for t in (stimuli.dtype, param.dtype))
        raise TypeError(f"stimuli are {have} but the model computes in {want}: pass x.to(torch.{want}).")
    if not torch.isfinite(stimuli).all():
        raise ValueError("stimuli contain NaN or inf values.")
    if settings.bounds is not None:
        lo, hi = settings.bounds
        smin, smax = float(stimuli.min()), float(stimuli.max())
        if smin < lo - 1e-6 or smax > hi + 1e-6:
            raise ValueError(
                f"stimuli span [{smin:.4g}, {smax:.4g}] but the input bounds are [{lo:g}, {hi:g}]: "
                "scale the stimuli into the bounds, or set bounds to the model's input range (or None)."
            )


def first_pass(run, stimuli: torch.Tensor) -> torch.Tensor:
    """``run(stimuli)``, the first forward pass, with torch's shape and dtype errors said in the stimuli's terms."""
    try:
        return run(stimuli)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"the model cannot take stimuli of shape {tuple(stimuli.shape)}: {first}. Give them batch first, as the "
            "model takes them (images (N, C, H, W) with the model's channels; x[None] adds a batch dimension)."
        ) from e
