"""A differentiable cochleagram: the model of the ear in front of the audio networks (paper section 3.1).

Waveform -> FFT -> a bank of half-cosine filters spaced on the ERB scale (Glasberg & Moore 1990), overcomplete ->
subband envelopes by the Hilbert transform -> anti-aliasing low-pass and downsampling to 200 Hz -> rectification ->
a compressive power nonlinearity (0.3) whose gradient is clipped, so that optimisation through it is stable.

The defaults give the network input of Table S2: 211 channels by 400 time steps for a 2-second clip at 20 kHz.
The count follows the filterbank construction of the authors' `pycochleagram`: ``n = 50`` filters that tile the
band 20 Hz - 8 kHz once, sampled 4x overcomplete (``4 * (50 + 1) - 1 = 203`` band-pass filters), plus the 4 low-pass
and 4 high-pass filters that make the squared responses sum to one from DC to Nyquist: ``203 + 8 = 211``. The
compression and its gradient clipping follow the authors' `tfcochleagram` (``relu(x) ** 0.3``, gradient clipped to
at most 1); the downsampling filter is a Kaiser-windowed sinc of 1001 taps, as their default window size. See
``docs/audio.md`` for the full list of what we match and where we differ.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Cochleagram",
    "CochleagramSettings",
    "clipped_power",
    "cochleagram",
    "erb_cosine_filters",
    "erb_to_freq",
    "freq_to_erb",
    "lowpass_downsample",
    "lowpass_kernel",
    "subband_envelopes",
]


def freq_to_erb(freq_hz: np.ndarray | float) -> np.ndarray | float:
    """Frequency in Hz to the ERB-number scale (Glasberg & Moore 1990).

    Examples
    --------
    >>> round(float(freq_to_erb(1000.0)), 3)
    15.572
    """
    return 9.265 * np.log1p(np.asarray(freq_hz, dtype=np.float64) / (24.7 * 9.265))


def erb_to_freq(erb: np.ndarray | float) -> np.ndarray | float:
    """Inverse of :func:`freq_to_erb`.

    Examples
    --------
    >>> round(float(erb_to_freq(freq_to_erb(440.0))), 6)
    440.0
    """
    return 24.7 * 9.265 * np.expm1(np.asarray(erb, dtype=np.float64) / 9.265)


@dataclass(frozen=True)
class CochleagramSettings:
    """Parameters of the cochleagram; the defaults are the paper's (Table S2 input, 211 x 400 for 2 s).

    Attributes
    ----------
    sr : int
        Audio sample rate, Hz.
    n_samples : int
        Waveform length the filterbank is built for (2 s at 20 kHz).
    n : int
        Number of filters that tile ``low_hz``-``high_hz`` once (before overcompleteness).
    sample_factor : int
        Overcompleteness: adjacent filters overlap by ``1 - 1 / (2 * sample_factor)``.
    low_hz, high_hz : float
        Band spanned by the band-pass filters' centres' neighbours (filters have no power outside it except the edge
        low-pass and high-pass filters).
    edge_filters : bool
        Keep the ``sample_factor`` low-pass and high-pass filters at the edges (211 channels with the defaults).
    env_sr : int
        Sample rate of the envelopes after downsampling, Hz.
    window_size : int
        Taps of the Kaiser-windowed sinc anti-aliasing filter (odd).
    kaiser_beta : float
        Shape of the Kaiser window.
    power : float
        Compressive exponent applied to the rectified envelopes.
    grad_clip : float
        Upper bound on the derivative of the compression (it is infinite at zero).
    """

    sr: int = 20000
    n_samples: int = 40000
    n: int = 50
    sample_factor: int = 4
    low_hz: float = 20.0
    high_hz: float = 8000.0
    edge_filters: bool = True
    env_sr: int = 200
    window_size: int = 1001
    kaiser_beta: float = 10.06
    power: float = 0.3
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.high_hz > self.sr / 2:
            raise ValueError(f"high_hz={self.high_hz:g} is above the Nyquist frequency {self.sr / 2:g} Hz.")
        if not 0 < self.low_hz < self.high_hz:
            raise ValueError(f"need 0 < low_hz < high_hz, got {self.low_hz:g} and {self.high_hz:g}.")
        if self.sr % self.env_sr:
            raise ValueError(f"env_sr={self.env_sr} must divide sr={self.sr}.")
        if self.window_size % 2 == 0:
            raise ValueError(f"window_size must be odd, got {self.window_size}.")
        if self.sample_factor < 1 or (self.sample_factor > 1 and self.sample_factor % 2):
            raise ValueError(f"sample_factor must be 1 or even, got {self.sample_factor}.")

    @property
    def n_channels(self) -> int:
        """Number of frequency channels (211 with the defaults)."""
        n_bp = self.sample_factor * (self.n + 1) - 1
        return n_bp + (2 * self.sample_factor if self.edge_filters else 0)

    @property
    def n_frames(self) -> int:
        """Number of time steps (400 with the defaults)."""
        return math.ceil(self.n_samples / (self.sr // self.env_sr))

    @property
    def shape(self) -> tuple[int, int]:
        """``(channels, frames)``, e.g. ``(211, 400)``."""
        return (self.n_channels, self.n_frames)

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def erb_cosine_filters(
    n_samples: int,
    sr: int,
    n: int = 50,
    low_hz: float = 20.0,
    high_hz: float = 8000.0,
    sample_factor: int = 4,
    edge_filters: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Half-cosine filters on the ERB scale, as frequency responses on the bins of ``rfft(x, n_samples)``.

    Band-pass filter centres are equally spaced in ERB number between ``low_hz`` and ``high_hz`` (endpoints
    excluded); each spans ``2 * sample_factor`` spacings, so that the squared responses of all filters sum to one at
    every frequency from DC to Nyquist when the edge filters are kept.

    Parameters
    ----------
    n_samples, sr : int
        Signal length and sample rate the responses are sampled for.
    n, low_hz, high_hz, sample_factor, edge_filters
        As in :class:`CochleagramSettings`.

    Returns
    -------
    filters : np.ndarray
        ``[channels, n_samples // 2 + 1]``, low to high frequency.
    centres : np.ndarray
        Centre frequency of each channel in Hz (edge filters: where their response peaks, clipped at 0).

    Examples
    --------
    >>> filters, centres = erb_cosine_filters(40000, 20000)
    >>> filters.shape, round(float((filters**2).sum(0).min()), 6), round(float((filters**2).sum(0).max()), 6)
    ((211, 20001), 1.0, 1.0)
    """
    freqs = np.fft.rfftfreq(n_samples, 1.0 / sr)
    erb = freq_to_erb(freqs)
    n_bp = sample_factor * (n + 1) - 1
    grid, spacing = np.linspace(freq_to_erb(low_hz), freq_to_erb(high_hz), n_bp + 2, retstep=True)
    centres_erb = grid[1:-1]
    half = sample_factor * spacing
    bp = np.zeros((n_bp, freqs.size))
    for i, c in enumerate(centres_erb):
        inside = (erb > c - half) & (erb < c + half)
        bp[i, inside] = np.cos((erb[inside] - c) / (2 * half) * np.pi)
    rows = [bp]
    centres = [centres_erb]
    if edge_filters:
        low = np.zeros((sample_factor, freqs.size))
        high = np.zeros((sample_factor, freqs.size))
        for i in range(sample_factor):
            below = freqs < erb_to_freq(centres_erb[i])
            low[i, below] = np.sqrt(np.clip(1 - bp[i, below] ** 2, 0, None))
            above = freqs > erb_to_freq(centres_erb[-1 - i])
            high[sample_factor - 1 - i, above] = np.sqrt(np.clip(1 - bp[-1 - i, above] ** 2, 0, None))
        rows = [low, bp, high]
        centres = [centres_erb[:sample_factor] - half, centres_erb, centres_erb[-sample_factor:] + half]
    filters = np.concatenate(rows) / np.sqrt(sample_factor)
    hz = np.clip(erb_to_freq(np.concatenate(centres)), 0.0, sr / 2)
    return filters.astype(np.float32), hz


