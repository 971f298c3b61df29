"""Offline speech: a 61-word vocabulary and three sources that can say every word of it.

* ``espeak-ng`` (Debian package ``espeak-ng``): formant synthesis, many English accents x voice variants, any speed
  and pitch. It provides the training voices (:data:`ESPEAK_VOICES`).
* ``flite`` (package ``flite``): CMU's diphone and clustergen voices, a different synthesis method and different
  speakers. Held out for testing (:data:`FLITE_VOICES`).
* ``recorded``: one real speaker, Allison Smith, from the Asterisk telephony prompts (package
  ``asterisk-core-sounds-en-wav``, 8 kHz). Held-out real speech; one recording per word (:data:`RECORDINGS`).

The vocabulary is the set of single words that the Asterisk prompts contain as isolated recordings and that form
natural closed classes: digits, weekdays, months, relative days, magnitudes and the NATO spelling alphabet. The
file for each word was checked against the package's own list of prompts (``core-sounds-en.txt``: ``digits/mon-0``
is "January", ``phonetic/a_p`` is "alpha", ...) and against the installed files.

Every token is trimmed of leading and trailing silence and normalised to :data:`TOKEN_RMS`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from metamers.audio.signal import read_wav, set_rms

__all__ = [
    "ASTERISK_DIR",
    "ESPEAK_ACCENTS",
    "ESPEAK_VARIANTS",
    "ESPEAK_VOICES",
    "FLITE_VOICES",
    "RECORDED_VOICES",
    "RECORDINGS",
    "SOURCES",
    "SPOKEN_TEXT",
    "TOKEN_RMS",
    "VOCABULARY",
    "SpeechSourceMissing",
    "asterisk_dir",
    "finish_token",
    "recorded_word",
    "require_source",
    "synthesize_word",
    "trim_silence",
]

TOKEN_RMS = 0.1
"""RMS level of every returned word token."""

ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
"""Where ``asterisk-core-sounds-en-wav`` installs the recordings; the environment variable
``METAMERS_ASTERISK_DIR`` overrides it."""

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_RELATIVE_DAYS = ("today", "tomorrow", "yesterday")
_MAGNITUDES = ("hundred", "thousand", "million", "billion")
# Spelled as the Asterisk prompt list names them ("juliet", "xray"); "alpha" rather than ICAO's "alfa".
_NATO = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
)

# "november" is both a month and a NATO word: it is one class, recorded as the month (digits/mon-10); the NATO
# recording phonetic/n_p.wav of the same word is not used.
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(_DIGITS + _WEEKDAYS + _MONTHS + _RELATIVE_DAYS + _MAGNITUDES + _NATO))
"""The words, in label order (index = class label)."""

RECORDINGS: dict[str, str] = {
    **{word: f"digits/{i}.wav" for i, word in enumerate(_DIGITS)},
    **{word: f"digits/day-{i}.wav" for i, word in enumerate(_WEEKDAYS)},
    **{word: f"digits/mon-{i}.wav" for i, word in enumerate(_MONTHS)},
    **{word: f"digits/{word}.wav" for word in _RELATIVE_DAYS + _MAGNITUDES},
    **{word: f"phonetic/{word[0]}_p.wav" for word in _NATO if word != "november"},
}
"""Path of each word's recording, relative to :func:`asterisk_dir`."""

SPOKEN_TEXT: dict[str, str] = {"xray": "x-ray"}
"""Text given to the synthesisers where the label is not read correctly as written ("xray" is otherwise
pronounced "x r a y" by flite)."""

ESPEAK_ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
"""The English espeak-ng voices (accents) of espeak-ng 1.51 that need no MBROLA database."""

ESPEAK_VARIANTS: tuple[str, ...] = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "croak",
)
"""Voice variants (timbre, formant scaling, Klatt synthesiser) combined with every accent."""

ESPEAK_VOICES: tuple[str, ...] = tuple(
    f"{accent}+{variant}" for accent in ESPEAK_ACCENTS for variant in ESPEAK_VARIANTS
)
"""Training voices: every accent x variant (``"en-gb-scotland+f3"``), 128 in all."""

