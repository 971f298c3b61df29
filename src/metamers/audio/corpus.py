"""The word-recognition corpus: 2-second clips labelled by the word at their midpoint, mixed with backgrounds.

Each clip follows the task of Feather et al. (2019): a word token is placed so that the clip's midpoint falls
inside it (its centre jitters around the midpoint by up to ``shift`` of its duration), other words of the same
voice may flank it as in continuous speech (never reaching the midpoint), and a background sound of one of
:data:`~metamers.audio.backgrounds.BACKGROUND_CLASSES` is added at an SNR drawn uniformly from ``snr_db``. The SNR is
computed over the whole clip (speech RMS including its pauses vs background RMS). The sum is set to ``clip_rms``
(scaled down further if its peak would reach 1) and stored as 16-bit integers.

A "speaker" is one (voice, speed, pitch) combination; a split draws ``n_speakers`` of them from its source's
voices and each clip takes its words from one speaker, so every (word, speaker) token is synthesised once and
reused. A real speaker (:mod:`metamers.audio.recordings`) says only some of the words: its clips take their labelled
word and flankers from those. Recorded backgrounds (:mod:`metamers.audio.ambience`) are excerpts of real files.
What a split holds is a :class:`~metamers.audio.corpus_spec.CorpusSpec`. A split is a folder::

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

import json
import os
import shutil
import subprocess
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from metamers.audio.ambience import BACKGROUND_PACKAGES, background_files, real_background, require_backgrounds
from metamers.audio.backgrounds import ALL_BACKGROUND_CLASSES, BACKGROUND_CLASSES, make_background
from metamers.audio.corpus_spec import (
    CORPORA,
    FORMAT_VERSION,
    CorpusSpec,
    corpus_splits,
    default_root,
    default_splits,
    real_splits,
)
from metamers.audio.recordings import SPEECH_PACKAGES, catalogue, real_token, require_package, speakers
from metamers.audio.signal import mix_at_snr, set_rms
from metamers.audio.speech import SOURCES, recorded_word, require_source, synthesize_word

__all__ = [
    "CORPORA",
    "FORMAT_VERSION",
    "INT16_SCALE",
    "CorpusSpec",
    "WordClips",
    "build_corpus",
    "corpus_splits",
    "default_root",
    "default_splits",
    "real_splits",
]

_FILES = ("waves.npy", "words.npy", "backgrounds.npy", "snr.npy", "speakers.npy", "spans.npy")
_GAP_SECONDS = (0.03, 0.3)  # pause between neighbouring words
_FLANKER_GAIN_DB = 3.0  # flanking words vary in level by up to this much around the labelled word
_PEAK = 0.99
INT16_SCALE = 32767.0
"""Stored waves are ``round(x * INT16_SCALE)`` as int16."""
_CHUNK = 32  # clips per task


@dataclass
class _Plan:
    speakers: list[dict[str, Any]]
    speaker: np.ndarray
    word: np.ndarray
    background: np.ndarray
    snr: np.ndarray
    jitter: np.ndarray
    clip_seed: np.ndarray
    words_of: list[list[int]] | None = None  # per speaker, the word indices it says (None: every word)


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as equal in count as possible, in random order."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def _plan(spec: CorpusSpec) -> _Plan:
    if spec.real_speakers:
        return _mixed_plan(spec)
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
    classes = np.array([ALL_BACKGROUND_CLASSES.index(name) for name in spec.backgrounds], dtype=np.int64)
    background = classes[_balanced(rng, n, len(classes))]
    if spec.snr_db is None:
        background = np.full(n, -1, dtype=np.int64)
        snr = np.full(n, np.inf, dtype=np.float32)
    else:
        snr = rng.uniform(*spec.snr_db, size=n).astype(np.float32)
    jitter = rng.uniform(-spec.shift, spec.shift, size=n)
    clip_seed = rng.integers(0, 2**62, size=n, dtype=np.int64)
    return _Plan(speakers, speaker, word, background, snr, jitter, clip_seed)


def _synthetic_speakers(spec: CorpusSpec, rng: np.random.Generator) -> list[dict[str, Any]]:
    voices, n = spec.voice_list, spec.n_speakers
    order = np.concatenate([rng.permutation(len(voices)) for _ in range(-(-n // len(voices)))])[:n]
    speeds = np.round(rng.uniform(*spec.speed, size=n)).astype(int)
    pitches = np.round(rng.uniform(*spec.pitch, size=n)).astype(int)
    return [
        {"engine": spec.source, "voice": voices[v], "speed": int(s), "pitch": int(p)}
        for v, s, p in zip(order, speeds, pitches, strict=True)
    ]


def _real_table(spec: CorpusSpec) -> dict[str, dict[str, Any]]:
    """``{speaker: {word: clip}}`` of the spec's real speakers, restricted to its words."""
    packages = tuple(dict.fromkeys(s.split(":", 1)[0] for s in spec.real_speakers))
    table = speakers(catalogue(packages))
    words = set(spec.words)
    out = {s: {w: c for w, c in table.get(s, {}).items() if w in words} for s in spec.real_speakers}
    if empty := [s for s, said in out.items() if not said]:
        raise ValueError(f"the real speakers {empty} say none of the split's words (or are not installed)")
    return out


