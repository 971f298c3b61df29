"""Initial noise for metamer synthesis: white noise centred in an input range, and pink noise at a given RMS.

All functions draw from an explicit :class:`torch.Generator` on the CPU and then move the result, so that the same
seed gives the same noise on every device.
"""

from __future__ import annotations

import torch

__all__ = ["gaussian_noise", "pink_noise", "rms", "white_noise"]


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def white_noise(
    shape: tuple[int, ...],
    bounds: tuple[float, float] = (0.0, 1.0),
    spread: float = 0.1,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Uniform white noise with its mean at the centre of ``bounds``.

    Feather et al. (2019) initialise image metamers "with white noise with mean at the center value of the range";
    their code draws a uniform width of 0.1 of the range.

    Parameters
    ----------
    shape : tuple of int
        Output shape, batch included.
    bounds : (float, float)
        The valid input range, e.g. ``(0, 1)`` for images.
    spread : float
        Width of the uniform distribution as a fraction of the range.
    seed : int or torch.Generator
        Seed (or generator) for the draw.

    Examples
    --------
    >>> x = white_noise((2, 3, 8, 8), bounds=(0, 1), seed=0)
    >>> bool(x.min() >= 0.45 and x.max() <= 0.55)
    True
    """
    lo, hi = bounds
    width = (hi - lo) * spread
    u = torch.rand(shape, generator=_generator(seed), dtype=torch.float64)
    x = (lo + hi) / 2 + (u - 0.5) * width
    return x.to(dtype=dtype, device=device)


def gaussian_noise(
    shape: tuple[int, ...],
    mean: float = 0.5,
    std: float = 0.05,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Gaussian noise, mean 0.5 and standard deviation 0.05 by default (the 2023 follow-up's image initialisation).

    Examples
    --------
    >>> x = gaussian_noise((10000,), seed=1)
    >>> round(float(x.mean()), 2), round(float(x.std()), 2)
    (0.5, 0.05)
    """
    x = torch.randn(shape, generator=_generator(seed), dtype=torch.float64) * std + mean
    return x.to(dtype=dtype, device=device)


def rms(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Root mean square along ``dim``.

    Examples
    --------
    >>> float(rms(torch.tensor([3.0, -3.0])))
    3.0
    """
    return x.pow(2).mean(dim=dim).sqrt()


def pink_noise(
    shape: tuple[int, ...],
    rms_level: float = 0.01,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Pink (1/f power) noise along the last dimension, zero mean, each row scaled to ``rms_level``.

    The audio initialisation of Feather et al. (2019): a complex Gaussian spectrum whose amplitude falls as
    ``1/sqrt(f)``, inverse-FFT'd, mean removed, scaled to RMS 0.01.

    Examples
    --------
    >>> x = pink_noise((4, 40000), rms_level=0.01, seed=0)
    >>> [round(float(v), 4) for v in rms(x)]
    [0.01, 0.01, 0.01, 0.01]
    """
    *lead, n = shape
    g = _generator(seed)
    nf = n // 2 + 1
    spec = torch.complex(
        torch.randn((*lead, nf), generator=g, dtype=torch.float64),
        torch.randn((*lead, nf), generator=g, dtype=torch.float64),
    )
    spec = spec / torch.sqrt(torch.arange(nf, dtype=torch.float64) + 1.0)
    x = torch.fft.irfft(spec, n=n, dim=-1)
    x = x - x.mean(dim=-1, keepdim=True)
    x = x * (rms_level / rms(x).clamp_min(1e-30).unsqueeze(-1))
    return x.to(dtype=dtype, device=device)
