"""The word networks trained on the real-speech corpus: shipped with their cards, matched, and hearing real speakers
they never heard in training."""

import pytest
import torch

from metamers.audio.clips import CLIP_RMS
from metamers.audio.recordings import HELD_OUT_SPEAKERS, catalogue, real_token
from metamers.audio.signal import set_rms
from metamers.models import load
from metamers.noise import pink_noise

REAL = ("word-real-standard", "word-real-reduced-aliasing")
GROUPS = ("test-asterisk", "test-flite", "test-hedgewars", "test-kajongg", "test-klettres")


@pytest.mark.parametrize("name", REAL)
def test_ships_with_held_out_accuracy_per_source_and_voice(name):
    zoo = load(name)
    card = zoo.provenance["card"]
    assert len(zoo.labels) == 159 and zoo.labels[:2] == load("word-standard").labels[:2]
    assert card["corpus"]["train_clips"] == 16000 and card["training"]["seed"] == 0
    for group in GROUPS:
        for split in (group, f"{group}-clean"):
            scored = card["held_out"][split]
            assert scored["clips"] == 1000 and 0 <= scored["accuracy"] <= 1
            assert sum(v["clips"] for v in scored["speakers"].values()) == 1000
    held = {s for split in card["held_out"].values() for s in split["speakers"] if ":" in s}
    assert held == set(HELD_OUT_SPEAKERS)  # every held-out real speaker is scored, and only they


def test_the_two_architectures_are_matched_in_validation_accuracy():
    standard, reduced = (load(n).provenance["card"] for n in REAL)
    assert standard["architecture"] == "standard" and reduced["architecture"] == "reduced_aliasing"
    assert abs(standard["valid_accuracy"] - reduced["valid_accuracy"]) <= 0.05
    assert load("word-real-reduced-aliasing-random").provenance["random_init_seed"] == 0


def _clips(package: str) -> tuple[torch.Tensor, list[str]]:
    """Every recording of a package's held-out speakers, centred in a 2-second clip over a pink-noise floor 30 dB
    down (as the stimuli of a study are)."""
    clips = [c for c in catalogue((package,)) if c.speaker in HELD_OUT_SPEAKERS]
    out = torch.zeros(len(clips), 40000)
    for i, clip in enumerate(clips):
        token = real_token(clip)[:40000]
        start = (40000 - token.numel()) // 2
        out[i, start : start + token.numel()] = token
        out[i] += pink_noise((40000,), rms_level=float(out[i].pow(2).mean().sqrt()) * 10 ** (-30 / 20), seed=i)
        out[i] = set_rms(out[i], CLIP_RMS)
    return out, [c.word for c in clips]


def test_the_standard_network_hears_real_speakers_it_never_heard():
    zoo = load("word-real-standard")
    clips, words = _clips("kajongg")  # two speakers, eight calls each; chance is 1 in 159
    heard = [zoo.labels[i] for i in zoo.predict(clips).tolist()]
    accuracy = sum(h == w for h, w in zip(heard, words, strict=True)) / len(words)
    assert len(words) == 16 and accuracy >= 0.25, (accuracy, list(zip(words, heard, strict=True)))
