import json

import numpy as np
import pytest
import torch

from metamers.audio.cochleagram import CochleagramSettings
from metamers.audio.corpus import CorpusSpec, build_corpus
from metamers.audio.training import TrainingError, TrainSettings, cached_cochleagrams, train_word_net
from metamers.models.word_zoo import export_weights, word_model

WORDS = ("seven", "tomorrow", "alpha", "friday")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    common = {"words": WORDS, "n_speakers": 8, "snr_db": (0.0, 10.0)}
    build_corpus(CorpusSpec("train", "espeak-ng", n_clips=96, seed=0, **common), root, progress=False)
    build_corpus(CorpusSpec("valid", "espeak-ng", n_clips=32, seed=1, **common), root, progress=False)
    build_corpus(
        CorpusSpec("test-recorded", "recorded", n_clips=16, seed=2, words=WORDS, n_speakers=1), root, progress=False
    )
    return root


def test_cochleagram_cache_is_reused_and_matches_a_fresh_computation(tiny_corpus):
    split = tiny_corpus / "valid"
    first = cached_cochleagrams(split, progress=False)
    mtime = (split / "cochleagrams.npy").stat().st_mtime_ns
    again = cached_cochleagrams(split, progress=False)
    assert (split / "cochleagrams.npy").stat().st_mtime_ns == mtime
    assert first.shape == (32, 211, 400) and np.array_equal(np.asarray(first), np.asarray(again))
    from metamers.audio.cochleagram import Cochleagram

    waves = torch.from_numpy(np.load(split / "waves.npy")[:2].astype(np.float32) / 32767)
    fresh = Cochleagram(CochleagramSettings())(waves)[:, 0].numpy()
    assert np.allclose(np.asarray(first[:2], dtype=np.float32), fresh, atol=2e-3)


@pytest.mark.slow
def test_a_short_training_run_lowers_the_loss_and_resumes(tiny_corpus, tmp_path):
    settings = TrainSettings(width=0.125, epochs=10, patience=20, batch_size=16, lr=1e-3, seed=0)
    card = train_word_net(tiny_corpus, tmp_path / "run", settings, progress=False, eval_splits=("test-recorded",))
    losses = [h["train_loss"] for h in card["history"]]
    assert len(losses) == 10
    assert losses[-1] < 0.8 * losses[0]
    # it learned the training clips (four words: chance is 0.25)
    from metamers.audio.training import evaluate
    from metamers.audio.word_nets import WordNet

    net = WordNet(len(WORDS), width=0.125)
    net.load_state_dict(torch.load(tmp_path / "run" / "model.pt", weights_only=True))
    x = torch.from_numpy(np.array(cached_cochleagrams(tiny_corpus / "train", progress=False)))
    acc, _ = evaluate(net, x, torch.from_numpy(np.load(tiny_corpus / "train" / "words.npy")))
    assert acc > 0.4, (acc, card["history"])
    assert card["held_out"]["test-recorded"]["clips"] == 16
    assert json.loads((tmp_path / "run" / "card.json").read_text())["best_epoch"] == card["best_epoch"]
    # a finished run resumes to the same card without training again
    again = train_word_net(tiny_corpus, tmp_path / "run", settings, progress=False, eval_splits=())
    assert again["history"] == card["history"]
    # and a finished run can be extended: the stopping rules are not part of the recipe
    longer = train_word_net(
        tiny_corpus, tmp_path / "run", settings.__class__(**{**settings.to_dict(), "epochs": 11}), progress=False,
        eval_splits=(),
    )  # fmt: skip
    assert [h["epoch"] for h in longer["history"]] == list(range(1, 12))
    assert longer["history"][:10] == card["history"]
    # the exported weights load into the zoo and classify like the trained network
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    path = export_weights(state, card, tmp_path / "w.safetensors")
    zoo = word_model("word-standard", weights=path)
    assert zoo.labels == list(WORDS) and zoo.kind == "audio"
    assert zoo.module(torch.zeros(1, 40000)).shape == (1, len(WORDS))


def test_resuming_with_other_settings_is_refused(tiny_corpus, tmp_path):
    settings = TrainSettings(width=0.125, epochs=1, batch_size=32, seed=0)
    train_word_net(tiny_corpus, tmp_path / "run", settings, progress=False, eval_splits=())
    with pytest.raises(TrainingError, match="different training run"):
        train_word_net(tiny_corpus, tmp_path / "run", TrainSettings(width=0.125, epochs=1, seed=1), progress=False)


def test_missing_corpus_gets_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="metamers corpus"):
        train_word_net(tmp_path / "nowhere", tmp_path / "run", progress=False)


def test_bad_task_is_refused():
    with pytest.raises(TrainingError, match="task must be one of"):
        TrainSettings(task="speaker")


def test_band_limit_matches_low_passing_the_waveform(tiny_corpus):
    from metamers.audio.cochleagram import Cochleagram
    from metamers.audio.training import band_limit

    coch = Cochleagram()
    x = torch.from_numpy(np.load(tiny_corpus / "train" / "waves.npy")[:2].astype(np.float32) / 32767)
    cutoff = 3000.0
    f = torch.fft.rfftfreq(40000, 1 / 20000)
    h = (1 + (f / cutoff) ** 16) ** -0.5
    filtered = torch.fft.irfft(torch.fft.rfft(x) * h, n=40000)
    centres = torch.from_numpy(coch.centre_frequencies).float()
    with torch.no_grad():
        predicted = band_limit(coch(x), centres, torch.full((2,), cutoff))
        actual = coch(filtered)
    err = (predicted - actual).abs()[..., 5:-5]
    assert float(err.mean()) < 0.02 * float(actual.mean())
    below = centres < 2000
    assert torch.allclose(predicted[:, :, below], coch(x)[:, :, below], atol=1e-3)


