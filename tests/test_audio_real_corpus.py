"""The real-speech corpus: the recordings catalogue, recorded backgrounds, held-out speakers, building it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from metamers.audio import corpus as corpus_module
from metamers.audio.ambience import REAL_BACKGROUND_CLASSES, background_files, real_background
from metamers.audio.backgrounds import ALL_BACKGROUND_CLASSES, BACKGROUND_CLASSES
from metamers.audio.corpus import CorpusSpec, WordClips, build_corpus, default_splits, real_splits
from metamers.audio.recordings import (
    GROWN_VOCABULARY,
    HELD_OUT_SPEAKERS,
    REAL_SPEAKERS,
    SPEECH_PACKAGES,
    catalogue,
    real_token,
    speakers,
)
from metamers.audio.signal import mix_at_snr, rms
from metamers.audio.speech import TOKEN_RMS, VOCABULARY, SpeechSourceMissing

SR = 20000


def test_the_grown_vocabulary_keeps_the_61_words_first():
    assert GROWN_VOCABULARY[: len(VOCABULARY)] == VOCABULARY
    assert len(GROWN_VOCABULARY) == len(set(GROWN_VOCABULARY)) == 159


def test_the_catalogue_finds_and_labels_the_installed_recordings():
    clips = catalogue()
    table = speakers(clips)
    assert set(table) == set(REAL_SPEAKERS) and len(REAL_SPEAKERS) == 18
    assert {c.word for c in clips} == set(GROWN_VOCABULARY)  # every word has a real speaker
    assert all(c.word in GROWN_VOCABULARY and c.license == SPEECH_PACKAGES[c.package].license for c in clips)
    assert table["hedgewars-data:Pirate"]["take cover"].path == "Pirate/Takecover.ogg"
    assert table["klettres-data:en"]["b"].path == "en/alpha/B.ogg"
    assert table["kajongg:male1"]["no choice"].path == "male1/nochoice.ogg"
    assert table["asterisk-core-sounds-en-wav:allison"]["friday"].path == "digits/day-5.wav"
    speakers_per_word = {w: {c.speaker for c in clips if c.word == w} for w in GROWN_VOCABULARY}
    assert len(speakers_per_word["hello"]) == 11 and len(speakers_per_word["pung"]) == 4
    token = real_token(table["hedgewars-data:Default"]["incoming"], SR)
    assert 0.2 < token.shape[0] / SR < 2.0 and abs(float(rms(token)) - TOKEN_RMS) < 1e-4


def test_a_missing_package_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMERS_HEDGEWARS_DIR", str(tmp_path))
    with pytest.raises(
        SpeechSourceMissing, match=r"^the recordings of hedgewars-data .*apt-get install hedgewars-data$"
    ):
        catalogue(("hedgewars-data",))
    spec = real_splits(n_test=4)["test-hedgewars"]
    with pytest.raises(SpeechSourceMissing, match="apt-get install hedgewars-data"):
        build_corpus(spec, tmp_path / "corpus", progress=False)
    monkeypatch.setenv("METAMERS_LINCITY_DIR", str(tmp_path))
    with pytest.raises(SpeechSourceMissing, match=r"'fire' background .*apt-get install lincity-ng-data$"):
        real_background("fire", 100)


def test_held_out_speakers_never_reach_training():
    splits = real_splits(n_train=100, n_valid=10, n_test=10)
    for name in ("train", "valid"):
        assert splits[name].real_speakers and not set(splits[name].real_speakers) & set(HELD_OUT_SPEAKERS)
        assert splits[name].background_part == "train"
    tested = [s for name, spec in splits.items() if name.startswith("test-") for s in spec.real_speakers]
    assert sorted(tested) == sorted(HELD_OUT_SPEAKERS)
    assert all(spec.background_part == "test" for name, spec in splits.items() if name.startswith("test-"))
    # every held-out speaker's package also has training speakers, except the single-speaker Asterisk prompts
    training = {s.split(":")[0] for s in splits["train"].real_speakers}
    assert {s.split(":")[0] for s in HELD_OUT_SPEAKERS} - training == {"asterisk-core-sounds-en-wav"}


def test_recorded_backgrounds_split_their_files_and_mix_at_the_requested_snr():
    assert ALL_BACKGROUND_CLASSES == BACKGROUND_CLASSES + REAL_BACKGROUND_CLASSES
    for name in REAL_BACKGROUND_CLASSES:
        train, test = background_files(name, "train"), background_files(name, "test")
        assert train and test and not set(train) & set(test), name
    noise = real_background("traffic", 2 * SR, SR, seed=4, part="test")
    assert noise.shape == (2 * SR,) and abs(float(rms(noise)) - 1) < 1e-5
    assert torch.equal(noise, real_background("traffic", 2 * SR, SR, seed=4, part="test"))
    assert not torch.equal(noise, real_background("traffic", 2 * SR, SR, seed=5, part="test"))
    speech = real_token(catalogue(("kajongg",))[0], SR).double()
    speech = torch.nn.functional.pad(speech, (0, 2 * SR - speech.shape[0]))
    for snr in (-10.0, 3.0):
        mixed = mix_at_snr(speech, noise.double(), snr)
        assert math.isclose(float(20 * torch.log10(rms(speech) / rms(mixed - speech))), snr, abs_tol=1e-6)


def tiny(spec: CorpusSpec, **changes) -> CorpusSpec:
    return dataclasses.replace(spec, **changes)


def test_a_tiny_real_corpus_builds_deterministically(tmp_path):
    spec = tiny(real_splits()["train"], n_clips=16, n_speakers=2, real_fraction=0.5)
    first = build_corpus(spec, tmp_path / "a", progress=False)
    second = build_corpus(spec, tmp_path / "b", progress=False, workers=3)
    for name in (*corpus_module._FILES, "meta.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    data = WordClips(tmp_path / "a", "train")
    assert data.words == GROWN_VOCABULARY and data.background_classes == ALL_BACKGROUND_CLASSES
    voices = [data.meta["speakers"][i]["voice"] for i in data.speakers]
    real = [v for v in voices if ":" in v]
    assert len(real) == 8 and not set(real) & set(HELD_OUT_SPEAKERS)
    table = speakers(catalogue())
    for i, voice in enumerate(voices):  # a real speaker's clip is labelled with a word that speaker says
        if ":" in voice:
            assert data.words[data.word_labels[i]] in table[voice]
    assert set(data.meta["sources"]) >= {"espeak-ng"} and "recorded_backgrounds" in data.meta
    assert np.all((data.snr >= -10) & (data.snr <= 10))


def test_a_test_split_holds_only_its_held_out_speakers_and_words(tmp_path):
    spec = tiny(real_splits()["test-kajongg"], n_clips=16, snr_db=None)
    data = WordClips(build_corpus(spec, tmp_path, progress=False).parent, spec.split)
    assert {data.meta["speakers"][i]["voice"] for i in data.speakers} == {"kajongg:female2", "kajongg:male2"}
    assert {data.words[w] for w in data.word_labels} <= {c.word for c in catalogue(("kajongg",))}
    assert np.all(data.background_labels == -1) and "recorded_backgrounds" not in data.meta


def test_the_default_corpus_specs_are_unchanged():
    # The real-speech fields stay out of the default corpus's specs, so their digests (and cached corpora) hold.
    splits = default_splits()
    assert "real_speakers" not in splits["train"].to_dict()
    assert splits["train"].digest() == "e8fe401da09030b8152efe1170aecda526c22618139b61e5bcca2ddb17c37fa1"
    with pytest.raises(ValueError, match="real_speakers"):
        CorpusSpec("x", "real", n_clips=1, seed=0)
    with pytest.raises(ValueError, match="unknown real speakers"):
        CorpusSpec("x", "real", n_clips=1, seed=0, real_speakers=("festival:kal",))


def test_a_synthetic_test_split_mixes_held_out_recorded_backgrounds(tmp_path):
    spec = tiny(real_splits()["test-flite"], n_clips=8, n_speakers=2)
    data = WordClips(build_corpus(spec, tmp_path, progress=False).parent, spec.split)
    assert data.background_classes == ALL_BACKGROUND_CLASSES and np.all(data.background_labels >= 0)
    assert data.meta["recorded_backgrounds"]["part"] == "test"
    held_out = {f"{p}:{path}" for name in REAL_BACKGROUND_CLASSES for p, path in background_files(name, "test")}
    listed = {f for c in data.meta["recorded_backgrounds"]["classes"].values() for f in c["files"]}
    assert listed == held_out
