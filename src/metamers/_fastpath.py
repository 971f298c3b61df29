"""Faster passes for synthesis that leave the computed function unchanged.

- **Batch norm folded into the convolution before it.**  A network in eval mode with frozen weights computes
  ``bn(conv(x))``, two affine maps in a row: one convolution with rescaled weights and a shifted bias gives the same
  values, and the forward and backward passes skip a memory-bound pass over the activations.  A pair is folded only when
  a probe pass shows that the batch norm reads the convolution's output directly and nothing else reads it, and the
  folded network is then checked against the original on the probe.
- **Channels-last memory** for 2-d convolutional networks: oneDNN (CPU) and cuDNN (GPU) run depthwise and pointwise
  convolutions faster on NHWC tensors.

Both are context managers that restore the model exactly (the original parameter tensors are put back, not copies).
Measured in ``benchmarks/synthesis_options.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# relative difference allowed between the folded and the original network's output on the probe (float32 rounding)
_FOLD_TOLERANCE = 1e-4


def _passthrough(x: torch.Tensor) -> torch.Tensor:
    return x


def _foldable(
    model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], probe: torch.Tensor, keep: set[nn.Module]
) -> list[tuple[nn.Module, nn.Module]]:
    """(convolution, batch norm) pairs where the norm reads the convolution's output and nothing else does."""
    convs = [m for m in model.modules() if isinstance(m, _CONVS) and m not in keep]
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and not m.training and m.running_var is not None]
    if not convs or not norms:
        return []
    calls: Counter[nn.Module] = Counter()
    produced: dict[object, nn.Module] = {}  # autograd node of a convolution's output -> the convolution
    read: dict[nn.Module, object] = {}  # batch norm -> autograd node of its input

    def after_conv(m: nn.Module, args: tuple, out: object) -> None:
        calls[m] += 1
        node = getattr(out, "grad_fn", None)
        if node is not None and "Convolution" in type(node).__name__:
            produced[node] = m

    def before_norm(m: nn.Module, args: tuple) -> None:
        calls[m] += 1
        read[m] = getattr(args[0], "grad_fn", None) if args else None

    handles = [c.register_forward_hook(after_conv) for c in convs]
    handles += [n.register_forward_pre_hook(before_norm) for n in norms]
    try:
        with torch.enable_grad():
            out = run(probe.detach().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    if out.grad_fn is None:
        return []
    readers: Counter[object] = Counter()  # how many autograd nodes consume each node's output
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                readers[nxt] += 1
                stack.append(nxt)
    pairs = []
    for norm, node in read.items():
        conv = produced.get(node)
        if conv is None or calls[conv] != 1 or calls[norm] != 1 or readers[node] != 1:
            continue
        if conv.out_channels != norm.num_features:
            continue
        pairs.append((conv, norm))
    return pairs


@contextmanager
def folded_batchnorm(
    model: nn.Module,
    run: Callable[[torch.Tensor], torch.Tensor],
    probe: torch.Tensor,
    keep: set[nn.Module] = frozenset(),  # type: ignore[assignment]
) -> Iterator[int]:
    """Fold eval-mode batch norms into the convolutions before them for the duration; yields how many were folded.

    ``run(x)`` is the pass to speed up (the taps of the generation layer); ``probe`` one input for it; ``keep`` holds
    modules whose own output is read (a convolution tapped as a layer) and so must not change.  If the folded network's
    output on the probe differs from the original's, nothing is folded.
    """
    with torch.no_grad():  # first, so that a pass's own set-up (the taps resolve their layers once) is done
        reference = run(probe).detach().clone()
    pairs = _foldable(model, run, probe, set(keep))
    if not pairs:
        yield 0
        return
    saved = []
    try:
        for conv, norm in pairs:
            saved.append(
                (conv, norm, conv._parameters["weight"], conv._parameters.get("bias"), norm.__dict__.get("forward"))
            )
            with torch.no_grad():
                scale = torch.rsqrt(norm.running_var + norm.eps)
                if norm.weight is not None:
                    scale = scale * norm.weight
                bias = -norm.running_mean * scale
                if norm.bias is not None:
                    bias = bias + norm.bias
                if conv.bias is not None:
                    bias = bias + conv.bias * scale
                w = conv.weight
                shape = (-1,) + (1,) * (w.dim() - 1)
                folded_w = (w * scale.view(shape)).to(w.dtype)
                if w.dim() == 4 and w.is_contiguous(memory_format=torch.channels_last):
                    folded_w = folded_w.contiguous(memory_format=torch.channels_last)
            conv._parameters["weight"] = nn.Parameter(folded_w, requires_grad=False)
            conv._parameters["bias"] = nn.Parameter(bias.to(w.dtype), requires_grad=False)
            norm.forward = _passthrough
        with torch.no_grad():
            now = run(probe)
        err = float((now - reference).norm() / reference.norm().clamp_min(1e-30))
        if not err <= _FOLD_TOLERANCE:
            _unfold(saved)
            saved = []
            yield 0
            return
        yield len(pairs)
    finally:
        _unfold(saved)


def _unfold(saved: list) -> None:
    for conv, norm, weight, bias, forward in saved:
        conv._parameters["weight"] = weight
        conv._parameters["bias"] = bias
        if forward is None:
            norm.__dict__.pop("forward", None)
        else:
            norm.forward = forward
    saved.clear()


def has_conv2d(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-d convolution (where channels-last memory can pay)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@contextmanager
def channels_last(model: nn.Module) -> Iterator[None]:
    """Hold the model's 4-d parameters and buffers in channels-last memory for the duration, then put back the
    original tensors."""
    saved = []
    for mod in model.modules():
        for store in (mod._parameters, mod._buffers):
            for t in store.values():
                if t is not None and t.dim() == 4 and not t.is_contiguous(memory_format=torch.channels_last):
                    saved.append((t, t.data))
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for t, data in saved:
            t.data = data