def lowpass_kernel(settings: CochleagramSettings, rate: float, taps: int | None = None) -> np.ndarray:
    """The anti-aliasing filter that takes envelopes at ``rate`` Hz down to the cochleagram's ``env_sr``: a
    Kaiser-windowed sinc of ``taps`` taps (the settings' window by default), unit gain at DC.

    Examples
    --------
    >>> h = lowpass_kernel(CochleagramSettings(), 20000.0)
    >>> h.size, round(float(h.sum()), 6)
    (1001, 1.0)
    """
    """Kaiser-windowed sinc for signals sampled at ``rate``, cut-off at half the envelope rate, unit DC gain."""
    taps = taps or settings.window_size
    half = taps // 2
    t = np.arange(-half, half + 1)
    cutoff = settings.env_sr / 2 / rate  # cycles per sample
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(taps, settings.kaiser_beta)
    return (h / h.sum()).astype(np.float32)


def subband_envelopes(
    spectrum: torch.Tensor, filters: torch.Tensor, n: int | None = None, index: torch.Tensor | None = None
) -> torch.Tensor:
    """Hilbert envelopes of the subbands: ``|ifft(spectrum * filter)|`` per channel, ``[batch, channels, time]``.

    ``spectrum`` is the one-sided FFT of the waveforms (``[batch, bins]``); ``filters`` the filters' analytic weights
    (``[channels, bins]``), the envelopes ``n`` points long (the waveforms' length). With ``index`` (``[channels,
    m]``), each channel takes only its own ``m`` bins (its band shifted to baseband) and its envelope comes out at
    ``m`` points: the banded method's lower rate.

    Examples
    --------
    >>> tone = torch.cos(2 * torch.pi * 8 * torch.arange(64) / 64)  # its envelope is flat at 1
    >>> env = subband_envelopes(torch.fft.rfft(tone)[None], torch.full((1, 33), 2.0), n=64)
    >>> env.shape, round(float(env.min()), 4), round(float(env.max()), 4)
    (torch.Size([1, 1, 64]), 1.0, 1.0)
    """
    if index is None:
        return torch.fft.ifft(spectrum.unsqueeze(1) * filters, n=n).abs()
    return torch.fft.ifft(spectrum[:, index] * filters).abs()


