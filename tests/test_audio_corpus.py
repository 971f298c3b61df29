"""The offline speech corpus: signal helpers, speech sources, backgrounds, corpus building and the dataset."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch
from scipy import signal as scipy_signal

from metamers.audio import corpus as corpus_module
from metamers.audio.backgrounds import BACKGROUND_CLASSES, background_index, make_background
from metamers.audio.corpus import CorpusSpec, WordClips, build_corpus, default_splits
from metamers.audio.signal import mix_at_snr, read_wav, resample, rms, set_rms, write_wav
from metamers.audio.speech import (
    ESPEAK_ACCENTS,
    ESPEAK_VARIANTS,
    FLITE_VOICES,
    RECORDINGS,
    SOURCES,
    TOKEN_RMS,
    VOCABULARY,
    SpeechSourceMissing,
    asterisk_dir,
    recorded_word,
    synthesize_word,
)

SR = 20000


def band_fraction(x: torch.Tensor, sr: int, lo: float, hi: float) -> float:
    power = torch.fft.rfft(x.double()).abs().pow(2)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / sr)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


# --- signal helpers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sr_in", "sr_out", "freq"), [(16000, 20000, 440.0), (22050, 20000, 1000.0), (20000, 8000, 700.0)]
)
def test_resample_keeps_sine_frequency_and_length_ratio(sr_in, sr_out, freq):
    n = 3 * sr_in + 7  # odd, not a multiple of either rate
    t = torch.arange(n, dtype=torch.float64) / sr_in
    y = resample(torch.sin(2 * math.pi * freq * t), sr_in, sr_out)
    assert y.shape[-1] == round(n * sr_out / sr_in)
    spectrum = torch.fft.rfft(y * torch.hann_window(y.shape[-1], dtype=torch.float64)).abs()
    peak_hz = float(spectrum.argmax()) * sr_out / y.shape[-1]
    assert abs(peak_hz - freq) < 1.0
    assert abs(float(rms(y)) - 1 / math.sqrt(2)) < 0.01  # amplitude kept


def test_resample_matches_scipy_and_removes_content_above_new_nyquist():
    g = torch.Generator().manual_seed(0)
    for n in (2, 99, 100, 1001):
        x = torch.randn(2, n, generator=g, dtype=torch.float64)
        for sr_in, sr_out in ((8000, 20000), (22050, 20000), (20000, 8000), (3, 2)):
            y = resample(x, sr_in, sr_out)
            assert np.allclose(y.numpy(), scipy_signal.resample(x.numpy(), y.shape[-1], axis=-1), atol=1e-9)
    t = torch.arange(20000, dtype=torch.float64) / 20000
    tone = torch.sin(2 * math.pi * 6000 * t)  # above 4 kHz, the Nyquist frequency at 8 kHz
    assert float(rms(resample(tone, 20000, 8000))) < 1e-6
    assert resample(torch.zeros(0), 8000, 20000).shape == (0,)
    assert torch.allclose(resample(torch.ones(1), 8000, 20000), torch.ones(3))  # 2.5 samples: halves round up
    assert resample(torch.zeros(3, dtype=torch.int16), 10, 20).dtype == torch.float32


@pytest.mark.parametrize("snr", [-10.0, -3.3, 0.0, 7.5, 10.0])
def test_mix_at_snr_is_exact(snr):
    g = torch.Generator().manual_seed(1)
    speech = set_rms(torch.randn(2, SR, generator=g), 0.3)
    noise = make_background("pink noise", SR, SR, g).expand(2, -1)
    mixed = mix_at_snr(speech, noise, snr)
    measured = 20 * torch.log10(rms(speech) / rms(mixed - speech))
    assert torch.allclose(measured, torch.full_like(measured, snr), atol=0.1)
    assert torch.allclose(rms(speech), torch.full((2,), 0.3), atol=1e-6)  # the speech keeps its level


def test_wav_round_trip_and_clipping_safe_writing(tmp_path):
    t = torch.arange(4000) / 8000
    tone = 0.5 * torch.sin(2 * math.pi * 300 * t)
    write_wav(tmp_path / "a.wav", tone, 8000)
    back = read_wav(tmp_path / "a.wav", 8000)
    assert back.dtype == torch.float32 and torch.allclose(back, tone, atol=1e-4)
    assert read_wav(tmp_path / "a.wav", 20000).shape == (10000,)
    with pytest.warns(UserWarning, match="scaled down"):
        write_wav(tmp_path / "loud.wav", 4 * tone, 8000)
    loud = read_wav(tmp_path / "loud.wav", 8000)
    assert abs(float(loud.abs().max()) - 1.0) < 1e-3  # scaled to a peak of 1, not clipped
    assert torch.allclose(loud, tone / 0.5 * float(loud.abs().max()), atol=2e-4)


# --- speech sources ------------------------------------------------------------------------------------------------


def check_token(x: torch.Tensor) -> None:
    assert x.dtype == torch.float32 and x.ndim == 1
    assert 0.1 * SR < x.shape[0] < 1.6 * SR
    assert abs(float(rms(x)) - TOKEN_RMS) < 1e-4
    assert torch.isfinite(x).all() and float(x.abs().max()) < 1.0


def test_vocabulary_and_recordings():
    assert 55 <= len(VOCABULARY) <= 65 and len(set(VOCABULARY)) == len(VOCABULARY)
    assert set(RECORDINGS) == set(VOCABULARY)
    assert all((asterisk_dir() / path).is_file() for path in RECORDINGS.values())
    assert RECORDINGS["january"] == "digits/mon-0.wav" and RECORDINGS["zulu"] == "phonetic/z_p.wav"
    assert set(SOURCES) == {"espeak-ng", "flite", "recorded"}
    assert "CC-BY-SA-3.0" in SOURCES["recorded"]["license"] and "GPL-3.0" in SOURCES["espeak-ng"]["license"]


def test_espeak_voices_say_words_at_20khz():
    voices = [f"{accent}+{ESPEAK_VARIANTS[i % len(ESPEAK_VARIANTS)]}" for i, accent in enumerate(ESPEAK_ACCENTS)]
    voices += [f"en-us+{variant}" for variant in ESPEAK_VARIANTS]
    for i, voice in enumerate(voices):
        check_token(synthesize_word(VOCABULARY[i % len(VOCABULARY)], "espeak-ng", voice, speed=160, pitch=40))
    slow = synthesize_word("seven", speed=120)
    fast = synthesize_word("seven", speed=220)
    assert slow.shape[0] > 1.3 * fast.shape[0]
    assert band_fraction(slow, SR, 5000, 10000) > 1e-4  # wide-band: espeak-ng runs at 22.05 kHz


def test_flite_voices_and_recordings_say_words():
    for voice in FLITE_VOICES:
        check_token(synthesize_word("xray", "flite", voice, speed=150, pitch=60))
    check_token(synthesize_word("september", "flite", "slt", speed=200))
    for word in VOCABULARY:
        check_token(recorded_word(word))
    assert band_fraction(recorded_word("six"), SR, 4100, 10000) < 1e-4  # 8 kHz telephone recordings
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        synthesize_word("one", voice="no-such-voice")
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        synthesize_word("one", voice="en-us+m99")
    with pytest.raises(ValueError, match="unknown flite voice"):
        synthesize_word("one", "flite", "nosuch")


def test_missing_sources_are_reported_with_the_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpeechSourceMissing, match="apt-get install espeak-ng"):
        synthesize_word("one")
    with pytest.raises(SpeechSourceMissing, match="apt-get install flite"):
        synthesize_word("one", "flite", "slt")
    with pytest.raises(SpeechSourceMissing, match="espeak-ng"):
        build_corpus(CorpusSpec("x", "espeak-ng", n_clips=2, seed=0), tmp_path / "corpus", progress=False)
    assert not (tmp_path / "corpus" / "x").exists()
    monkeypatch.setenv("METAMERS_ASTERISK_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SpeechSourceMissing, match="apt-get install asterisk-core-sounds-en-wav"):
        recorded_word("one")
    assert issubclass(SpeechSourceMissing, RuntimeError)


# --- backgrounds ---------------------------------------------------------------------------------------------------


def draw(name: str | int, seed: int, n: int = SR) -> torch.Tensor:
    return make_background(name, n, SR, torch.Generator().manual_seed(seed))


def slope_db_per_octave(x: torch.Tensor, lo: float = 100.0, hi: float = 6400.0) -> float:
    freqs, power = scipy_signal.welch(x.numpy(), fs=SR, nperseg=2048)
    keep = (freqs >= lo) & (freqs <= hi)
    return float(np.polyfit(np.log2(freqs[keep]), 10 * np.log10(power[keep]), 1)[0])


def frame_rms(x: torch.Tensor, frame: int = 200) -> torch.Tensor:
    return x[: x.shape[0] // frame * frame].reshape(-1, frame).pow(2).mean(1).sqrt()


def dominant_hz(x: torch.Tensor, frame: int = 1000) -> np.ndarray:
    frames = x[: x.shape[0] // frame * frame].reshape(-1, frame) * torch.hann_window(frame)
    return torch.fft.rfft(frames, n=8 * frame).abs().argmax(1).numpy() * SR / (8 * frame)


@pytest.fixture
def one_thread():
    """Backgrounds are small tensors: torch's thread pool only adds overhead, a lot of it on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_each_background_class_is_random_non_silent_and_has_its_character(one_thread):
    for name in BACKGROUND_CLASSES:
        a, b = draw(name, 1), draw(name, 2)
        assert a.shape == (SR,) and a.dtype == torch.float32 and torch.isfinite(a).all()
        assert abs(float(rms(a)) - 1) < 1e-4
        assert not torch.allclose(a, b)  # random per draw
        assert torch.equal(a, draw(name, 1))  # and reproducible
    assert abs(slope_db_per_octave(draw("white noise", 0))) < 0.5
    assert -4.0 < slope_db_per_octave(draw("pink noise", 0)) < -2.0
    assert -7.5 < slope_db_per_octave(draw("brown noise", 0)) < -4.5
    for seed in range(3):
        hum = draw("hum", seed)
        peak = float(np.median(dominant_hz(hum, 4000)))
        assert peak < 1500 and min(abs(peak / 50 - round(peak / 50)), abs(peak / 60 - round(peak / 60))) < 0.02
        clicks = draw("clicks", seed)
        assert float(clicks.pow(4).mean() / clicks.pow(2).mean().pow(2)) > 6  # impulsive: high kurtosis
        envelope = frame_rms(draw("amplitude-modulated noise", seed), 400)
        assert float(envelope.std() / envelope.mean()) > 0.3
        sweep = dominant_hz(draw("siren", seed, 2 * SR))
        assert sweep.max() / sweep.min() > 1.15  # the frequency moves
        melody = dominant_hz(draw("tones", seed, 2 * SR), 500)
        assert len(np.unique(np.round(melody, -1))) >= 3  # several notes
    assert background_index("siren") == 7 and background_index(0) == 0
    with pytest.raises(ValueError, match="unknown background"):
        make_background("thunder", 10, SR)


