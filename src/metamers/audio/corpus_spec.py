"""What a corpus split is made of (:class:`CorpusSpec`) and the two named corpora's splits.

* ``"default"`` (:func:`default_splits`): the corpus of the shipped word networks, 61 words, espeak-ng training
  voices, flite and one real speaker held out, 8 synthetic background classes.
* ``"real"`` (:func:`real_splits`): 159 words (:data:`~metamers.audio.recordings.GROWN_VOCABULARY`), espeak-ng voices
  joined by the real speakers of :mod:`metamers.audio.recordings` in training, whole real speakers held out in one
  test split per package, and 15 real background classes (:mod:`metamers.audio.ambience`) joined to the 8 synthetic.

A spec's fields that the default corpus does not use (``real_speakers``, ``real_fraction``, ``background_part``)
are left out of :meth:`CorpusSpec.to_dict` while at their defaults, so the default corpus keeps its digests.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from metamers.audio.backgrounds import ALL_BACKGROUND_CLASSES, BACKGROUND_CLASSES
from metamers.audio.recordings import GROWN_VOCABULARY, HELD_OUT_SPEAKERS, REAL_SPEAKERS, SPEECH_PACKAGES
from metamers.audio.speech import ESPEAK_VOICES, FLITE_VOICES, RECORDED_VOICES, RECORDINGS, SOURCES, VOCABULARY

__all__ = [
    "CORPORA",
    "FORMAT_VERSION",
    "CorpusSpec",
    "corpus_splits",
    "default_root",
    "default_splits",
    "real_splits",
]

FORMAT_VERSION = 1
"""Changes whenever the rendering changes, so that cached corpora built by older code are rebuilt."""

_NEW_FIELDS = {"real_speakers": (), "real_fraction": 0.0, "background_part": "train"}


def default_root(corpus: str = "default") -> Path:
    """Where a named corpus is built by default: ``$METAMERS_CORPUS`` or ``~/.cache/metamers/corpus``, with
    ``-<name>`` appended for a corpus other than ``"default"``.

    Examples
    --------
    >>> default_root().name, default_root("real").name.endswith("-real")
    ('corpus', True)
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose from {tuple(CORPORA)}")
    env = os.environ.get("METAMERS_CORPUS")
    root = Path(env) if env else Path.home() / ".cache" / "metamers" / "corpus"
    return root if corpus == "default" else root.with_name(f"{root.name}-{corpus}")


