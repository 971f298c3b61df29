"""Synthetic background sounds for the word task's second (background-class) head.

Feather et al. (2019) mix each speech clip with a background drawn from a set of labelled environmental sounds.
Offline we cannot download those, so each class here is a parametric family synthesised in torch: every draw takes
its parameters (and its noise) from an explicit :class:`torch.Generator`, so the same generator state gives the same
sound, and two draws of a class differ. The classes are chosen to be audibly distinct in spectrum and in time:

===============================  ==============================================================================
``white noise``                  flat spectrum
``pink noise``                   power falling as 1/f (-3 dB per octave) from 20 Hz
``brown noise``                  power falling as 1/f^2 (-6 dB per octave) from 20 Hz: a rumble
``hum``                          mains hum: harmonics of 50 or 60 Hz with a random spectral envelope
``tones``                        a melody of harmonic complex tones on a musical scale (music-like)
``clicks``                       rain-like random impulses: a Poisson train of short decaying noise bursts
``amplitude-modulated noise``    a one-octave noise band, random centre, modulated at 2-16 Hz
``siren``                        an FM sweep (wail or yelp) of a harmonic tone
===============================  ==============================================================================

Every background is returned at unit RMS; :func:`metamers.audio.signal.mix_at_snr` sets its level.

Recorded backgrounds (rain, birdsong, traffic, ...) are in :mod:`metamers.audio.ambience`;
:data:`ALL_BACKGROUND_CLASSES` is both, the synthetic classes first.
"""

from __future__ import annotations

import math

import torch

from metamers.audio.ambience import REAL_BACKGROUND_CLASSES

__all__ = ["ALL_BACKGROUND_CLASSES", "BACKGROUND_CLASSES", "background_index", "make_background"]

BACKGROUND_CLASSES: tuple[str, ...] = (
    "white noise",
    "pink noise",
    "brown noise",
    "hum",
    "tones",
    "clicks",
    "amplitude-modulated noise",
    "siren",
)

ALL_BACKGROUND_CLASSES: tuple[str, ...] = BACKGROUND_CLASSES + REAL_BACKGROUND_CLASSES
"""The synthetic classes followed by the recorded ones of :mod:`metamers.audio.ambience` (23), the label space of a
corpus that uses recorded backgrounds."""


def background_index(name_or_index: str | int) -> int:
    """Index of a background class in :data:`BACKGROUND_CLASSES`, from its name or index.

    Examples
    --------
    >>> background_index("hum"), background_index(4)
    (3, 4)
    """
    if isinstance(name_or_index, str):
        if name_or_index not in BACKGROUND_CLASSES:
            raise ValueError(f"unknown background class {name_or_index!r}; choose from {BACKGROUND_CLASSES}")
        return BACKGROUND_CLASSES.index(name_or_index)
    index = int(name_or_index)
    if not 0 <= index < len(BACKGROUND_CLASSES):
        raise ValueError(f"background index {index} out of range 0..{len(BACKGROUND_CLASSES) - 1}")
    return index


