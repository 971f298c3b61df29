"""The device a user asks for, checked before any work: a clear error instead of a CUDA traceback."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(asked: str | torch.device | None) -> torch.device:
    """``asked`` as a device that exists here; by default a GPU when present, else the CPU.

    Raises
    ------
    ValueError
        For a name that is no device (``tpu``), or a device this machine lacks (``cuda`` without a GPU, ``cuda:7``
        with two GPUs, ``mps`` off Apple silicon); the message says what is there.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: unknown device 'gpu'; give cpu, cuda, cuda:N (a GPU's index) or mps.
    """
    if asked is None or asked == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(asked)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {str(asked)!r}; give cpu, cuda, cuda:N (a GPU's index) or mps.") from e
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"device {str(asked)!r}: this machine has no CUDA GPU that torch can use; use cpu.")
        if device.index is not None and device.index >= n:
            raise ValueError(f"device {str(asked)!r}: this machine has {n} GPU(s), cuda:0 to cuda:{n - 1}.")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(asked)!r}: MPS (Apple silicon) is not available here; use cpu.")
    elif device.type != "cpu":
        raise ValueError(f"unknown device {str(asked)!r}; give cpu, cuda, cuda:N (a GPU's index) or mps.")
    return device