FLITE_VOICES: tuple[str, ...] = ("kal", "kal16", "awb", "rms", "slt")
"""Held-out voices. ``awb_time`` is left out: it is a limited-domain (talking clock) voice that says nothing for
most words."""

RECORDED_VOICES: tuple[str, ...] = ("allison",)

# Typical mean F0 of each flite voice (measured), so that ``pitch`` means the same relative shift as in espeak-ng.
_FLITE_F0 = {"kal": 95.0, "kal16": 95.0, "awb": 125.0, "rms": 105.0, "slt": 175.0}
_DEFAULT_SPEED = 175.0
_DEFAULT_PITCH = 50.0

SOURCES: dict[str, dict[str, str]] = {
    "espeak-ng": {
        "package": "espeak-ng (Debian)",
        "program": "eSpeak NG text-to-speech, https://github.com/espeak-ng/espeak-ng",
        "license": "GPL-3.0-or-later (program and its voice/dictionary data)",
        "provenance": "Generated speech: formant synthesis of each word by the local espeak-ng binary. No recorded "
        "human speech is involved. The GPL covers the program; the waveforms are its output.",
    },
    "flite": {
        "package": "flite (Debian)",
        "program": "CMU Flite, http://cmuflite.org",
        "license": "BSD-like permissive license of Carnegie Mellon University and the University of Edinburgh "
        "(see /usr/share/doc/flite/copyright), covering the program and its voices",
        "provenance": "Generated speech: diphone (kal, kal16) and clustergen statistical-parametric (awb, rms, slt) "
        "voices built by CMU from their own recordings; the words are synthesised locally.",
    },
    "recorded": {
        "package": "asterisk-core-sounds-en-wav (Debian)",
        "program": "Asterisk core sound prompts, https://www.asterisk.org",
        "license": "CC-BY-SA-3.0. Recorded by Allison Smith (http://www.theivrvoice.com), financial contributions "
        "by Digium, Inc. Clips made from these recordings are adaptations: if you share them, credit the recording "
        "and share them under CC-BY-SA-3.0 (or a compatible license).",
        "provenance": "Real recorded speech of one female speaker, 8 kHz 16-bit telephone prompts; one isolated "
        "recording per word.",
    },
}
"""License and provenance of each speech source, recorded in every corpus's ``meta.json``."""

_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite", "recorded": "asterisk-core-sounds-en-wav"}


class SpeechSourceMissing(RuntimeError):
    """A speech source (a synthesiser program or the recordings) is not installed."""


def asterisk_dir() -> Path:
    """Folder of the Asterisk English recordings (``$METAMERS_ASTERISK_DIR`` if set, else :data:`ASTERISK_DIR`).

    Examples
    --------
    >>> asterisk_dir().name
    'en_US_f_Allison'
    """
    return Path(os.environ.get("METAMERS_ASTERISK_DIR", ASTERISK_DIR))


def require_source(source: str) -> None:
    """Raise :class:`SpeechSourceMissing`, naming the apt package to install, if ``source`` is unavailable.

    Parameters
    ----------
    source : str
        ``"espeak-ng"``, ``"flite"`` or ``"recorded"``.

    Examples
    --------
    >>> require_source("telepathy")
    Traceback (most recent call last):
    ...
    ValueError: unknown speech source 'telepathy'; choose from ('espeak-ng', 'flite', 'recorded')
    """
    if source not in _PACKAGES:
        raise ValueError(f"unknown speech source {source!r}; choose from {tuple(_PACKAGES)}")
    package = _PACKAGES[source]
    if source == "recorded":
        folder = asterisk_dir()
        if not (folder / RECORDINGS["zero"]).is_file():
            raise SpeechSourceMissing(
                f"the recorded words are missing: {folder} has no {RECORDINGS['zero']}. "
                f"Install them with: sudo apt-get install {package}"
            )
    elif shutil.which(source) is None:
        raise SpeechSourceMissing(
            f"the {source} speech synthesiser was not found on PATH. Install it with: sudo apt-get install {package}"
        )