def test_background_classes_are_distinguishable(one_thread):
    """Leave-one-out nearest neighbour on a few spectral and temporal features tells the classes apart."""

    def features(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs().pow(2) + 1e-10
        freqs = torch.fft.rfftfreq(1024, 1 / SR)
        edges = torch.logspace(math.log10(40), math.log10(10000), 9)
        long_term = spec.mean(1)
        bands = torch.stack([long_term[(freqs >= lo) & (freqs < hi)].mean() for lo, hi in itertools.pairwise(edges)])
        bands = bands.log10() - bands.log10().max()
        envelope = spec.sum(0)
        flatness = (spec.log().mean(0).exp() / spec.mean(0)).mean()
        return torch.cat([bands / 2, torch.stack([envelope.std() / envelope.mean(), 3 * flatness])])

    x = torch.stack([features(draw(c, 100 * c + s)) for c in range(len(BACKGROUND_CLASSES)) for s in range(5)])
    labels = np.repeat(np.arange(len(BACKGROUND_CLASSES)), 5)
    distances = torch.cdist(x, x).fill_diagonal_(float("inf"))
    accuracy = float(np.mean(labels[distances.argmin(1).numpy()] == labels))
    assert accuracy >= 0.85


# --- the corpus ----------------------------------------------------------------------------------------------------

TINY = {"n_clips": 12, "n_speakers": 3, "seed": 0}


def arrays(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in corpus_module._FILES}


def test_corpus_builds_deterministically_is_cached_and_replaced_on_change(tmp_path):
    spec = CorpusSpec("tiny", "espeak-ng", **TINY)
    first = build_corpus(spec, tmp_path / "a", progress=False)
    second = build_corpus(spec, tmp_path / "b", progress=False, workers=2)
    assert arrays(first) == arrays(second)  # byte-identical across builds

    data = WordClips(tmp_path / "a", "tiny")
    assert len(data) == 12 and data.words == VOCABULARY and data.background_classes == BACKGROUND_CLASSES
    wave, word, background = data[0]
    assert wave.shape == (2 * SR,) and wave.dtype == torch.float32
    assert 0 <= word < len(VOCABULARY) and 0 <= background < len(BACKGROUND_CLASSES)
    assert data.spec == spec and data.meta["spec_hash"] == spec.digest()
    assert set(data.meta["sources"]) == {"espeak-ng"} and len(data.meta["speakers"]) == 3
    assert np.all((data.snr >= -10) & (data.snr <= 10))
    levels = rms(torch.stack([data[i][0] for i in range(len(data))]))
    assert torch.all(levels <= 0.0501) and torch.all(levels > 0.02)
    assert all(data[i][0].abs().max() < 1 for i in range(len(data)))

    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    start = time.perf_counter()
    assert build_corpus(spec, tmp_path / "a", progress=False) == first
    assert time.perf_counter() - start < 0.5
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps  # reused, not rewritten

    other = CorpusSpec("tiny", "espeak-ng", **{**TINY, "seed": 1})
    assert build_corpus(other, tmp_path / "a", progress=False) == first
    assert WordClips(tmp_path / "a", "tiny").meta["spec_hash"] == other.digest()
    assert arrays(first)["waves.npy"] != arrays(second)["waves.npy"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["tiny"]  # no temporary folders left


def test_the_labelled_word_sits_at_the_midpoint(tmp_path):
    spec = CorpusSpec("clean", "espeak-ng", n_clips=12, n_speakers=3, seed=5, snr_db=None, flankers=False)
    data = WordClips(build_corpus(spec, tmp_path, progress=False).parent, "clean")
    assert np.all(data.background_labels == -1) and np.all(np.isinf(data.snr))
    mid = SR
    for i in range(len(data)):
        wave, word, _ = data[i]
        start, end = data.spans[i]
        length = end - start
        assert start + 0.25 * length - 1 <= mid <= end - 0.25 * length + 1  # midpoint in the word's middle half
        inside, outside = wave[start:end], torch.cat([wave[:start], wave[end:]])
        assert float(outside.abs().max()) < 1e-3  # silence around a lone word
        near_mid = float(rms(wave[mid - 1000 : mid + 1000]))  # 100 ms around the midpoint
        assert near_mid > 0.1 * float(rms(inside)) and near_mid > 1e-3
        if i == 0:  # the clip holds the token of the labelled word, for its speaker
            speaker = data.meta["speakers"][int(data.speakers[i])]
            token = synthesize_word(data.words[word], "espeak-ng", speaker["voice"], speaker["speed"], speaker["pitch"])
            assert token.shape[0] == length
            assert float(torch.corrcoef(torch.stack([inside, token]))[0, 1]) > 0.999


def test_flankers_and_the_held_out_sources(tmp_path):
    spec = CorpusSpec("rec", "recorded", n_clips=12, seed=2, snr_db=None)
    data = WordClips(build_corpus(spec, tmp_path, progress=False).parent, "rec")
    assert data.meta["speakers"] == [{"engine": "recorded", "voice": "allison", "speed": None, "pitch": None}]
    for i in range(len(data)):
        wave = data[i][0]
        start, end = data.spans[i]
        outside = torch.cat([wave[: max(start, 0)], wave[end:]])
        assert float(rms(outside)) > 1e-3  # other words fill the clip
    assert "CC-BY-SA-3.0" in data.meta["sources"]["recorded"]["license"]
    flite = CorpusSpec("flite", "flite", n_clips=4, n_speakers=2, seed=3)
    assert WordClips(build_corpus(flite, tmp_path, progress=False).parent, "flite").meta["speakers"][0]["engine"] == (
        "flite"
    )


def test_an_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    spec = CorpusSpec("broken", "recorded", n_clips=40, seed=0)
    calls = []

    def failing_render(*args):
        calls.append(1)
        if len(calls) > 20:
            raise KeyboardInterrupt
        return original(*args)

    original = corpus_module._render
    monkeypatch.setattr(corpus_module, "_render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(spec, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(corpus_module, "_render", original)
    assert (build_corpus(spec, tmp_path, progress=False) / "meta.json").is_file()


def test_default_splits_and_spec_validation():
    splits = default_splits(n_train=100, n_valid=10, n_test=20, seed=7, test_snr_db=None)
    assert splits["train"].source == splits["valid"].source == "espeak-ng"
    assert splits["train"].seed != splits["valid"].seed
    assert splits["test-flite-clean"].voice_list == FLITE_VOICES and splits["test-recorded-clean"].snr_db is None
    assert splits["train"].snr_db == (-10.0, 10.0) and splits["train"].shift == 0.25
    assert len({s.digest() for s in splits.values()}) == 4
    with pytest.raises(ValueError, match="shift"):
        CorpusSpec("x", "espeak-ng", n_clips=1, seed=0, shift=0.5)
    with pytest.raises(ValueError, match="source"):
        CorpusSpec("x", "festival", n_clips=1, seed=0)
    with pytest.raises(ValueError, match="no recordings"):
        CorpusSpec("x", "recorded", n_clips=1, seed=0, words=("one", "seventeen"))
