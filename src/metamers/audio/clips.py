"""Natural speech stimuli: spoken words centred in fixed-length clips at a set level (what metamers are made of).

Examples
--------
>>> CLIP_RMS
0.05
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metamers.audio.signal import rms, set_rms
from metamers.audio.speech import recorded_word, synthesize_word
from metamers.noise import pink_noise

__all__ = ["CLIP_RMS", "word_clips"]

CLIP_RMS = 0.05
"""RMS of a stimulus clip (the corpus stores its clips at the same level)."""


def word_clips(
    words: Sequence[str],
    source: str = "recorded",
    n_samples: int = 40000,
    sr: int = 20000,
    rms_level: float = CLIP_RMS,
    voice: str | None = None,
    noise_floor_db: float | None = 30.0,
    seed: int = 0,
) -> torch.Tensor:
    """Clean two-second clips with one spoken word centred at the midpoint, ``[len(words), n_samples]``.

    Parameters
    ----------
    words : sequence of str
        Vocabulary words (:data:`metamers.audio.speech.VOCABULARY`).
    source : {"recorded", "espeak-ng", "flite"}
        Real recordings (Debian's asterisk-core-sounds-en-wav, one speaker) or a synthetic voice.
    n_samples, sr : int
        Clip length and rate (the word networks take 40000 samples at 20 kHz).
    rms_level : float
        RMS of each clip.
    voice : str, optional
        Synthetic voice (default: the engine's default voice).
    noise_floor_db : float or None
        Add pink noise this many dB below the word (a recording's noise floor; default 30 dB SNR). Without it the
        clip is digital silence around the word, and a third of the cochleagram sits at the compression's floor,
        where a metamer's values are left arbitrary and rank correlation with them is meaningless.
    seed : int
        Seed of the noise floor.

    Examples
    --------
    >>> word_clips(["seven"]).shape  # doctest: +SKIP
    torch.Size([1, 40000])
    """
    out = torch.zeros(len(words), n_samples)
    for i, w in enumerate(words):
        if source == "recorded":
            token = recorded_word(w, sr)
        else:
            default = "slt" if source == "flite" else "en-us"
            token = synthesize_word(w, engine=source, voice=voice or default, sr=sr)
        token = token[:n_samples].float()
        start = (n_samples - token.numel()) // 2
        out[i, start : start + token.numel()] = token
        if noise_floor_db is not None:
            floor = pink_noise((n_samples,), rms_level=float(rms(out[i])) * 10 ** (-noise_floor_db / 20), seed=seed + i)
            out[i] = out[i] + floor
        out[i] = set_rms(out[i], rms_level)
    return out