def lowpass_downsample(env: torch.Tensor, kernel: torch.Tensor, half: int, stride: int, frames: int) -> torch.Tensor:
    """Envelopes ``[batch, channels, time]`` low-passed by ``kernel`` (centred: ``half`` taps each side, zero-padded)
    and taken every ``stride`` samples, ``frames`` of them.

    Examples
    --------
    >>> lowpass_downsample(torch.ones(1, 2, 10), torch.ones(1, 1, 1), 0, 2, 5).shape
    torch.Size([1, 2, 5])
    """
    b, c, n = env.shape
    pad_right = half + max(frames * stride - n, 0)
    padded = F.pad(env.reshape(b * c, 1, n), (half, pad_right))
    return _StridedFilter.apply(padded, kernel, stride)[..., :frames].reshape(b, c, frames)


class _StridedFilter(torch.autograd.Function):
    """``conv1d(x, kernel, stride=stride)`` for one-channel ``x`` ``[rows, 1, n]`` and a fixed ``kernel``, with a
    polyphase backward pass.

    The gradient of a strided convolution is a strided transposed convolution, which oneDNN computes several times
    slower than the forward pass for these long one-channel filters. Split into its ``stride`` phases, it is an
    ordinary transposed convolution with ``stride`` output channels, each phase's taps ``kernel[j::stride]``,
    interleaved back into time order: the same sums (the gradients agree to float rounding, ~1e-7 relative), and
    the cochleagram's forward and backward pass is 16% shorter (``benchmarks/cochleagram_backward.py``). The
    forward pass is unchanged.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, stride: int) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.stride, ctx.n = stride, x.shape[-1]
        return F.conv1d(x, kernel, stride=stride)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (kernel,) = ctx.saved_tensors
        s, n = ctx.stride, ctx.n
        taps = -(-kernel.shape[-1] // s) * s
        # phases[0, j, m] = kernel[m * s + j]
        phases = F.pad(kernel, (0, taps - kernel.shape[-1])).view(1, taps // s, s).transpose(1, 2).contiguous()
        g = F.conv_transpose1d(grad.contiguous(), phases)  # [rows, s, frames + taps/s - 1]: g[r, j, t] -> x[t*s + j]
        g = g.transpose(1, 2).reshape(grad.shape[0], 1, -1)
        g = g[..., :n] if g.shape[-1] >= n else F.pad(g, (0, n - g.shape[-1]))
        return g, None, None


def clipped_power(x: torch.Tensor, power: float, clip: float) -> torch.Tensor:
    """The cochleagram's compression: ``relu(x) ** power``, its derivative clipped to ``[0, clip]`` (finite at 0).

    Examples
    --------
    >>> x = torch.tensor([0.0, 1.0], requires_grad=True)
    >>> clipped_power(x, 0.3, 1.0).sum().backward()
    >>> x.grad.tolist()
    [1.0, 0.30000001192092896]
    """
    return _ClippedPower.apply(x, power, clip)


class _ClippedPower(torch.autograd.Function):
    """``relu(x) ** p`` with the derivative ``p * x ** (p - 1)`` clipped to ``[0, clip]`` (finite at zero)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, power: float, clip: float) -> torch.Tensor:
        x = x.clamp_min(0)
        ctx.save_for_backward(x)
        ctx.power, ctx.clip = power, clip
        return x.pow(power)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        slope = (ctx.power * x.pow(ctx.power - 1)).nan_to_num(ctx.clip, ctx.clip).clamp(max=ctx.clip)
        return grad * slope, None, None


