"""Small waveform helpers: band-limited resampling, RMS levels, mixing at an SNR, and WAV input/output.

Everything works on the last dimension of a torch tensor, so a single waveform ``[n]`` and a batch ``[b, n]`` are
handled alike.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import soundfile
import torch

from metamers.noise import rms  # one definition of the level, re-exported here

__all__ = ["mix_at_snr", "read_wav", "resample", "rms", "set_rms", "write_wav"]

_EPS = 1e-12


def resample(x: torch.Tensor, sr_in: int, sr_out: int) -> torch.Tensor:
    """Band-limited resampling of the last dimension with the FFT.

    The signal is treated as one period of a periodic signal: its spectrum is truncated (downsampling) or padded
    with zeros (upsampling), and the unpaired Nyquist bin of an even length is split or folded so that a real
    signal stays real and a sinusoid keeps its amplitude (the same result as ``scipy.signal.resample``).
    Because the signal is treated as periodic, a waveform that does not start and end near zero rings a little at
    its edges; speech tokens with their silent margins still attached are resampled before trimming for that reason.
    The new length is ``n * sr_out / sr_in`` rounded to the nearest integer, halves up.

    Parameters
    ----------
    x : torch.Tensor
        Waveform(s), time on the last dimension; any length (including 0) and any floating dtype.
    sr_in, sr_out : int
        Input and output sample rates in Hz.

    Returns
    -------
    torch.Tensor
        The resampled waveform(s), same dtype and leading dimensions.

    Examples
    --------
    >>> t = torch.arange(16000) / 16000
    >>> y = resample(torch.sin(2 * torch.pi * 440 * t), 16000, 20000)
    >>> y.shape
    torch.Size([20000])
    >>> int(torch.fft.rfft(y).abs().argmax())  # 440 Hz over one second is bin 440
    440
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} and {sr_out}")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    n = x.shape[-1]
    m = (n * sr_out + sr_in // 2) // sr_in
    if sr_in == sr_out or n == m:
        return x.clone()
    if n == 0 or m == 0:
        return x.new_zeros((*x.shape[:-1], m))
    spectrum = torch.fft.rfft(x, dim=-1)
    out = spectrum.new_zeros((*x.shape[:-1], m // 2 + 1))
    keep = min(n, m)
    bins = keep // 2 + 1
    out[..., :bins] = spectrum[..., :bins]
    if keep % 2 == 0:
        if m < n:
            # The new Nyquist bin gathers the bins at +keep/2 and -keep/2 of the old spectrum.
            out[..., keep // 2] = 2 * out[..., keep // 2].real
        elif m > n:
            # The old Nyquist bin is split between +n/2 and -n/2 of the new spectrum.
            out[..., keep // 2] = out[..., keep // 2] / 2
    return torch.fft.irfft(out, n=m, dim=-1) * (m / n)


def set_rms(x: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """Scale ``x`` so that its RMS over the last dimension is ``value`` (an all-zero signal stays zero).

    Examples
    --------
    >>> y = set_rms(torch.tensor([1.0, -2.0, 3.0]), 0.5)
    >>> round(float(rms(y)), 6)
    0.5
    """
    level = rms(x).unsqueeze(-1)
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if value.ndim > 0:
        value = value.unsqueeze(-1)
    return torch.where(level > _EPS, x * (value / level.clamp_min(_EPS)), torch.zeros_like(x))


def mix_at_snr(speech: torch.Tensor, noise: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
    """Add ``noise`` to ``speech`` scaled so that ``20 log10(rms(speech) / rms(scaled noise)) = snr_db``.

    The levels are RMS over the whole last dimension (silences included), and the speech keeps its level: only the
    noise is scaled. Normalise the sum afterwards if the presentation level matters.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> s, n = torch.randn(8000, generator=g), torch.randn(8000, generator=g)
    >>> y = mix_at_snr(s, n, 6.0)
    >>> round(float(20 * torch.log10(rms(s) / rms(y - s))), 3)
    6.0
    """
    if noise.shape[-1] != speech.shape[-1]:
        raise ValueError(f"speech and noise lengths differ: {speech.shape[-1]} vs {noise.shape[-1]}")
    snr = torch.as_tensor(snr_db, dtype=speech.dtype, device=speech.device)
    target = rms(speech) / torch.pow(10.0, snr / 20)
    return speech + set_rms(noise, target)


def read_wav(path: str | Path, sr: int) -> torch.Tensor:
    """Read a sound file as a mono float32 waveform in [-1, 1] at ``sr`` Hz.

    Channels are averaged; the sample rate is converted with :func:`resample`.

    Parameters
    ----------
    path : str or Path
        Any format libsndfile reads (WAV, FLAC, ...).
    sr : int
        Sample rate of the returned waveform.

    Returns
    -------
    torch.Tensor
        Shape ``[n_samples]``, float32.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> write_wav(path, torch.zeros(800), 8000)
    >>> read_wav(path, 16000).shape
    torch.Size([1600])
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no sound file {path}.")
    try:
        data, sr_file = soundfile.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as e:  # soundfile.LibsndfileError; libsndfile says "System error." for most failures
        raise ValueError(f"cannot read the sound file {path}: {e}; give a WAV, FLAC or other libsndfile file.") from e
    x = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0].copy())
    if sr_file != sr:
        x = resample(x.double(), int(sr_file), int(sr)).float()
    return x


def write_wav(path: str | Path, x: torch.Tensor, sr: int) -> None:
    """Write a mono waveform as a 16-bit PCM WAV file.

    Clipping-safe: if the peak magnitude exceeds 1, the whole waveform is scaled down so that its peak is 1 (a
    warning says by how much) instead of clipping it.

    Parameters
    ----------
    path : str or Path
        Output file.
    x : torch.Tensor
        Waveform ``[n_samples]`` (or ``[1, n_samples]``), nominally in [-1, 1].
    sr : int
        Sample rate in Hz.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> write_wav(path, 0.5 * torch.sin(torch.arange(2000) / 3.0), 20000)
    >>> round(float(read_wav(path, 20000).abs().max()), 3)
    0.5
    """
    data = x.detach().to("cpu", torch.float64).reshape(-1).numpy()
    peak = float(np.abs(data).max()) if data.size else 0.0
    if not math.isfinite(peak):
        raise ValueError("waveform contains NaN or infinite values")
    if peak > 1.0:
        warnings.warn(f"write_wav: peak {peak:.3f} > 1, scaled down by {20 * math.log10(peak):.1f} dB", stacklevel=2)
        data = data / peak
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, int(sr), subtype="PCM_16")
