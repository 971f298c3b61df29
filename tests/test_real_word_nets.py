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
SEEDS = {
    "word-real-standard": 0,
    "word-real-reduced-aliasing": 0,
    "word-real-standard-seed1": 1,
    "word-real-reduced-aliasing-joint": 0,
}
RECIPE = ("architecture", "width", "task", "batch_size", "lr", "weight_decay", "lowpass_prob", "lowpass_hz")
GROUPS = ("test-asterisk", "test-flite", "test-hedgewars", "test-kajongg", "test-klettres")


@pytest.mark.parametrize("name", SEEDS)
def test_ships_with_held_out_accuracy_per_source_and_voice(name):
    zoo = load(name)
    card = zoo.provenance["card"]
    assert len(zoo.labels) == 159 and zoo.labels[:2] == load("word-standard").labels[:2]
    assert card["corpus"]["train_clips"] == 16000 and card["training"]["seed"] == SEEDS[name]
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


def test_the_second_seed_has_the_first_ones_recipe_and_accuracy():
    first, second = (load(n).provenance["card"] for n in ("word-real-standard", "word-real-standard-seed1"))
    assert second["training"]["seed"] == 1
    assert {k: second["training"][k] for k in RECIPE} == {k: first["training"][k] for k in RECIPE}
    assert second["corpus"]["hash"] == first["corpus"]["hash"]
    assert abs(first["valid_accuracy"] - second["valid_accuracy"]) <= 0.05


def test_the_joint_network_hears_words_and_backgrounds_matched_with_the_word_networks():
    from metamers.audio.backgrounds import ALL_BACKGROUND_CLASSES

    joint, words = load("word-real-reduced-aliasing-joint"), load("word-real-reduced-aliasing")
    card = joint.provenance["card"]
    assert card["task"] == "joint" and joint.labels == words.labels  # its output is the word head
    assert joint.module.net.logits_background.out_features == len(ALL_BACKGROUND_CLASSES)
    stopping = ("epochs", "patience", "target_accuracy", "max_minutes")
    same = {k: v for k, v in card["training"].items() if k not in ("task", "background_weight", *stopping)}
    theirs = words.provenance["card"]["training"]
    assert same == {k: theirs[k] for k in same if k in theirs} and card["training"]["background_weight"] == 0.1
    standard = load("word-real-standard").provenance["card"]
    assert abs(card["valid_accuracy"] - standard["valid_accuracy"]) <= 0.05
    assert card["valid_background_accuracy"] > 0.15  # 23 classes: chance 4.3% (23% when shipped)


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


def test_the_background_network_names_recordings_it_never_heard():
    """Two excerpts of each real class's held-out recordings (every third file), alone, at the clips' level."""
    from metamers.audio.ambience import REAL_BACKGROUND_CLASSES, real_background
    from metamers.audio.backgrounds import ALL_BACKGROUND_CLASSES

    zoo = load("word-real-reduced-aliasing-background")
    card = zoo.provenance["card"]
    assert zoo.labels == list(ALL_BACKGROUND_CLASSES) and card["task"] == "background"
    assert all(v["accuracy"] > 0.5 for v in card["held_out"].values())  # noisy splits: held-out recordings
    names = [c for c in REAL_BACKGROUND_CLASSES for _ in range(2)]
    clips = torch.stack([set_rms(real_background(c, 40000, seed=i % 2, part="test"), CLIP_RMS) for i, c in
                         enumerate(names)])  # fmt: skip
    heard = [zoo.labels[i] for i in zoo.predict(clips).tolist()]
    accuracy = sum(h == n for h, n in zip(heard, names, strict=True)) / len(names)
    assert accuracy >= 0.4, (accuracy, list(zip(names, heard, strict=True)))  # 60% when shipped; chance 1 in 23