_DECIMATIONS = (1, 2, 4, 5, 10, 20, 25, 50, 100)


class Cochleagram(nn.Module):
    """The cochleagram as a module, with the filterbank and the downsampling filters precomputed.

    Input: waveforms ``[batch, samples]`` (or ``[batch, 1, samples]``) of ``settings.n_samples`` samples.
    Output: ``[batch, 1, channels, frames]``, ready for a 2-d convolutional network (``[B, 1, 211, 400]`` by default).

    Parameters
    ----------
    settings : CochleagramSettings, optional
        The paper's parameters by default.
    method : {"banded", "full"}
        ``"full"`` computes every envelope at the audio rate (211 inverse FFTs of 40000 points for 2 s) and then
        low-passes and downsamples it: the textbook pipeline. ``"banded"`` (default) uses that each filter passes only
        a narrow band: the analytic subband is computed exactly, shifted to baseband, at the lowest rate that keeps
        ``oversample`` times its bandwidth (and at least ``min_rate`` Hz); the anti-aliasing filter is designed for
        that rate. It is 3-5x faster; it matches ``"full"`` within 1e-4 mean relative error (most of the difference
        is in the first and last frame, where the edge handling of the two low-pass filters differs).
    oversample, min_rate : float
        The banded method's rate rule (see above).

    Examples
    --------
    >>> coch = Cochleagram(CochleagramSettings(n_samples=4000))
    >>> coch(torch.randn(2, 4000) * 0.01).shape
    torch.Size([2, 1, 211, 40])
    """

    def __init__(
        self,
        settings: CochleagramSettings | None = None,
        method: str = "banded",
        oversample: float = 8.0,
        min_rate: float = 800.0,
    ) -> None:
        super().__init__()
        if method not in ("banded", "full"):
            raise ValueError(f"method must be 'banded' or 'full', got {method!r}.")
        self.settings = settings or CochleagramSettings()
        self.method = method
        s = self.settings
        filters, centres = erb_cosine_filters(
            s.n_samples, s.sr, s.n, s.low_hz, s.high_hz, s.sample_factor, s.edge_filters
        )
        # The analytic signal's spectrum: positive frequencies doubled, DC and Nyquist kept once.
        weight = np.full(filters.shape[1], 2.0, dtype=np.float32)
        weight[0] = 1.0
        if s.n_samples % 2 == 0:
            weight[-1] = 1.0
        filters = filters * weight
        self.centre_frequencies = centres
        self._groups: list[tuple[int, int, int]] = []  # (decimation, kernel half-width, stride)
        if method == "full":
            self.register_buffer("filters", torch.from_numpy(filters), persistent=False)
            self.register_buffer("kernel", torch.from_numpy(lowpass_kernel(s, s.sr)).view(1, 1, -1), persistent=False)
            return
        step = s.sr // s.env_sr
        usable = [d for d in _DECIMATIONS if step % d == 0 and s.n_samples % d == 0]
        n_bins = filters.shape[1]
        groups: dict[int, list[int]] = {}
        starts: dict[int, int] = {}
        for ch in range(filters.shape[0]):
            nz = np.nonzero(filters[ch])[0]
            lo, hi = (int(nz[0]), int(nz[-1])) if nz.size else (0, 0)
            bandwidth = (hi - lo + 1) * s.sr / s.n_samples
            need = min(max(oversample * bandwidth, min_rate, 2 * s.env_sr), s.sr)
            d = max([d for d in usable if s.sr / d >= need], default=1)
            while s.n_samples // d < hi - lo + 1:  # the band must fit the shorter transform
                d = max(x for x in usable if x < d)
            groups.setdefault(d, []).append(ch)
            starts[ch] = lo
        order = []
        for gi, (d, chans) in enumerate(sorted(groups.items())):
            m = s.n_samples // d
            idx = np.array([np.arange(starts[c], starts[c] + m) for c in chans])
            w = np.take_along_axis(np.pad(filters[chans], ((0, 0), (0, m))), idx, axis=1)
            kernel = lowpass_kernel(s, s.sr / d, taps=(s.window_size // d) | 1)
            self.register_buffer(f"_idx{gi}", torch.from_numpy(np.minimum(idx, n_bins - 1)), persistent=False)
            w = torch.from_numpy(w.astype(np.float32) * (m / s.n_samples))  # ifft of m points, not n_samples
            self.register_buffer(f"_w{gi}", w, persistent=False)
            self.register_buffer(f"_k{gi}", torch.from_numpy(kernel).view(1, 1, -1), persistent=False)
            self._groups.append((d, kernel.size // 2, step // d))
            order.extend(chans)
        self.register_buffer("_order", torch.from_numpy(np.argsort(order)), persistent=False)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(1, channels, frames)`` of one stimulus."""
        return (1, *self.settings.shape)

    def _check(self, waveform: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if waveform.dim() == 3 and waveform.shape[1] == 1:
            waveform = waveform[:, 0]
        if waveform.dim() != 2 or waveform.shape[-1] != s.n_samples:
            raise ValueError(
                f"expected waveforms [batch, {s.n_samples}] ({s.n_samples / s.sr:g} s at {s.sr} Hz), "
                f"got {tuple(waveform.shape)}: pad or crop the audio, or build a Cochleagram with that n_samples."
            )
        return waveform.float()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        s = self.settings
        x = self._check(waveform)
        spectrum = torch.fft.rfft(x, n=s.n_samples)
        if self.method == "full":
            env = subband_envelopes(spectrum, self.filters, n=s.n_samples)
            down = lowpass_downsample(env, self.kernel, s.window_size // 2, s.sr // s.env_sr, s.n_frames)
        else:
            parts = []
            for gi, (_, half, stride) in enumerate(self._groups):
                idx, w, k = getattr(self, f"_idx{gi}"), getattr(self, f"_w{gi}"), getattr(self, f"_k{gi}")
                parts.append(lowpass_downsample(subband_envelopes(spectrum, w, index=idx), k, half, stride, s.n_frames))
            down = torch.cat(parts, 1).index_select(1, self._order)
        return clipped_power(down.unsqueeze(1), s.power, s.grad_clip)


def cochleagram(waveform: torch.Tensor, settings: CochleagramSettings | None = None) -> torch.Tensor:
    """Cochleagram of waveforms ``[batch, samples]`` -> ``[batch, 1, channels, frames]``; see :class:`Cochleagram`.

    Builds the filterbank on each call: use :class:`Cochleagram` when computing many.

    Examples
    --------
    >>> cochleagram(torch.zeros(1, 2000), CochleagramSettings(n_samples=2000)).shape
    torch.Size([1, 1, 211, 20])
    """
    s = settings or CochleagramSettings(n_samples=waveform.shape[-1])
    return Cochleagram(s).to(waveform.device)(waveform)
