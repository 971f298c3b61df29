"""Real recorded speech from Debian packages: a catalogue of clips, each labelled by word and speaker.

Five packages hold isolated English words or short phrases recorded by real people:

=================================  ====================================================  ========  ============
package                            what                                                   speakers  license
=================================  ====================================================  ========  ============
``hedgewars-data``                 10 English voice packs of the game, about 45 phrases   10        GFDL-1.3
``kajongg``                        mah-jongg calls ("pung", "no choice", ...)             4         GPL-2+
``klettres-data``                  letters a-z and short words, US and British English    2         GPL-2+
``ktuberling-data``                English names of the toy's pieces ("ball", "ear")      1         GPL-2+
``asterisk-core-sounds-en-wav``    the telephone prompts (Allison Smith)                  1         CC-BY-SA-3.0
=================================  ====================================================  ========  ============

A clip's *speaker* is ``"<package>:<voice>"`` (``"hedgewars-data:Pirate"``): a voice pack, a recorded voice or the
package's one speaker. Whether two packs of one game were recorded by different actors is not documented; they are
counted as different speakers. Only clips whose words are in :data:`GROWN_VOCABULARY` are catalogued, and only
words that espeak-ng can also say (all of them), so every word has many synthetic speakers besides its real ones.

:data:`HELD_OUT_SPEAKERS` names the real speakers that never appear in training; accuracy on each package's
held-out speakers is reported separately (:func:`metamers.audio.corpus_spec.real_splits`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from metamers.audio.signal import read_wav
from metamers.audio.speech import RECORDINGS, VOCABULARY, SpeechSourceMissing, finish_token

__all__ = [
    "GROWN_VOCABULARY",
    "HELD_OUT_SPEAKERS",
    "REAL_SPEAKERS",
    "SPEECH_PACKAGES",
    "Clip",
    "catalogue",
    "package_dir",
    "real_token",
    "require_package",
    "speakers",
]

# --- the words each package says ------------------------------------------------------------------------------------

# Hedgewars: file stem -> the phrase said. Grunts, laughs and coughs (Ooff, Ow, Jump, Laugh, Hmm, Nooo, Poison*,
# Firepunch*) are left out: they are not words.
_HEDGEWARS_PHRASES: dict[str, str] = {
    "Amazing": "amazing",
    "Boring": "boring",
    "Brilliant": "brilliant",
    "Bugger": "bugger",
    "Byebye": "bye bye",
    "Comeonthen": "come on then",
    "Coward": "coward",
    "Cutitout": "cut it out",
    "Drat": "drat",
    "Enemydown": "enemy down",
    "Excellent": "excellent",
    "Fire": "fire",
    "Firstblood": "first blood",
    "Flawless": "flawless",
    "Flyaway": "fly away",
    "Gonnagetyou": "gonna get you",
    "Grenade": "grenade",
    "Hello": "hello",
    "Hurry": "hurry",
    "Illgetyou": "i'll get you",
    "Incoming": "incoming",
    "Justyouwait": "just you wait",
    "Kamikaze": "kamikaze",
    "Leavemealone": "leave me alone",
    "Melon": "melon",
    "Missed": "missed",
    "Nutter": "nutter",
    "Ohdear": "oh dear",
    "Oops": "oops",
    "Ouch": "ouch",
    "Reinforcements": "reinforcements",
    "Revenge": "revenge",
    "Runaway": "run away",
    "Sameteam": "same team",
    "Solong": "so long",
    "Stupid": "stupid",
    "Takecover": "take cover",
    "Thisoneismine": "this one is mine",
    "Traitor": "traitor",
    "Uh-oh": "uh-oh",
    "Victory": "victory",
    "Watchit": "watch it",
    "Watchthis": "watch this",
    "Whatthe": "what the",
    "Yessir": "yes sir",
    "Youllregretthat": "you'll regret that",
}
# The English packs; Default_es, Default_pl, Default_ru, Default_uk and Russian_pl are other languages.
_HEDGEWARS_VOICES = (
    "British",
    "Classic",
    "Default",
    "HillBilly",
    "Mobster",
    "Pirate",
    "Robot",
    "Russian",
    "Singer",
    "Surfer",
)

# Kajongg: the calls, named by their file. The tiles (b1 "bamboo one", winds, dragons) are left out: their wording
# could not be checked here.
_KAJONGG_CALLS: dict[str, str] = {
    "chow": "chow",
    "pung": "pung",
    "kong": "kong",
    "mahjongg": "mahjongg",
    "nochoice": "no choice",
    "dangerousgame": "dangerous game",
    "originalcall": "original call",
    "violatesoriginalcall": "violates original call",
}
_KAJONGG_VOICES = ("female1", "female2", "male1", "male2")

_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
# KLettres' short words, said by both its US ("en") and British ("en_GB") speakers. Its sound fragments (aw, ch,
# th) are left out; "arm", "hut", "or", "the" and "well" (British speaker only) too.
_KLETTRES_WORDS = (
    "car",
    "dog",
    "fix",
    "gas",
    "gem",
    "hot",
    "jet",
    "key",
    "me",
    "my",
    "no",
    "pet",
    "saw",
    "say",
    "sit",
    "sky",
)
_KLETTRES_GB_ONLY = ("ball", "ear")  # also said by KTuberling's speaker
_KTUBERLING_WORDS = ("ball", "ear")

_NEW_WORDS = tuple(
    dict.fromkeys(
        tuple(_HEDGEWARS_PHRASES.values())
        + tuple(_KAJONGG_CALLS.values())
        + _LETTERS
        + _KLETTRES_WORDS
        + _KLETTRES_GB_ONLY
    )
)

GROWN_VOCABULARY: tuple[str, ...] = VOCABULARY + tuple(w for w in _NEW_WORDS if w not in VOCABULARY)
"""The 61 words of :data:`~metamers.audio.speech.VOCABULARY` (same order, same labels) followed by the words and
short phrases that the real recordings give for at least two real speakers: 46 Hedgewars phrases, 8 Kajongg calls,
the 26 letters and 18 KLettres words, 159 in all."""


@dataclass(frozen=True)
class _Package:
    name: str
    root: str
    env: str
    license: str
    provenance: str


SPEECH_PACKAGES: dict[str, _Package] = {
    p.name: p
    for p in (
        _Package(
            "hedgewars-data",
            "/usr/share/games/hedgewars/Data/Sounds/voices",
            "METAMERS_HEDGEWARS_DIR",
            "GFDL-1.3 (Data/Sounds/*, (c) 2004-2006 Andrey Korotaev; see /usr/share/doc/hedgewars-data/copyright)",
            "Voice packs of the game Hedgewars: phrases acted by real people, some processed (Robot) or sung (Singer); "
            "44.1/48 kHz Ogg Vorbis.",
        ),
        _Package(
            "kajongg",
            "/usr/share/kajongg/voices",
            "METAMERS_KAJONGG_DIR",
            "GPL-2+ ((c) Wolfgang Rohdewald, voices/*/COPYRIGHT)",
            "Four English voices of KDE's Kajongg saying the mah-jongg calls; 44.1 kHz Ogg Vorbis.",
        ),
        _Package(
            "klettres-data",
            "/usr/share/klettres",
            "METAMERS_KLETTRES_DIR",
            "GPL-2+ ((c) 2001-2011 Anne-Marie Mahfouf and KDE contributors; /usr/share/doc/klettres-data/copyright)",
            "KDE's KLettres: letters and short words by a US (en) and a British (en_GB) speaker; Ogg Vorbis.",
        ),
        _Package(
            "ktuberling-data",
            "/usr/share/ktuberling/sounds",
            "METAMERS_KTUBERLING_DIR",
            "GPL-2+ ((c) KDE contributors; /usr/share/doc/ktuberling-data/copyright)",
            "KDE's KTuberling: English names of the pieces, one speaker; Ogg Vorbis.",
        ),
        _Package(
            "asterisk-core-sounds-en-wav",
            "/usr/share/asterisk/sounds/en_US_f_Allison",
            "METAMERS_ASTERISK_DIR",
            "CC-BY-SA-3.0 (recorded by Allison Smith, financial contributions by Digium, Inc.); clips made from them "
            "are adaptations: credit the recording and share them under CC-BY-SA-3.0",
            "Asterisk's telephone prompts, one female speaker, 8 kHz 16-bit WAV.",
        ),
    )
}
"""The real-speech packages: install folder, the environment variable that overrides it, license, provenance."""


def _listing(package: str) -> list[tuple[str, str, str]]:
    """``(relative path, voice, word)`` of every clip the package should hold."""
    if package == "hedgewars-data":
        return [(f"{v}/{stem}.ogg", v, w) for v in _HEDGEWARS_VOICES for stem, w in _HEDGEWARS_PHRASES.items()]
    if package == "kajongg":
        return [(f"{v}/{stem}.ogg", v, w) for v in _KAJONGG_VOICES for stem, w in _KAJONGG_CALLS.items()]
    if package == "klettres-data":
        rows = [(f"en/alpha/{c.upper()}.ogg", "en", c) for c in _LETTERS]
        rows += [(f"en_GB/alpha/{c}.ogg", "en_GB", c) for c in _LETTERS]
        rows += [(f"en/syllab/{w}.ogg", "en", w) for w in _KLETTRES_WORDS]
        return rows + [(f"en_GB/syllab/{w}.ogg", "en_GB", w) for w in _KLETTRES_WORDS + _KLETTRES_GB_ONLY]
    if package == "ktuberling-data":
        return [(f"en/{w}.ogg", "en", w) for w in _KTUBERLING_WORDS]
    rows = [(path, "allison", w) for w, path in RECORDINGS.items()]
    rows += [(f"letters/{c}.wav", "allison", c) for c in _LETTERS]
    return [*rows, ("hello.wav", "allison", "hello")]


REAL_SPEAKERS: tuple[str, ...] = tuple(
    dict.fromkeys(f"{package}:{voice}" for package in SPEECH_PACKAGES for _, voice, _ in _listing(package))
)
"""Every real speaker, ``"<package>:<voice>"``, in package order (18)."""

HELD_OUT_SPEAKERS: tuple[str, ...] = (
    "hedgewars-data:British",
    "hedgewars-data:Mobster",
    "hedgewars-data:Surfer",
    "kajongg:female2",
    "kajongg:male2",
    "klettres-data:en_GB",
    "asterisk-core-sounds-en-wav:allison",
)
"""Real speakers never used in training or validation (one test split per package). Every held-out speaker's words
are also said by at least one training speaker, except Allison's 61 original words and ``ball`` / ``ear``."""


