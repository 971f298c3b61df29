"""The antiphase headphone check of Woods, Siegel, Traer & McDermott (2017).

Each trial plays three 200 Hz tones; one is 6 dB quieter than the others and one is in antiphase between the two
ears. The listener picks the quietest. Over headphones the quiet tone is easy to find; over loudspeakers the
antiphase tone cancels in the air and sounds quietest, so a listener without headphones fails. Six trials; pass
with at least five correct.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

__all__ = ["PASS_MIN", "TRIALS", "calibration_noise", "headphone_trial"]

TRIALS = 6
PASS_MIN = 5
_SR = 44100
_FREQ = 200.0
_TONE_S = 1.0
_RAMP_S = 0.1
_GAP_S = 0.5
_LEVEL = 10 ** (-20 / 20)  # peak of the standard tones, -20 dBFS


def _tone() -> np.ndarray:
    t = np.arange(int(_SR * _TONE_S)) / _SR
    x = np.sin(2 * np.pi * _FREQ * t)
    ramp = int(_SR * _RAMP_S)
    window = np.ones_like(x)
    window[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    window[-ramp:] = window[:ramp][::-1]
    return x * window * _LEVEL


def headphone_trial(path: str | os.PathLike, rng: random.Random) -> int:
    """Write one trial (a stereo WAV of three tones) and return the position of the quiet tone, 1 to 3.

    Examples
    --------
    >>> import random, tempfile, pathlib
    >>> headphone_trial(pathlib.Path(tempfile.mkdtemp()) / "t.wav", random.Random(0)) in (1, 2, 3)
    True
    """
    import soundfile as sf

    quiet, antiphase = rng.sample(range(3), 2)
    gap = np.zeros((int(_SR * _GAP_S), 2))
    parts = []
    for i in range(3):
        tone = _tone()
        if i == quiet:
            tone = tone * 10 ** (-6 / 20)
        stereo = np.stack([tone, -tone if i == antiphase else tone], axis=1)
        parts += [stereo, gap] if i < 2 else [stereo]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.concatenate(parts), _SR, subtype="PCM_16")
    return quiet + 1


def calibration_noise(path: str | os.PathLike, seconds: float = 3.0, seed: int = 0) -> None:
    """Write the noise a participant sets their volume by (at the level of the check's tones)."""
    import soundfile as sf

    x = np.random.default_rng(seed).standard_normal(int(_SR * seconds))
    x = x / np.sqrt(np.mean(x**2)) * _LEVEL / np.sqrt(2)
    sf.write(str(path), np.stack([x, x], axis=1), _SR, subtype="PCM_16")
