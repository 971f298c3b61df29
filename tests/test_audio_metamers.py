import numpy as np
import pytest
import soundfile
import torch

from metamers.audio.clips import word_clips
from metamers.audio.signal import rms
from metamers.models import load
from metamers.runs.audio import audio_metamers


@pytest.fixture(scope="module")
def word_net():
    return load("word-standard")


def test_shipped_word_networks_load_with_their_cards():
    for name, first in [("word-standard", "conv_0"), ("word-reduced-aliasing", "pool_0")]:
        zoo = load(name)
        assert zoo.kind == "audio" and zoo.input_shape == (40000,)
        assert len(zoo.labels) == 61 and "tomorrow" in zoo.labels
        assert list(zoo.stages)[:2] == ["cochleagram", first]
        assert zoo.provenance["card"]["held_out"]  # measured held-out accuracies travel with the weights
        random = load(f"{name}-random")
        assert random.provenance["random_init_seed"] == 0


def test_the_other_seed_and_other_task_networks_ship_with_their_recipes():
    from safetensors.torch import load_file

    seed0, seed1, background = load("word-standard"), load("word-standard-seed1"), load("word-standard-background")
    assert seed1.provenance["card"]["training"]["seed"] == 1 and seed0.provenance["card"]["training"]["seed"] == 0
    a, b = (load_file(z.provenance["file"]) for z in (seed0, seed1))
    assert set(a) == set(b) and any(not torch.equal(a[k], b[k]) for k in a)  # same architecture, other weights
    assert background.provenance["card"]["task"] == "background" and len(background.labels) == 8
    assert background.provenance["card"]["valid_accuracy"] > 0.9
    assert "word-standard-seed1-random" not in [n for n, *_ in __import__("metamers.models").models.available()]


def test_shipped_network_recognises_words_above_chance(word_net):
    from metamers.audio.speech import VOCABULARY

    words = list(VOCABULARY)
    for source, least in [("espeak-ng", 0.6), ("recorded", 4 / 61)]:  # chance is 1/61
        labels = word_net.predict(word_clips(words, source=source))
        correct = sum(word_net.labels[int(i)] == w for i, w in zip(labels, words, strict=True))
        assert correct / len(words) >= least, source


def test_word_clips_are_centred_and_at_the_clip_level():
    x = word_clips(["seven", "friday"])
    assert x.shape == (2, 40000)
    assert torch.allclose(rms(x), torch.full((2,), 0.05), atol=1e-4)
    energy = x.pow(2)
    assert energy[:, 15000:25000].sum() > 0.9 * energy.sum()


@pytest.mark.slow
def test_an_early_layer_audio_metamer_matches_its_layer(word_net, tmp_path):
    results = audio_metamers(word_net, ["seven"], ["conv_0"], tmp_path, iterations=300, lr=0.001, progress=False)
    r = results["conv_0"]
    assert float(r.layer_rho[0]) >= 0.95
    # it started from pink noise at RMS 0.01, and it is written as a WAV a person can play
    wav, sr = soundfile.read(tmp_path / "media" / "word-standard" / "conv_0" / "seven.wav")
    assert sr == 20000 and wav.shape == (40000,) and np.abs(wav).max() > 0
    assert (tmp_path / "figures" / "cochleagrams_word-standard.png").stat().st_size > 10_000
    # a second call finds the finished stage and does not synthesize again
    again = audio_metamers(word_net, ["seven"], ["conv_0"], tmp_path, iterations=300, lr=0.001, progress=False)
    assert torch.equal(again["conv_0"].metamers, r.metamers)


def test_unknown_stage_is_refused(word_net, tmp_path):
    with pytest.raises(ValueError, match="has no stage"):
        audio_metamers(word_net, ["seven"], ["conv_9"], tmp_path)