def _mixed_plan(spec: CorpusSpec) -> _Plan:
    """The plan of a split with real speakers: ``real_fraction`` of the clips (all for ``"real"``) are theirs."""
    rng = np.random.default_rng(spec.seed)
    synthetic = [] if spec.source == "real" else _synthetic_speakers(spec, rng)
    table = _real_table(spec)
    index = {w: i for i, w in enumerate(spec.words)}
    real = [{"engine": "real", "voice": s, "speed": None, "pitch": None} for s in spec.real_speakers]
    words_of = [list(range(len(spec.words)))] * len(synthetic) + [
        sorted(index[w] for w in table[s]) for s in spec.real_speakers
    ]
    n = spec.n_clips
    n_real = n if spec.source == "real" else round(spec.real_fraction * n)
    is_real = rng.permutation(n) < n_real
    speaker = np.zeros(n, dtype=np.int64)
    word = np.zeros(n, dtype=np.int64)
    if synthetic:
        word[~is_real] = _balanced(rng, int((~is_real).sum()), len(spec.words))
        speaker[~is_real] = rng.integers(0, len(synthetic), size=int((~is_real).sum()))
    said = sorted({w for ws in words_of[len(synthetic) :] for w in ws})  # the words some real speaker says
    real_words = np.array(said, dtype=np.int64)[_balanced(rng, n_real, len(said))]
    sayers = {w: [k for k in range(len(synthetic), len(words_of)) if w in words_of[k]] for w in said}
    word[is_real] = real_words
    speaker[is_real] = [sayers[w][int(rng.integers(len(sayers[w])))] for w in real_words]
    classes = np.array([ALL_BACKGROUND_CLASSES.index(b) for b in spec.backgrounds], dtype=np.int64)
    background = classes[_balanced(rng, n, len(classes))]
    if spec.snr_db is None:
        background = np.full(n, -1, dtype=np.int64)
        snr = np.full(n, np.inf, dtype=np.float32)
    else:
        snr = rng.uniform(*spec.snr_db, size=n).astype(np.float32)
    jitter = rng.uniform(-spec.shift, spec.shift, size=n)
    clip_seed = rng.integers(0, 2**62, size=n, dtype=np.int64)
    return _Plan(synthetic + real, speaker, word, background, snr, jitter, clip_seed, words_of)