@dataclass(frozen=True)
class Clip:
    """One real recording of one word.

    Attributes
    ----------
    package : str
        Debian package (a key of :data:`SPEECH_PACKAGES`).
    path : str
        File, relative to :func:`package_dir`.
    speaker : str
        ``"<package>:<voice>"``.
    word : str
        The label, a word of :data:`GROWN_VOCABULARY`.
    """

    package: str
    path: str
    speaker: str
    word: str

    @property
    def license(self) -> str:
        """The package's license."""
        return SPEECH_PACKAGES[self.package].license


def package_dir(package: str) -> Path:
    """Install folder of a speech package (its environment variable, e.g. ``$METAMERS_HEDGEWARS_DIR``, overrides it).

    Examples
    --------
    >>> package_dir("kajongg").name
    'voices'
    """
    if package not in SPEECH_PACKAGES:
        raise ValueError(f"unknown speech package {package!r}; choose from {tuple(SPEECH_PACKAGES)}")
    info = SPEECH_PACKAGES[package]
    return Path(os.environ.get(info.env, info.root))


def require_package(package: str) -> None:
    """Raise :class:`~metamers.audio.speech.SpeechSourceMissing` naming the apt package if its clips are missing.

    Examples
    --------
    >>> require_package("festival")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown speech package 'festival'; choose from ('hedgewars-data', 'kajongg', ...)
    """
    folder = package_dir(package)
    probe = _listing(package)[0][0]
    if not (folder / probe).is_file():
        raise SpeechSourceMissing(
            f"the recordings of {package} are missing ({folder / probe} not found). "
            f"Install them with: sudo apt-get install {package}"
        )


