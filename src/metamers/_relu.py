"""ReLU-family calls: recognising them, and the linear-gradient ReLU of Feather et al. (2019), section 3.1.

A ReLU can hide in a model as an ``nn.ReLU`` module (in place or not), an ``nn.ReLU6`` module, a call to
``F.relu``/``torch.relu``/``Tensor.relu_`` inside some module's ``forward``, or ``F.hardtanh(x, 0, 6)``.  All of them
reach ``__torch_function__``, so a :class:`torch.overrides.TorchFunctionMode` sees every one of them on an unmodified
model.  This module holds the two modes that :mod:`metamers.taps` uses: one that records the calls, one that swaps
one chosen call for its linear-gradient twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__: list[str] = []

_OUT_OF_PLACE = {F.relu, torch.relu, torch.Tensor.relu, F.relu6, F.hardtanh}
_IN_PLACE = {torch.relu_, torch.Tensor.relu_, F.relu_, F.hardtanh_}


def is_relu_call(func: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether ``func(*args, **kwargs)`` is a rectifier whose lower bound is zero."""
    if func in (F.hardtanh, F.hardtanh_):
        low = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        return float(low) == 0.0
    return func in _OUT_OF_PLACE or func in _IN_PLACE


def _writes_in_place(func: Callable, args: tuple, kwargs: dict) -> bool:
    if func in _IN_PLACE:
        return True
    if func in (F.relu, F.relu6):
        return bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
    if func is F.hardtanh:
        return bool(kwargs.get("inplace", args[3] if len(args) > 3 else False))
    return False


class _LinearGrad(torch.autograd.Function):
    """Forward: the rectifier's value, bit for bit.  Backward: the identity."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _LinearGradInPlace(torch.autograd.Function):
    """The in-place twin of :class:`_LinearGrad`, for ``relu_`` and ``ReLU(inplace=True)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        ctx.mark_dirty(x)
        fn(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class ReluRecorder(TorchFunctionMode):
    """Records every ReLU-family call: ``calls`` holds ``(input, output)`` tensors in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if is_relu_call(func, args, kwargs) and isinstance(out, torch.Tensor):
            self.calls.append((args[0], out))
        return out


class LinearGradSwap(TorchFunctionMode):
    """Replaces the ``index``-th ReLU-family call made while active by its linear-gradient twin."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.seen = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not is_relu_call(func, args, kwargs):
            return func(*args, **kwargs)
        n, self.seen = self.seen, self.seen + 1
        if n != self.index or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        x, rest = args[0], args[1:]
        fn = lambda t: func(t, *rest, **kwargs)  # noqa: E731
        if _writes_in_place(func, args, kwargs):
            return _LinearGradInPlace.apply(x, fn)
        return _LinearGrad.apply(x, fn)