class _Tokens:
    """Thread-safe cache of word tokens per speaker, dropped once all of a speaker's clips are rendered."""

    def __init__(self, spec: CorpusSpec, plan: _Plan, chunks_per_speaker: dict[int, int]) -> None:
        self.spec, self.plan = spec, plan
        self.lock = threading.Lock()
        self.cache: dict[tuple[int, int], np.ndarray] = {}
        self.remaining = dict(chunks_per_speaker)
        self.real = _real_table(spec) if spec.real_speakers else {}

    def get(self, speaker: int, word: int) -> np.ndarray:
        key = (speaker, word)
        with self.lock:
            token = self.cache.get(key)
        if token is None:
            # Computed outside the lock; two threads may both synthesise a token, with the same result.
            info, text = self.plan.speakers[speaker], self.spec.words[word]
            if info["engine"] == "recorded":
                wave = recorded_word(text, self.spec.sr)
            elif info["engine"] == "real":
                wave = real_token(self.real[info["voice"]][text], self.spec.sr)
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
        said = range(len(spec.words)) if plan.words_of is None else plan.words_of[speaker]
        others = [w for w in said if w != word]
        for side in (-1, 1) if others else ():
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
        noise = _background(spec, int(plan.background[i]), int(plan.clip_seed[i])).double()
        x = mix_at_snr(x, noise, float(plan.snr[i]))
    x = set_rms(x, spec.clip_rms)
    peak = float(x.abs().max())
    if peak > _PEAK:
        x = x * (_PEAK / peak)
    wave = np.round(x.numpy() * INT16_SCALE).astype(np.int16)
    return wave, (start, start + len(target))


def _background(spec: CorpusSpec, index: int, seed: int) -> torch.Tensor:
    """The background of a clip: a synthetic class (index below 8) or an excerpt of a recorded one."""
    if index < len(BACKGROUND_CLASSES):
        return make_background(index, spec.n_samples, spec.sr, torch.Generator().manual_seed(seed))
    return real_background(ALL_BACKGROUND_CLASSES[index], spec.n_samples, spec.sr, seed, spec.background_part)


def _tool_version(source: str) -> str:
    if source == "real":
        return "recordings from Debian packages"
    if source == "recorded":
        return "asterisk-core-sounds-en-wav"
    try:
        out = subprocess.run([source, "--version"], capture_output=True, text=True, check=False, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def _real_backgrounds(spec: CorpusSpec) -> list[str]:
    return [] if spec.snr_db is None else [b for b in spec.backgrounds if b not in BACKGROUND_CLASSES]


def _sources(spec: CorpusSpec) -> dict[str, Any]:
    sources = {} if spec.source == "real" else {spec.source: SOURCES[spec.source]}
    for package in dict.fromkeys(s.split(":", 1)[0] for s in spec.real_speakers):
        info = SPEECH_PACKAGES[package]
        sources[package] = {"package": f"{package} (Debian)", "license": info.license, "provenance": info.provenance}
    return sources


def _background_sources(spec: CorpusSpec) -> dict[str, Any]:
    """The recorded background classes' files and licenses (nothing for a corpus of synthetic backgrounds)."""
    if not (classes := _real_backgrounds(spec)):
        return {}
    out = {}
    for name in classes:
        files = background_files(name, spec.background_part)
        packages = list(dict.fromkeys(p for p, _ in files))
        out[name] = {
            "files": [f"{p}:{path}" for p, path in files],
            "licenses": {p: BACKGROUND_PACKAGES[p].license for p in packages},
        }
    return {"recorded_backgrounds": {"part": spec.background_part, "classes": out}}


def _require(spec: CorpusSpec) -> None:
    """Every package the spec needs is installed (a one-line error naming the missing one otherwise)."""
    if spec.source != "real":
        require_source(spec.source)
    for package in dict.fromkeys(s.split(":", 1)[0] for s in spec.real_speakers):
        require_package(package)
    for name in _real_backgrounds(spec):
        require_backgrounds(name)


def _meta(spec: CorpusSpec, plan: _Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "spec_hash": spec.digest(),
        "vocabulary": list(spec.words),
        "background_classes": list(spec.background_classes),
        "n_clips": spec.n_clips,
        "sr": spec.sr,
        "n_samples": spec.n_samples,
        "int16_scale": INT16_SCALE,
        "source": spec.source,
        "sources": _sources(spec),
        "backgrounds_license": "synthesised by metamers.audio.backgrounds (no third-party material)",
        **_background_sources(spec),
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
        If the spec's speech source, one of its real speakers' packages or a recorded background's package is not
        installed.
    """
    root = Path(root) if root is not None else default_root()
    final = root / spec.split
    if _is_built(final, spec):
        return final
    _require(spec)
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