@functools.cache
def _installed_voices(engine: str) -> tuple[frozenset[str], frozenset[str]]:
    """Voice names (and, for espeak-ng, variant names) that the installed synthesiser accepts."""
    if engine == "flite":
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=False).stdout
        return frozenset(out.split(":", 1)[-1].split()), frozenset()
    voices: set[str] = set()
    for line in subprocess.run(
        ["espeak-ng", "--voices"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 5:
            voices.update(
                {columns[1].lower(), columns[3].lower(), columns[4].lower(), columns[4].rsplit("/", 1)[-1].lower()}
            )
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=False).stdout
    variants = {line.split()[4].rsplit("/", 1)[-1] for line in listing.splitlines()[1:] if len(line.split()) >= 5}
    return frozenset(voices), frozenset(variants)


def _check_voice(engine: str, voice: str) -> None:
    voices, variants = _installed_voices(engine)
    base, _, variant = voice.partition("+")
    if (base.lower() if engine == "espeak-ng" else base) not in voices or (variant and variant not in variants):
        raise ValueError(
            f"unknown {engine} voice {voice!r} (the synthesiser would silently fall back to its default voice); "
            f"see `{'espeak-ng --voices' if engine == 'espeak-ng' else 'flite -lv'}`"
        )


def trim_silence(x: torch.Tensor, sr: int, threshold_db: float = -40.0, pad: float = 0.01) -> torch.Tensor:
    """Cut leading and trailing silence: frames (10 ms) quieter than ``threshold_db`` below the loudest frame.

    Parameters
    ----------
    x : torch.Tensor
        Waveform ``[n_samples]``.
    sr : int
        Sample rate in Hz.
    threshold_db : float
        Frame level, relative to the loudest frame, below which a frame counts as silence.
    pad : float
        Seconds of margin kept on each side of the first and last loud frames.

    Examples
    --------
    >>> x = torch.cat([torch.zeros(1000), torch.ones(500), torch.zeros(1000)])
    >>> trim_silence(x, 10000, pad=0.0).shape
    torch.Size([500])
    """
    frame = max(1, round(0.01 * sr))
    n_frames = -(-x.shape[-1] // frame)
    if n_frames == 0:
        return x
    padded = torch.nn.functional.pad(x, (0, n_frames * frame - x.shape[-1]))
    energy = padded.reshape(n_frames, frame).pow(2).mean(1)
    loud = torch.nonzero(energy > energy.max() * 10 ** (threshold_db / 10)).flatten()
    if loud.numel() == 0:
        return x[:0]
    margin = round(pad * sr)
    start = max(0, int(loud[0]) * frame - margin)
    end = min(x.shape[-1], (int(loud[-1]) + 1) * frame + margin)
    return x[start:end]


def finish_token(x: torch.Tensor, sr: int, what: str) -> torch.Tensor:
    """Make a word token of a waveform: trim its silences, remove its mean, ramp its ends, set it to :data:`TOKEN_RMS`.

    Parameters
    ----------
    x : torch.Tensor
        Waveform ``[n_samples]`` with its silent margins.
    sr : int
        Sample rate in Hz.
    what : str
        What the waveform is, for the error message if it is silent.

    Examples
    --------
    >>> x = torch.cat([torch.zeros(2000), torch.sin(torch.arange(4000) / 5.0), torch.zeros(2000)])
    >>> y = finish_token(x, 20000, "a tone")
    >>> y.shape[0] < 5000, round(float(y.pow(2).mean().sqrt()), 3)
    (True, 0.1)
    """
    x = trim_silence(x, sr)
    if x.numel() == 0 or float(x.abs().max()) == 0.0:
        raise RuntimeError(f"{what} produced silence")
    x = x - x.mean()
    # Short raised-cosine ramps so that a trimmed token starts and ends at zero.
    ramp = min(round(0.005 * sr), x.shape[0] // 2)
    if ramp > 0:
        window = 0.5 - 0.5 * torch.cos(torch.pi * torch.arange(ramp, dtype=x.dtype) / ramp)
        x = x.clone()
        x[:ramp] *= window
        x[-ramp:] *= window.flip(0)
    return set_rms(x, TOKEN_RMS).float()


def synthesize_word(
    word: str,
    engine: str = "espeak-ng",
    voice: str = "en-us",
    speed: float = _DEFAULT_SPEED,
    pitch: float = _DEFAULT_PITCH,
    sr: int = 20000,
) -> torch.Tensor:
    """Say one word with espeak-ng or flite: trimmed, at :data:`TOKEN_RMS`, at ``sr`` Hz.

    Parameters
    ----------
    word : str
        A vocabulary word (its :data:`SPOKEN_TEXT` is what is said) or any short text.
    engine : str
        ``"espeak-ng"`` or ``"flite"``.
    voice : str
        An espeak-ng voice with optional variant (``"en-gb-scotland+f3"``, see :data:`ESPEAK_VOICES`) or a flite
        voice (:data:`FLITE_VOICES`).
    speed : float
        Speaking rate in words per minute (espeak-ng's ``-s``; default 175). For flite it sets the duration
        stretch to ``175 / speed``.
    pitch : float
        espeak-ng's pitch, 0-99, 50 being the voice's own. For flite the voice's mean F0 is scaled by
        ``2 ** ((pitch - 50) / 100)`` (about -30 % to +40 % over 0-99); the ``rms`` voice ignores it.
    sr : int
        Output sample rate.

    Returns
    -------
    torch.Tensor
        Float32 waveform ``[n_samples]``.

    Raises
    ------
    SpeechSourceMissing
        If the synthesiser is not installed.
    RuntimeError
        If the synthesiser fails or says nothing.
    ValueError
        If the installed synthesiser has no such voice (both would otherwise fall back to a default voice).
    """
    require_source(engine)
    _check_voice(engine, voice)
    text = SPOKEN_TEXT.get(word, word)
    if engine == "espeak-ng":
        args = ["espeak-ng", "-v", voice, "-s", str(round(speed)), "-p", str(round(pitch))]
    elif engine == "flite":
        args = ["flite", "-voice", voice, "--setf", f"duration_stretch={_DEFAULT_SPEED / speed:.4f}"]
        if voice in _FLITE_F0 and pitch != _DEFAULT_PITCH:
            f0 = _FLITE_F0[voice] * 2 ** ((pitch - _DEFAULT_PITCH) / 100)
            args += ["--setf", f"int_f0_target_mean={f0:.2f}"]
    else:
        raise ValueError(f"unknown engine {engine!r}; choose 'espeak-ng' or 'flite'")
    with tempfile.TemporaryDirectory(prefix="metamers-tts-") as tmp:
        path = Path(tmp) / "word.wav"
        if engine == "espeak-ng":
            args += ["-w", str(path), text]
        else:
            args += ["-t", text, "-o", str(path)]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(f"{engine} failed for {word!r} (voice {voice!r}): {result.stderr.strip()}")
        x = read_wav(path, sr)
    return finish_token(x, sr, f"{engine} voice {voice!r} saying {word!r}")


def recorded_word(word: str, sr: int = 20000) -> torch.Tensor:
    """The Asterisk recording of a vocabulary word: trimmed, at :data:`TOKEN_RMS`, resampled to ``sr`` Hz.

    The recordings are 8 kHz telephone prompts, so they hold no energy above 4 kHz.

    Parameters
    ----------
    word : str
        A word of :data:`RECORDINGS`.
    sr : int
        Output sample rate.

    Returns
    -------
    torch.Tensor
        Float32 waveform ``[n_samples]``.
    """
    if word not in RECORDINGS:
        raise KeyError(f"no recording of {word!r}; recorded words: {sorted(RECORDINGS)}")
    require_source("recorded")
    path = asterisk_dir() / RECORDINGS[word]
    if not path.is_file():
        raise SpeechSourceMissing(f"{path} is missing; reinstall with: sudo apt-get install {_PACKAGES['recorded']}")
    return finish_token(read_wav(path, sr).double(), sr, f"recording {path}")
