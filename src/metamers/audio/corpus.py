"""The word-recognition corpus: 2-second clips labelled by the word at their midpoint, mixed with backgrounds.

Each clip follows the task of Feather et al. (2019): a word token is placed so that the clip's midpoint falls
inside it (its centre jitters around the midpoint by up to ``shift`` of its duration), other words of the same
voice may flank it as in continuous speech (never reaching the midpoint), and a background sound of one of
:data:`~metamers.audio.backgrounds.BACKGROUND_CLASSES` is added at an SNR drawn uniformly from ``snr_db``. The SNR is
computed over the whole clip (speech RMS including its pauses vs background RMS). The sum is set to ``clip_rms``
(scaled down further if its peak would reach 1) and stored as 16-bit integers.

A "speaker" is one (voice, speed, pitch) combination; a split draws ``n_speakers`` of them from its source's
voices and each clip takes its words from one speaker, so every (word, speaker) token is synthesised once and
reused. A split is a folder::

    <root>/<split>/waves.npy        int16 [n_clips, sr * duration]  (divide by 32767 for [-1, 1])
                   words.npy        int64 [n_clips]  index into meta["vocabulary"]
                   backgrounds.npy  int64 [n_clips]  index into meta["background_classes"], -1 for clean clips
                   snr.npy          float32 [n_clips]  dB, +inf for clean clips
                   speakers.npy     int64 [n_clips]  index into meta["speakers"]
                   spans.npy        int64 [n_clips, 2]  first and one-past-last sample of the labelled word
                   meta.json        spec, its hash, vocabulary, classes, sources and licenses, speakers

Building is deterministic: the same spec gives byte-identical arrays on the same machine and library versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from metamers.audio.backgrounds import BACKGROUND_CLASSES, background_index, make_background
from metamers.audio.signal import mix_at_snr, set_rms
from metamers.audio.speech import (
    ESPEAK_VOICES,
    FLITE_VOICES,
    RECORDED_VOICES,
    RECORDINGS,
    SOURCES,
    VOCABULARY,
    recorded_word,
    require_source,
    synthesize_word,
)

__all__ = ["FORMAT_VERSION", "INT16_SCALE", "CorpusSpec", "WordClips", "build_corpus", "default_root", "default_splits"]

FORMAT_VERSION = 1
"""Changes whenever the rendering changes, so that cached corpora built by older code are rebuilt."""

_FILES = ("waves.npy", "words.npy", "backgrounds.npy", "snr.npy", "speakers.npy", "spans.npy")
_GAP_SECONDS = (0.03, 0.3)  # pause between neighbouring words
_FLANKER_GAIN_DB = 3.0  # flanking words vary in level by up to this much around the labelled word
_PEAK = 0.99
INT16_SCALE = 32767.0
"""Stored waves are ``round(x * INT16_SCALE)`` as int16."""
_CHUNK = 32  # clips per task


def default_root() -> Path:
    """Where corpora are built by default: ``$METAMERS_CORPUS`` or ``~/.cache/metamers/corpus``.

    Examples
    --------
    >>> default_root().name
    'corpus'
    """
    env = os.environ.get("METAMERS_CORPUS")
    return Path(env) if env else Path.home() / ".cache" / "metamers" / "corpus"


@dataclass(frozen=True)
class CorpusSpec:
    """Everything that determines a split of the corpus (JSON-serialisable with :meth:`to_dict`).

    Parameters
    ----------
    split : str
        Folder name, e.g. ``"train"``.
    source : str
        ``"espeak-ng"``, ``"flite"`` or ``"recorded"``.
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
        The voices speakers are drawn from; ``None`` for the source's default (:data:`ESPEAK_VOICES`,
        :data:`FLITE_VOICES` or the single recorded speaker).
    speed : (float, float)
        Range of speaking rates in words per minute (synthetic sources only).
    pitch : (float, float)
        Range of pitch settings, 0-99 with 50 the voice's own (synthetic sources only).
    n_speakers : int
        Number of (voice, speed, pitch) speakers drawn (always 1 for ``"recorded"``).
    words : tuple of str
        The vocabulary; labels index into it.
    backgrounds : tuple of str
        Background classes drawn from (labels index into :data:`BACKGROUND_CLASSES` all the same).

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

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("speed", "pitch", "words", "backgrounds"):
            fix(name, tuple(getattr(self, name)))
        if self.snr_db is not None:
            fix("snr_db", tuple(float(v) for v in self.snr_db))
        if self.voices is not None:
            fix("voices", tuple(self.voices))
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; choose from {tuple(SOURCES)}")
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
        for name in self.backgrounds:
            background_index(name)
        if self.voices is not None and not self.voices:
            raise ValueError("voices must be None or non-empty")

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return round(self.sr * self.duration)

    @property
    def voice_list(self) -> tuple[str, ...]:
        """The voices actually used (``voices`` or the source's default)."""
        if self.voices is not None:
            return self.voices
        return {"espeak-ng": ESPEAK_VOICES, "flite": FLITE_VOICES, "recorded": RECORDED_VOICES}[self.source]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

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
    """The standard splits: espeak-ng for training and validation, flite and real recordings held out.

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


@dataclass
class _Plan:
    speakers: list[dict[str, Any]]
    speaker: np.ndarray
    word: np.ndarray
    background: np.ndarray
    snr: np.ndarray
    jitter: np.ndarray
    clip_seed: np.ndarray


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as equal in count as possible, in random order."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def _plan(spec: CorpusSpec) -> _Plan:
    rng = np.random.default_rng(spec.seed)
    voices = spec.voice_list
    if spec.source == "recorded":
        speakers = [{"engine": "recorded", "voice": voices[0], "speed": None, "pitch": None}]
    else:
        n = spec.n_speakers
        order = np.concatenate([rng.permutation(len(voices)) for _ in range(-(-n // len(voices)))])[:n]
        speeds = np.round(rng.uniform(*spec.speed, size=n)).astype(int)
        pitches = np.round(rng.uniform(*spec.pitch, size=n)).astype(int)
        speakers = [
            {"engine": spec.source, "voice": voices[v], "speed": int(s), "pitch": int(p)}
            for v, s, p in zip(order, speeds, pitches, strict=True)
        ]
    n = spec.n_clips
    speaker = rng.integers(0, len(speakers), size=n).astype(np.int64)
    word = _balanced(rng, n, len(spec.words))
    classes = np.array([background_index(name) for name in spec.backgrounds], dtype=np.int64)
    background = classes[_balanced(rng, n, len(classes))]
    if spec.snr_db is None:
        background = np.full(n, -1, dtype=np.int64)
        snr = np.full(n, np.inf, dtype=np.float32)
    else:
        snr = rng.uniform(*spec.snr_db, size=n).astype(np.float32)
    jitter = rng.uniform(-spec.shift, spec.shift, size=n)
    clip_seed = rng.integers(0, 2**62, size=n, dtype=np.int64)
    return _Plan(speakers, speaker, word, background, snr, jitter, clip_seed)


class _Tokens:
    """Thread-safe cache of word tokens per speaker, dropped once all of a speaker's clips are rendered."""

    def __init__(self, spec: CorpusSpec, plan: _Plan, chunks_per_speaker: dict[int, int]) -> None:
        self.spec, self.plan = spec, plan
        self.lock = threading.Lock()
        self.cache: dict[tuple[int, int], np.ndarray] = {}
        self.remaining = dict(chunks_per_speaker)

    def get(self, speaker: int, word: int) -> np.ndarray:
        key = (speaker, word)
        with self.lock:
            token = self.cache.get(key)
        if token is None:
            # Computed outside the lock; two threads may both synthesise a token, with the same result.
            info, text = self.plan.speakers[speaker], self.spec.words[word]
            if info["engine"] == "recorded":
                wave = recorded_word(text, self.spec.sr)
            else:
                wave = synthesize_word(text, info["engine"], info["voice"], info["speed"], info["pitch"], self.spec.sr)
            token = wave.double().numpy()
            with self.lock:
                token = self.cache.setdefault(key, token)
        return token

    def done(self, speaker: int) -> None:
        with self.lock:
            self.remaining[speaker] -= 1
            if self.remaining[speaker] == 0:
                for key in [k for k in self.cache if k[0] == speaker]:
                    del self.cache[key]