def make_background(
    name_or_index: str | int, n_samples: int, sr: int = 20000, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random draw of a background class, at unit RMS.

    Parameters
    ----------
    name_or_index : str or int
        A name in :data:`BACKGROUND_CLASSES` or its index.
    n_samples : int
        Length of the waveform.
    sr : int
        Sample rate in Hz.
    generator : torch.Generator, optional
        Source of randomness (a fresh default-seeded CPU generator when omitted, so pass one).

    Returns
    -------
    torch.Tensor
        Float32 waveform ``[n_samples]`` with RMS 1.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = make_background("siren", 20000, 20000, g)
    >>> x.shape, round(float(x.pow(2).mean().sqrt()), 4)
    (torch.Size([20000]), 1.0)
    """
    index = background_index(name_or_index)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if n_samples <= 0:
        return torch.zeros(max(n_samples, 0))
    x = _MAKERS[index](n_samples, sr, generator)
    level = x.pow(2).mean().sqrt()
    return (x / level.clamp_min(1e-12)).float()


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return math.exp(_uniform(g, math.log(lo), math.log(hi)))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Integer in [lo, hi] inclusive."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _shaped_noise(n: int, sr: int, g: torch.Generator, gain) -> torch.Tensor:
    """White Gaussian noise filtered in the frequency domain by ``gain(freqs_hz)`` (an amplitude response)."""
    spectrum = torch.fft.rfft(torch.randn(n, generator=g, dtype=torch.float64))
    freqs = torch.fft.rfftfreq(n, d=1.0 / sr, dtype=torch.float64)
    return torch.fft.irfft(spectrum * gain(freqs), n=n)


def _white(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, generator=g, dtype=torch.float64)


def _power_law(exponent: float):
    def make(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
        low = _uniform(g, 15.0, 30.0)
        return _shaped_noise(n, sr, g, lambda f: torch.where(f > 0, f.clamp_min(low), torch.inf).pow(-exponent / 2))

    return make


def _time(n: int, sr: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64) / sr


def _harmonic_stack(phase: torch.Tensor, amplitudes: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Sum over k of ``amplitudes[k-1] * sin(k * phase + random phase)``."""
    k = torch.arange(1, len(amplitudes) + 1, dtype=torch.float64)
    offsets = 2 * math.pi * torch.rand(len(amplitudes), generator=g, dtype=torch.float64)
    return (amplitudes[:, None] * torch.sin(k[:, None] * phase[None, :] + offsets[:, None])).sum(0)


def _hum(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    mains = 50.0 if _randint(g, 0, 1) == 0 else 60.0
    f0 = mains * (1 + _uniform(g, -0.004, 0.004))
    n_harmonics = max(1, min(_randint(g, 4, 24), int(0.45 * sr / f0)))
    k = torch.arange(1, n_harmonics + 1, dtype=torch.float64)
    amplitudes = k.pow(-_uniform(g, 0.3, 1.5)) * (0.3 + 0.7 * torch.rand(n_harmonics, generator=g, dtype=torch.float64))
    if _randint(g, 0, 1):  # transformer buzz: odd harmonics dominate
        amplitudes = torch.where(k % 2 == 1, amplitudes, amplitudes * _uniform(g, 0.05, 0.4))
    t = _time(n, sr)
    wobble = 1 + _uniform(g, 0.0, 0.15) * torch.sin(2 * math.pi * _uniform(g, 0.2, 2.0) * t)
    hum = _harmonic_stack(2 * math.pi * f0 * t, amplitudes, g) * wobble
    return hum + 0.01 * hum.pow(2).mean().sqrt() * torch.randn(n, generator=g, dtype=torch.float64)


def _tones(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    scales = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9))
    scale = scales[_randint(g, 0, len(scales) - 1)]
    root = _randint(g, 48, 64)
    steps = [root + 12 * octave + s for octave in range(3) for s in scale]
    position = _randint(g, 0, len(steps) // 2)
    beat = _uniform(g, 0.12, 0.35)
    f0 = torch.empty(n, dtype=torch.float64)
    since_onset = torch.empty(n, dtype=torch.float64)
    until_end = torch.empty(n, dtype=torch.float64)
    start = 0
    while start < n:
        length = max(1, int(sr * beat * (1, 1, 2, 0.5)[_randint(g, 0, 3)]))
        position = min(max(position + _randint(g, -3, 3), 0), len(steps) - 1)
        end = min(n, start + length)
        f0[start:end] = 440.0 * 2 ** ((steps[position] - 69) / 12)
        since_onset[start:end] = torch.arange(end - start, dtype=torch.float64) / sr
        until_end[start:end] = torch.arange(end - start, 0, -1, dtype=torch.float64) / sr
        start = end
    attack = _uniform(g, 0.003, 0.02)
    decay = _uniform(g, 1.5, 8.0)
    release = 0.01  # seconds: each note fades out before the next starts, so notes join without clicks
    envelope = (since_onset / attack).clamp(max=1.0) * (until_end / release).clamp(max=1.0)
    envelope = envelope * torch.exp(-decay * since_onset)
    n_harmonics = _randint(g, 3, 10)
    amplitudes = torch.arange(1, n_harmonics + 1, dtype=torch.float64).pow(-_uniform(g, 0.7, 2.0))
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sr
    # Keep every harmonic below Nyquist.
    amplitudes = amplitudes * (torch.arange(1, n_harmonics + 1) * float(f0.max()) < 0.45 * sr)
    return envelope * _harmonic_stack(phase, amplitudes, g)


def _clicks(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    rate = _log_uniform(g, 40.0, 400.0)
    count = max(1, int(torch.poisson(torch.tensor(rate * n / sr, dtype=torch.float64), generator=g)))
    positions = torch.randint(0, n, (count,), generator=g)
    heights = torch.randn(count, generator=g, dtype=torch.float64) * torch.rand(count, generator=g, dtype=torch.float64)
    impulses = torch.zeros(n, dtype=torch.float64).index_add_(0, positions, heights)
    tau = _uniform(g, 0.0003, 0.002)
    length = max(2, min(n, int(6 * tau * sr)))
    t = torch.arange(length, dtype=torch.float64) / sr
    kernel = torch.randn(length, generator=g, dtype=torch.float64) * torch.exp(-t / tau)
    kernel = kernel - kernel.mean()  # no DC: a click, not a thump
    size = n + length
    out = torch.fft.irfft(torch.fft.rfft(impulses, n=size) * torch.fft.rfft(kernel, n=size), n=size)[:n]
    return out


def _am_noise(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    centre = _log_uniform(g, 300.0, min(4000.0, 0.3 * sr))
    width = _uniform(g, 0.7, 1.3)  # octaves

    def band(f: torch.Tensor) -> torch.Tensor:
        distance = torch.log2(f.clamp_min(1.0) / centre) / (width / 2)
        return torch.exp(-0.5 * (2 * distance) ** 2)

    carrier = _shaped_noise(n, sr, g, band)
    t = _time(n, sr)
    depth = _uniform(g, 0.8, 1.0)
    modulator = 1 + depth * torch.sin(2 * math.pi * _log_uniform(g, 2.0, 16.0) * t + _uniform(g, 0, 2 * math.pi))
    return carrier * modulator


def _siren(n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    t = _time(n, sr)
    centre = _log_uniform(g, 500.0, 1300.0)
    excursion = _uniform(g, 0.3, 1.0)  # octaves, peak to peak
    sweep_rate = _log_uniform(g, 0.2, 4.0)
    cycle = sweep_rate * t + _uniform(g, 0.0, 1.0)
    if _randint(g, 0, 1):  # wail: smooth sinusoidal sweep
        shape = torch.sin(2 * math.pi * cycle)
    else:  # yelp: a rising ramp that snaps back
        shape = 2 * (cycle - torch.floor(cycle)) - 1
    freq = centre * 2 ** (excursion / 2 * shape)
    phase = 2 * math.pi * torch.cumsum(freq, 0) / sr
    n_harmonics = _randint(g, 1, 4)
    amplitudes = torch.arange(1, n_harmonics + 1, dtype=torch.float64).pow(-_uniform(g, 1.0, 2.5))
    amplitudes = amplitudes * (torch.arange(1, n_harmonics + 1) * float(freq.max()) < 0.45 * sr)
    return _harmonic_stack(phase, amplitudes, g)


_MAKERS = (_white, _power_law(1.0), _power_law(2.0), _hum, _tones, _clicks, _am_noise, _siren)