@functools.cache
def _catalogue(package: str, folder: str) -> tuple[Clip, ...]:
    root = Path(folder)
    return tuple(
        Clip(package, path, f"{package}:{voice}", word)
        for path, voice, word in _listing(package)
        if (root / path).is_file()
    )


def catalogue(packages: tuple[str, ...] | None = None) -> tuple[Clip, ...]:
    """Every catalogued clip of the installed ``packages`` (default: all of :data:`SPEECH_PACKAGES`).

    A package that is not installed is an error (:func:`require_package`); a file missing from an installed package
    is skipped (Hedgewars' HillBilly pack lacks a few phrases, for instance).

    Examples
    --------
    >>> clips = catalogue(("kajongg",))
    >>> len(clips), clips[0].speaker, clips[0].word
    (32, 'kajongg:female1', 'chow')
    """
    packages = tuple(SPEECH_PACKAGES) if packages is None else tuple(packages)
    clips: list[Clip] = []
    for package in packages:
        require_package(package)
        clips += _catalogue(package, str(package_dir(package)))
    return tuple(clips)


def speakers(clips: tuple[Clip, ...]) -> dict[str, dict[str, Clip]]:
    """``{speaker: {word: clip}}``, speakers and words in catalogue order (the first clip of a word is kept).

    Examples
    --------
    >>> sorted(speakers(catalogue(("kajongg",))))
    ['kajongg:female1', 'kajongg:female2', 'kajongg:male1', 'kajongg:male2']
    """
    table: dict[str, dict[str, Clip]] = {}
    for clip in clips:
        table.setdefault(clip.speaker, {}).setdefault(clip.word, clip)
    return table


def real_token(clip: Clip, sr: int = 20000) -> torch.Tensor:
    """A clip as a word token: mono, resampled to ``sr``, trimmed, at :data:`~metamers.audio.speech.TOKEN_RMS`.

    Examples
    --------
    >>> x = real_token(catalogue(("kajongg",))[1])
    >>> x.dtype, 0.1 < x.shape[0] / 20000 < 2.0
    (torch.float32, True)
    """
    path = package_dir(clip.package) / clip.path
    if not path.is_file():
        raise SpeechSourceMissing(f"{path} is missing; reinstall with: sudo apt-get install {clip.package}")
    return finish_token(read_wav(path, sr).double(), sr, f"recording {path}")