def _add(buffer: np.ndarray, token: np.ndarray, start: int) -> None:
    """Add ``token`` into ``buffer`` starting at ``start``, cropped to the buffer."""
    lo, hi = max(start, 0), min(start + len(token), len(buffer))
    if hi > lo:
        buffer[lo:hi] += token[lo - start : hi - start]


def _render(spec: CorpusSpec, plan: _Plan, tokens: _Tokens, i: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One clip (int16) and the span of its labelled word."""
    n_samples, sr = spec.n_samples, spec.sr
    rng = np.random.default_rng(int(plan.clip_seed[i]))
    speaker, word = int(plan.speaker[i]), int(plan.word[i])
    target = tokens.get(speaker, word)
    start = round(n_samples / 2 + plan.jitter[i] * len(target) - len(target) / 2)
    speech = np.zeros(n_samples)
    _add(speech, target, start)
    if spec.flankers:
        others = [w for w in range(len(spec.words)) if w != word]
        for side in (-1, 1):
            edge = start if side < 0 else start + len(target)
            while 0 < edge < n_samples:
                token = tokens.get(speaker, others[int(rng.integers(len(others)))])
                gain = 10 ** (rng.uniform(-_FLANKER_GAIN_DB, _FLANKER_GAIN_DB) / 20)
                gap = round(rng.uniform(*_GAP_SECONDS) * sr)
                begin = edge - gap - len(token) if side < 0 else edge + gap
                _add(speech, gain * token, begin)
                edge = begin if side < 0 else begin + len(token)
    x = torch.from_numpy(speech)
    if plan.background[i] >= 0:
        generator = torch.Generator().manual_seed(int(plan.clip_seed[i]))
        noise = make_background(int(plan.background[i]), n_samples, sr, generator).double()
        x = mix_at_snr(x, noise, float(plan.snr[i]))
    x = set_rms(x, spec.clip_rms)
    peak = float(x.abs().max())
    if peak > _PEAK:
        x = x * (_PEAK / peak)
    wave = np.round(x.numpy() * INT16_SCALE).astype(np.int16)
    return wave, (start, start + len(target))


def _tool_version(source: str) -> str:
    if source == "recorded":
        return "asterisk-core-sounds-en-wav"
    try:
        out = subprocess.run([source, "--version"], capture_output=True, text=True, check=False, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def _meta(spec: CorpusSpec, plan: _Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "spec_hash": spec.digest(),
        "vocabulary": list(spec.words),
        "background_classes": list(BACKGROUND_CLASSES),
        "n_clips": spec.n_clips,
        "sr": spec.sr,
        "n_samples": spec.n_samples,
        "int16_scale": INT16_SCALE,
        "source": spec.source,
        "sources": {spec.source: SOURCES[spec.source]},
        "backgrounds_license": "synthesised by metamers.audio.backgrounds (no third-party material)",
        "tool_version": _tool_version(spec.source),
        "speakers": plan.speakers,
        "files": {
            "waves.npy": "int16 [n_clips, n_samples]; divide by int16_scale for [-1, 1]",
            "words.npy": "int64 [n_clips]; index into vocabulary (the word at the clip's midpoint)",
            "backgrounds.npy": "int64 [n_clips]; index into background_classes, -1 for clean clips",
            "snr.npy": "float32 [n_clips]; SNR in dB over the whole clip, inf for clean clips",
            "speakers.npy": "int64 [n_clips]; index into speakers",
            "spans.npy": "int64 [n_clips, 2]; first and one-past-last sample of the labelled word (can pass the edges)",
        },
    }


def _is_built(folder: Path, spec: CorpusSpec) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("spec_hash") == spec.digest() and all((folder / name).is_file() for name in _FILES)


def build_corpus(
    spec: CorpusSpec, root: str | Path | None = None, progress: bool = True, workers: int | None = None
) -> Path:
    """Build one split (or reuse it, if already built from the same spec) and return its folder.

    The split is written into a temporary folder next to its destination and renamed into place when complete, so
    an interrupted build never leaves a folder that looks finished. ``meta.json`` records the spec's hash; a folder
    whose hash matches is returned as is.

    Parameters
    ----------
    spec : CorpusSpec
        What to build.
    root : str or Path, optional
        Parent folder (default :func:`default_root`); the split goes to ``root / spec.split``.
    progress : bool
        Show a tqdm progress bar.
    workers : int, optional
        Threads running the synthesisers and rendering (default: 2-4, by CPU count).

    Returns
    -------
    Path
        ``root / spec.split``.

    Raises
    ------
    SpeechSourceMissing
        If the spec's speech source is not installed.
    """
    root = Path(root) if root is not None else default_root()
    final = root / spec.split
    if _is_built(final, spec):
        return final
    require_source(spec.source)
    root.mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, max(2, os.cpu_count() or 2))
    tmp = root / f".{spec.split}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        plan = _plan(spec)
        _write(spec, plan, tmp, progress, workers)
        (tmp / "meta.json").write_text(json.dumps(_meta(spec, plan), indent=1))
        _replace(tmp, final, spec)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write(spec: CorpusSpec, plan: _Plan, folder: Path, progress: bool, workers: int) -> None:
    n, n_samples = spec.n_clips, spec.n_samples
    waves = np.lib.format.open_memmap(folder / "waves.npy", mode="w+", dtype=np.int16, shape=(n, n_samples))
    spans = np.zeros((n, 2), dtype=np.int64)
    # Tasks: clips of one speaker, in chunks, so that a speaker's tokens are made once and dropped when done.
    order = np.argsort(plan.speaker, kind="stable")
    chunks: list[np.ndarray] = []
    for speaker in np.unique(plan.speaker):
        members = order[plan.speaker[order] == speaker]
        chunks += [members[k : k + _CHUNK] for k in range(0, len(members), _CHUNK)]
    per_speaker: dict[int, int] = {}
    for chunk in chunks:
        per_speaker[int(plan.speaker[chunk[0]])] = per_speaker.get(int(plan.speaker[chunk[0]]), 0) + 1
    tokens = _Tokens(spec, plan, per_speaker)

    def task(chunk: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[tuple[int, int]]]:
        rendered = [_render(spec, plan, tokens, int(i)) for i in chunk]
        tokens.done(int(plan.speaker[chunk[0]]))
        return chunk, [w for w, _ in rendered], [s for _, s in rendered]

    bar = tqdm(total=n, desc=f"corpus {spec.split} ({spec.source})", unit="clip", disable=not progress)
    pending: set[Future] = set()
    queue = iter(chunks)
    # The parallelism is across clips; torch's own threads would only compete with the worker threads.
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corpus") as pool:
        try:
            while True:
                while len(pending) < 2 * workers and (chunk := next(queue, None)) is not None:
                    pending.add(pool.submit(task, chunk))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    chunk, rendered, chunk_spans = future.result()
                    for i, wave, span in zip(chunk, rendered, chunk_spans, strict=True):
                        waves[i] = wave
                        spans[i] = span
                    bar.update(len(chunk))
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            bar.close()
            torch.set_num_threads(torch_threads)
    waves.flush()
    del waves
    np.save(folder / "words.npy", plan.word)
    np.save(folder / "backgrounds.npy", plan.background)
    np.save(folder / "snr.npy", plan.snr)
    np.save(folder / "speakers.npy", plan.speaker)
    np.save(folder / "spans.npy", spans)


def _replace(tmp: Path, final: Path, spec: CorpusSpec) -> None:
    """Move the finished ``tmp`` to ``final``, replacing an outdated corpus there."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.rename(old)
    try:
        tmp.rename(final)
    except OSError:
        if not _is_built(final, spec):  # someone else finished the same build first: keep theirs
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class WordClips(Dataset):
    """A built split as a dataset of ``(wave, word, background)``.

    ``wave`` is float32 ``[n_samples]`` in [-1, 1], ``word`` an index into :attr:`words` and ``background`` an
    index into :attr:`background_classes` (-1 for a clean clip). The waveforms are memory-mapped, opened lazily in
    each process (so DataLoader workers do not copy them).

    Parameters
    ----------
    root : str or Path, optional
        Folder holding the splits (default :func:`default_root`).
    split : str
        Split name.

    Attributes
    ----------
    words : tuple of str
        The vocabulary (class names of the word labels).
    background_classes : tuple of str
        Class names of the background labels.
    meta : dict
        The split's ``meta.json``.
    word_labels, background_labels, snr, speakers, spans : numpy.ndarray
        Per-clip arrays.
    """

    def __init__(self, root: str | Path | None, split: str) -> None:
        self.path = (Path(root) if root is not None else default_root()) / split
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no corpus split at {self.path}; build it with build_corpus()")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.words: tuple[str, ...] = tuple(self.meta["vocabulary"])
        self.background_classes: tuple[str, ...] = tuple(self.meta["background_classes"])
        self.sr: int = int(self.meta["sr"])
        self.spec = CorpusSpec.from_dict(self.meta["spec"])
        self.word_labels = np.load(self.path / "words.npy")
        self.background_labels = np.load(self.path / "backgrounds.npy")
        self.snr = np.load(self.path / "snr.npy")
        self.speakers = np.load(self.path / "speakers.npy")
        self.spans = np.load(self.path / "spans.npy")
        self._scale = float(self.meta.get("int16_scale", INT16_SCALE))
        self._waves: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.word_labels)

    @property
    def waves(self) -> np.ndarray:
        """The int16 waveforms ``[n_clips, n_samples]``, memory-mapped."""
        if self._waves is None:
            self._waves = np.load(self.path / "waves.npy", mmap_mode="r")
        return self._waves

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Waveforms ``start:stop`` as float32 ``[n, n_samples]`` in [-1, 1]."""
        return torch.from_numpy(np.asarray(self.waves[start:stop], dtype=np.float32) / np.float32(self._scale))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        wave = torch.from_numpy(self.waves[index].astype(np.float32) / np.float32(self._scale))
        return wave, int(self.word_labels[index]), int(self.background_labels[index])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_waves"] = None
        return state

    def __repr__(self) -> str:
        return f"WordClips({str(self.path)!r}, {len(self)} clips, {len(self.words)} words, source={self.spec.source})"