@dataclass(frozen=True)
class CorpusSpec:
    """Everything that determines a split of the corpus (JSON-serialisable with :meth:`to_dict`).

    Parameters
    ----------
    split : str
        Folder name, e.g. ``"train"``.
    source : str
        ``"espeak-ng"``, ``"flite"``, ``"recorded"`` (the Asterisk words of the default corpus) or ``"real"``
        (only the ``real_speakers``).
    n_clips : int
        Number of clips.
    seed : int
        Seed of every random choice.
    sr : int
        Sample rate in Hz.
    duration : float
        Clip length in seconds.
    snr_db : (float, float) or None
        Range of the uniform SNR draw in dB; ``None`` for clean clips (no background).
    shift : float
        Largest offset of the word's centre from the clip midpoint, as a fraction of the word's duration; below
        0.5 the midpoint always falls inside the word (0.25: in its middle half).
    flankers : bool
        Fill the rest of the clip with other vocabulary words of the same speaker, separated by random pauses.
    clip_rms : float
        RMS of each stored clip (lowered where needed to keep the peak below 1).
    voices : tuple of str or None
        The voices synthetic speakers are drawn from; ``None`` for the source's default (:data:`ESPEAK_VOICES`,
        :data:`FLITE_VOICES` or the single recorded speaker).
    speed : (float, float)
        Range of speaking rates in words per minute (synthetic sources only).
    pitch : (float, float)
        Range of pitch settings, 0-99 with 50 the voice's own (synthetic sources only).
    n_speakers : int
        Number of synthetic (voice, speed, pitch) speakers drawn.
    words : tuple of str
        The vocabulary; labels index into it.
    backgrounds : tuple of str
        Background classes drawn from; labels index into :data:`BACKGROUND_CLASSES` when all are synthetic, else
        into :data:`~metamers.audio.backgrounds.ALL_BACKGROUND_CLASSES` (the synthetic ones first, same indices).
    real_speakers : tuple of str
        Real speakers (``"hedgewars-data:Pirate"``, see :data:`~metamers.audio.recordings.REAL_SPEAKERS`) whose
        recordings make ``real_fraction`` of the clips (all of them for ``source="real"``).
    real_fraction : float
        Share of the clips said by ``real_speakers`` when ``source`` is a synthesiser.
    background_part : str
        Which files of the real background classes are drawn: ``"train"`` or ``"test"`` (held out).

    Examples
    --------
    >>> spec = CorpusSpec("tiny", "espeak-ng", n_clips=4, seed=1, snr_db=None)
    >>> CorpusSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    True
    """

    split: str
    source: str
    n_clips: int
    seed: int
    sr: int = 20000
    duration: float = 2.0
    snr_db: tuple[float, float] | None = (-10.0, 10.0)
    shift: float = 0.25
    flankers: bool = True
    clip_rms: float = 0.05
    voices: tuple[str, ...] | None = None
    speed: tuple[float, float] = (120.0, 220.0)
    pitch: tuple[float, float] = (20.0, 80.0)
    n_speakers: int = 256
    words: tuple[str, ...] = VOCABULARY
    backgrounds: tuple[str, ...] = BACKGROUND_CLASSES
    real_speakers: tuple[str, ...] = ()
    real_fraction: float = 0.0
    background_part: str = "train"

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("speed", "pitch", "words", "backgrounds", "real_speakers"):
            fix(name, tuple(getattr(self, name)))
        fix("real_fraction", float(self.real_fraction))
        if self.snr_db is not None:
            fix("snr_db", tuple(float(v) for v in self.snr_db))
        if self.voices is not None:
            fix("voices", tuple(self.voices))
        if self.source not in (*SOURCES, "real"):
            raise ValueError(f"unknown source {self.source!r}; choose from {(*SOURCES, 'real')}")
        if not self.split or "/" in self.split or self.split.startswith("."):
            raise ValueError(f"bad split name {self.split!r}")
        if self.n_clips < 1 or self.n_speakers < 1:
            raise ValueError("n_clips and n_speakers must be positive")
        if not 0.0 <= self.shift < 0.5:
            raise ValueError(f"shift must be in [0, 0.5) so that the midpoint falls inside the word, got {self.shift}")
        if self.snr_db is not None and (len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]):
            raise ValueError(f"snr_db must be (low, high) or None, got {self.snr_db}")
        if len(self.words) < 2 or len(set(self.words)) != len(self.words):
            raise ValueError("words must hold at least two distinct words")
        if self.source == "recorded" and (missing := [w for w in self.words if w not in RECORDINGS]):
            raise ValueError(f"no recordings of {missing}")
        if not self.backgrounds:
            raise ValueError("backgrounds must name at least one class")
        if unknown := [b for b in self.backgrounds if b not in ALL_BACKGROUND_CLASSES]:
            raise ValueError(f"unknown background classes {unknown}; choose from {ALL_BACKGROUND_CLASSES}")
        if self.voices is not None and not self.voices:
            raise ValueError("voices must be None or non-empty")
        self._check_real()

    def _check_real(self) -> None:
        if unknown := [s for s in self.real_speakers if s.split(":", 1)[0] not in SPEECH_PACKAGES]:
            raise ValueError(f"unknown real speakers {unknown}; see metamers.audio.recordings.REAL_SPEAKERS")
        if len(set(self.real_speakers)) != len(self.real_speakers):
            raise ValueError("real_speakers must be distinct")
        if not 0.0 <= self.real_fraction <= 1.0:
            raise ValueError(f"real_fraction must be in [0, 1], got {self.real_fraction}")
        if self.source == "real" and not self.real_speakers:
            raise ValueError("source 'real' needs real_speakers")
        if self.source == "real" and self.real_fraction:
            raise ValueError("real_fraction is for synthetic sources (every clip of source 'real' is real)")
        if self.real_fraction and (not self.real_speakers or self.source == "recorded"):
            raise ValueError("real_fraction > 0 needs real_speakers and a synthetic source")
        if self.background_part not in ("train", "test"):
            raise ValueError(f"background_part must be 'train' or 'test', got {self.background_part!r}")

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return round(self.sr * self.duration)

    @property
    def voice_list(self) -> tuple[str, ...]:
        """The synthetic voices used (``voices`` or the source's default); the real speakers for ``"real"``."""
        if self.source == "real":
            return self.real_speakers
        if self.voices is not None:
            return self.voices
        return {"espeak-ng": ESPEAK_VOICES, "flite": FLITE_VOICES, "recorded": RECORDED_VOICES}[self.source]

    @property
    def background_classes(self) -> tuple[str, ...]:
        """The label space of the background labels (see ``backgrounds``)."""
        synthetic = all(b in BACKGROUND_CLASSES for b in self.backgrounds)
        return BACKGROUND_CLASSES if synthetic else ALL_BACKGROUND_CLASSES

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists); the real-speech fields only where they are not at their default."""
        data = json.loads(json.dumps(asdict(self)))
        for name, default in _NEW_FIELDS.items():
            if getattr(self, name) == default:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusSpec:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        if unknown := set(data) - names:
            raise ValueError(f"unknown CorpusSpec fields {sorted(unknown)}")
        return cls(**data)

    def digest(self) -> str:
        """SHA-256 of the spec and :data:`FORMAT_VERSION`: a corpus is reused only when this matches."""
        text = json.dumps({"format_version": FORMAT_VERSION, "spec": self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def default_splits(
    n_train: int = 8000,
    n_valid: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    test_snr_db: tuple[float, float] | None = (-10.0, 10.0),
) -> dict[str, CorpusSpec]:
    """The default corpus's splits: espeak-ng for training and validation, flite and real recordings held out.

    * ``train``: espeak-ng, all :data:`ESPEAK_VOICES`, 256 speakers (speed 120-220 wpm, pitch 20-80).
    * ``valid``: the same voices and augmentations, other speakers and clips (another seed), for early stopping.
    * ``test-flite``: the held-out flite voices (40 speakers over :data:`FLITE_VOICES`, same speed/pitch ranges).
    * ``test-recorded``: the held-out real recordings; one token per word, so clips vary only in placement,
      flanking words and background.

    Parameters
    ----------
    n_train, n_valid, n_test : int
        Clips per split (``n_test`` for each test split).
    seed : int
        Base seed; the splits use ``seed``, ``seed + 1``, ...
    test_snr_db : (float, float) or None
        SNR range of the test splits; ``None`` for clean test clips, in splits named ``test-flite-clean`` and
        ``test-recorded-clean`` (so that they sit beside the noisy ones).

    Examples
    --------
    >>> splits = default_splits(n_train=100)
    >>> sorted(splits), splits["train"].n_clips, splits["test-flite"].source
    (['test-flite', 'test-recorded', 'train', 'valid'], 100, 'flite')
    """
    clean = "-clean" if test_snr_db is None else ""
    return {
        "train": CorpusSpec("train", "espeak-ng", n_clips=n_train, seed=seed),
        "valid": CorpusSpec("valid", "espeak-ng", n_clips=n_valid, seed=seed + 1, n_speakers=128),
        f"test-flite{clean}": CorpusSpec(
            f"test-flite{clean}", "flite", n_clips=n_test, seed=seed + 2, snr_db=test_snr_db, n_speakers=40
        ),
        f"test-recorded{clean}": CorpusSpec(
            f"test-recorded{clean}", "recorded", n_clips=n_test, seed=seed + 3, snr_db=test_snr_db, n_speakers=1
        ),
    }


_HELD_OUT_GROUPS = ("asterisk", "hedgewars", "kajongg", "klettres")


def real_splits(
    n_train: int = 16000,
    n_valid: int = 2000,
    n_test: int = 1000,
    seed: int = 0,
    test_snr_db: tuple[float, float] | None = (-10.0, 10.0),
    real_fraction: float = 0.3,
) -> dict[str, CorpusSpec]:
    """The ``"real"`` corpus's splits: 159 words, synthetic and real speakers, whole real speakers held out.

    * ``train``: espeak-ng (256 speakers) and, for ``real_fraction`` of the clips, the real speakers not in
      :data:`~metamers.audio.recordings.HELD_OUT_SPEAKERS`; backgrounds from all 23 classes (training files of the
      real ones).
    * ``valid``: other espeak-ng speakers (128) and other clips of the same real speakers, for early stopping.
    * ``test-flite``: the flite voices, held out (40 speakers).
    * ``test-asterisk``, ``test-hedgewars``, ``test-kajongg``, ``test-klettres``: the held-out real speakers of
      each package; only the words each says are labels there.

    Every test split draws its real backgrounds from the held-out files (``background_part="test"``).

    Parameters
    ----------
    n_train, n_valid, n_test : int
        Clips per split (``n_test`` for each test split).
    seed : int
        Base seed; the splits use ``seed``, ``seed + 1``, ...
    test_snr_db : (float, float) or None
        SNR range of the test splits; ``None`` for clean test clips, in splits named ``test-...-clean``.
    real_fraction : float
        Share of the training and validation clips said by real speakers.

    Examples
    --------
    >>> splits = real_splits(n_train=100)
    >>> sorted(splits)
    ['test-asterisk', 'test-flite', 'test-hedgewars', 'test-kajongg', 'test-klettres', 'train', 'valid']
    >>> set(splits["train"].real_speakers) & set(splits["test-hedgewars"].real_speakers)
    set()
    """
    clean = "-clean" if test_snr_db is None else ""
    training = tuple(s for s in REAL_SPEAKERS if s not in HELD_OUT_SPEAKERS)
    common: dict[str, Any] = {"words": GROWN_VOCABULARY, "backgrounds": ALL_BACKGROUND_CLASSES}
    mixed = {**common, "real_speakers": training, "real_fraction": real_fraction}
    splits = {
        "train": CorpusSpec("train", "espeak-ng", n_clips=n_train, seed=seed, **mixed),
        "valid": CorpusSpec("valid", "espeak-ng", n_clips=n_valid, seed=seed + 1, n_speakers=128, **mixed),
    }
    test: dict[str, Any] = {**common, "n_clips": n_test, "snr_db": test_snr_db, "background_part": "test"}
    name = f"test-flite{clean}"
    splits[name] = CorpusSpec(name, "flite", seed=seed + 2, n_speakers=40, **test)
    for i, group in enumerate(_HELD_OUT_GROUPS):
        name = f"test-{group}{clean}"
        held = tuple(s for s in HELD_OUT_SPEAKERS if s.startswith(group))
        splits[name] = CorpusSpec(name, "real", seed=seed + 3 + i, real_speakers=held, **test)
    return splits


CORPORA = {"default": default_splits, "real": real_splits}
"""The named corpora: name -> the function giving their splits."""


def corpus_splits(corpus: str = "default", **kwargs: Any) -> dict[str, CorpusSpec]:
    """The splits of a named corpus (:data:`CORPORA`); keyword arguments go to its split function.

    Examples
    --------
    >>> sorted(corpus_splits("default", n_train=10))
    ['test-flite', 'test-recorded', 'train', 'valid']
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose from {tuple(CORPORA)}")
    return CORPORA[corpus](**kwargs)