def test_joint_task_trains_both_heads(tiny_corpus, tmp_path):
    settings = TrainSettings(width=0.125, task="joint", epochs=1, batch_size=32, seed=0)
    card = train_word_net(tiny_corpus, tmp_path / "joint", settings, progress=False, eval_splits=())
    assert card["classes"] == list(WORDS) and len(card["background_classes"]) == 8
    state = torch.load(tmp_path / "joint" / "model.pt", weights_only=True)
    assert state["logits_background.weight"].shape[0] == 8
    zoo = word_model("word-standard", weights=export_weights(state, card, tmp_path / "j.safetensors"))
    assert zoo.module.net.logits_background is not None
    assert 0.0 <= card["valid_background_accuracy"] <= 1.0
    assert zoo.provenance["card"]["valid_background_accuracy"] == card["valid_background_accuracy"]


@pytest.mark.slow
def test_joint_training_teaches_both_heads(tiny_corpus, tmp_path):
    from metamers.audio.training import evaluate
    from metamers.audio.word_nets import WordNet

    settings = TrainSettings(width=0.125, task="joint", epochs=12, patience=20, batch_size=16, seed=0)
    card = train_word_net(tiny_corpus, tmp_path / "joint", settings, progress=False, eval_splits=())
    net = WordNet(len(WORDS), width=0.125, n_background=8)
    net.load_state_dict(torch.load(tmp_path / "joint" / "model.pt", weights_only=True))
    x = torch.from_numpy(np.array(cached_cochleagrams(tiny_corpus / "train", progress=False)))
    words, _ = evaluate(net, x, torch.from_numpy(np.load(tiny_corpus / "train" / "words.npy")))
    backgrounds, _ = evaluate(
        net, x, torch.from_numpy(np.load(tiny_corpus / "train" / "backgrounds.npy")), head="background"
    )
    assert words > 0.4, card["history"]  # chance 0.25
    assert backgrounds > 0.25, card["history"]  # chance 0.125


def test_a_joint_checkpoint_from_before_the_background_weight_resumes_only_as_equal_weights():
    from metamers.audio.training import _recipe

    old = {"settings": {**TrainSettings(task="joint").to_dict()}, "corpus": "h", "n_train": 1}
    del old["settings"]["background_weight"]
    equal = {"settings": TrainSettings(task="joint", background_weight=1.0).to_dict(), "corpus": "h", "n_train": 1}
    tenth = {"settings": TrainSettings(task="joint", background_weight=0.1).to_dict(), "corpus": "h", "n_train": 1}
    assert _recipe(old) == _recipe(equal) != _recipe(tenth)
    # a word-task run does not read the weight, so it is not part of its recipe
    word = {"settings": TrainSettings().to_dict(), "corpus": "h", "n_train": 1}
    assert _recipe(word) == _recipe({**word, "settings": {**word["settings"], "background_weight": 0.5}})


def test_background_weight_must_be_positive():
    with pytest.raises(TrainingError, match="background_weight"):
        TrainSettings(task="joint", background_weight=0.0)


def test_held_out_accuracy_is_scored_on_every_test_split_and_per_voice(tiny_corpus, tmp_path):
    settings = TrainSettings(width=0.125, epochs=1, batch_size=32, seed=0)
    card = train_word_net(tiny_corpus, tmp_path / "run", settings, progress=False)
    assert set(card["held_out"]) == {"test-recorded"}  # found without being named
    scored = card["held_out"]["test-recorded"]
    (voice, per_voice), *others = scored["speakers"].items()
    assert not others and voice != "?"
    assert per_voice["clips"] == scored["clips"] == 16
    assert per_voice["accuracy"] == pytest.approx(scored["accuracy"])


def test_train_names_a_corpus_by_its_kind(tmp_path, monkeypatch, capsys):
    from metamers.cli import main

    monkeypatch.setenv("METAMERS_CORPUS", str(tmp_path / "corpus"))
    assert main(["train", "--corpus", "real", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"no corpus at {tmp_path / 'corpus-real'}: build it with `metamers corpus --kind real`" in err


def test_an_epoch_stopped_midway_resumes_from_its_last_step(tiny_corpus, tmp_path, monkeypatch):
    from metamers.audio import training

    settings = TrainSettings(width=0.125, epochs=1, batch_size=16, seed=0)
    whole = train_word_net(tiny_corpus, tmp_path / "whole", settings, progress=False, eval_splits=())
    monkeypatch.setattr(training, "_MID_EPOCH_SECONDS", 0.0)  # a checkpoint after every step
    adam_step, calls = torch.optim.Adam.step, []

    def stop_at_the_fourth_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", stop_at_the_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        train_word_net(tiny_corpus, tmp_path / "cut", settings, progress=False, eval_splits=())
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["state"]
    assert (state["epoch"], state["step"], state["loss_count"]) == (0, 3, 48)
    monkeypatch.setattr(torch.optim.Adam, "step", adam_step)
    resumed = train_word_net(tiny_corpus, tmp_path / "cut", settings, progress=False, eval_splits=())
    assert resumed["history"][0]["train_loss"] == pytest.approx(whole["history"][0]["train_loss"], rel=1e-5)
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("whole", "cut"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
