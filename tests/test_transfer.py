import numpy as np
import pytest
import torch

from metamers.transfer import bootstrap_sem, recognition, transfer_cell


def test_bootstrap_sem_matches_a_direct_computation():
    values = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=float)
    rng = np.random.default_rng(7)
    direct = [values[rng.integers(0, 10, size=10)].mean() for _ in range(500)]
    assert bootstrap_sem(values, n_boot=500, seed=7) == pytest.approx(np.std(direct, ddof=1), abs=1e-12)
    # and it approaches the analytic SEM of a proportion
    p = values.mean()
    assert bootstrap_sem(values, n_boot=20000) == pytest.approx(np.sqrt(p * (1 - p) / 10), rel=0.05)


def test_a_recognizer_identical_to_the_generator_gets_one_on_accepted_metamers():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    stimuli = torch.rand(20, 3, 2, 2)
    metamers = stimuli + 0.01 * torch.randn_like(stimuli)
    ref = net(stimuli).argmax(1)
    pred = net(metamers).argmax(1)
    accepted = pred == ref  # the label condition of acceptance
    cell = transfer_cell("g", "l", "g", "imagenet", "full", pred[accepted], ref[accepted], ref[accepted], 5)
    assert cell.proportion == 1.0 and cell.sem == 0.0 and cell.own and cell.natural_accuracy == 1.0


def test_a_constant_classifier_gets_the_frequency_of_its_class():
    reference = torch.tensor([3, 3, 1, 0, 3, 2, 3, 1])
    constant = torch.full_like(reference, 3)
    prop, sem, n = recognition(constant, reference, n_boot=2000)
    assert (prop, n) == (0.5, 8)
    assert sem == pytest.approx(np.sqrt(0.25 / 8), rel=0.1)
    cell = transfer_cell("g", "l", "c", "16-way", "png", constant, constant, reference, 16)
    assert cell.chance == 1 / 16 and cell.natural_accuracy == 0.5 and not cell.own


def test_recognition_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 predictions for 2 references"):
        recognition([1, 2, 3], [1, 2])


@pytest.mark.slow
def test_transfer_matrix_of_a_tiny_run(tmp_path):
    from metamers import synthesize
    from metamers.models import load
    from metamers.runs import transfer_dir, validate_dir
    from metamers.stimuli import load_photos

    zoo = load("efficientnet-lite0")
    x, names = load_photos(["chelsea", "coffee"], size=224)
    r = synthesize(zoo.module, x, "net._swish@0", iterations=150, lr=0.01)
    r.extra.update(model="efficientnet-lite0", stimuli=names)
    r.save(tmp_path / "early.safetensors")
    with pytest.raises(FileNotFoundError, match="run `metamers validate"):
        transfer_dir(tmp_path, ["efficientnet-lite0-random"])
    validate_dir(tmp_path, n_pairs=2000)
    out = transfer_dir(tmp_path, ["efficientnet-lite0-random", "efficientnet-lite1"])
    cells = {(c.recognizer, c.label_space): c for c in out["cells"]}
    assert len(out["cells"]) == 3 * 2  # (generator itself + 2 recognizers) x 2 label spaces
    assert cells[("efficientnet-lite0", "imagenet")].proportion == 1.0  # accepted metamers, by construction
    assert cells[("efficientnet-lite0", "16-way")].n == 2
    assert all(c.source == "png" for c in out["cells"])
    assert (tmp_path / "transfer.csv").read_text().startswith("generator,layer,recognizer")
    assert len(out["figures"]) == 4 and all(f.exists() for f in out["figures"])


def _validated(catalog, path: str, result, accepted) -> None:
    """Catalog rows for a synthesis result, as `metamers validate` writes them (a verdict per item)."""
    for i, (name, ok) in enumerate(zip(result.extra["stimuli"], accepted, strict=True)):
        mid = catalog.add_metamer(result_file=path, item=i, model=result.extra["model"], layer=result.layer,
                                  stimulus=name)  # fmt: skip
        catalog.set_validation(mid, [], source="png", accepted=int(ok), reason="accepted" if ok else "rejected",
                               rule="by hand")  # fmt: skip


def test_transfer_of_word_network_metamers(tmp_path, lite0):
    """A hand-made validated directory: word-network "metamers" equal to their clips, and one image result."""
    from dataclasses import replace

    from metamers import synthesize
    from metamers.audio.clips import word_clips
    from metamers.audio.speech import VOCABULARY
    from metamers.modality import as_written
    from metamers.models import load
    from metamers.runs import Catalog, transfer_dir
    from metamers.settings import SynthesisSettings
    from metamers.stimuli import load_photos

    words = ["friday", "nine", "tomorrow", "seven"]
    # a clip of "nine" named "seven" (the network mishears it), and a name that is no word (the reference falls back)
    names = ["friday", "seven", "tomorrow", "take-2"]
    accepted = [True, True, False, True]
    clips = as_written(word_clips(words, source="espeak-ng"))  # already 16-bit, so the "png" source is exact
    assert torch.equal(as_written(clips), clips)
    standard = load("word-standard")
    settings = SynthesisSettings.preset("feather2019_audio", iterations=0)
    r = synthesize(standard.module, clips, standard.layer("conv_0"), settings)
    r = replace(r, metamers=clips.clone(), extra={"model": "word-standard", "stimuli": names})
    r.save(tmp_path / "results" / "word.safetensors")
    x, photo_names = load_photos(["chelsea", "coffee"], size=224)
    image = synthesize(lite0.module, x, "net._swish@0", iterations=0)
    image.extra.update(model="efficientnet-lite0", stimuli=photo_names)
    image.save(tmp_path / "image.safetensors")
    catalog = Catalog(tmp_path)
    _validated(catalog, "results/word.safetensors", r, accepted)
    _validated(catalog, "image.safetensors", image, [True, True])

    out = transfer_dir(tmp_path, ["word-standard-random", "efficientnet-lite0"])
    word = {c.recognizer: c for c in out["cells"] if c.generator == "word-standard"}
    # the image model does not judge word metamers, nor the word network images
    assert set(word) == {"word-standard", "word-standard-random"}
    assert {c.label_space for c in word.values()} == {"word"}
    assert {(c.recognizer, c.label_space) for c in out["cells"] if c.generator == "efficientnet-lite0"} == {
        ("efficientnet-lite0", "imagenet"),
        ("efficientnet-lite0", "16-way"),
    }
    # the reference is the word (the generating model's label where the name is no word), counted by hand
    keep = [i for i, ok in enumerate(accepted) if ok]
    own_labels = standard.predict(clips)
    reference = torch.tensor(
        [VOCABULARY.index(n) if n in VOCABULARY else int(own_labels[i]) for i, n in enumerate(names)]
    )
    for rec, cell in word.items():
        expected = (load(rec).predict(clips)[keep] == reference[keep]).double().mean().item()
        assert cell.n == 3 and cell.chance == pytest.approx(1 / 61) and cell.source == "png"
        assert cell.natural_accuracy == pytest.approx(expected)
    # metamers identical to their stimuli: the generating model recognizes them exactly as well as the clips
    own = word["word-standard"]
    assert own.own and own.proportion == own.natural_accuracy < 1  # no proportion 1 by construction for audio
    assert word["word-standard-random"].proportion == word["word-standard-random"].natural_accuracy
    assert not word["word-standard-random"].own
    assert {f.name for f in out["figures"]} >= {"transfer_word.png", "transfer_matrix_word.png"}
    assert all(f.exists() for f in out["figures"])
    rows = catalog.query("SELECT recognizer, chance FROM transfer WHERE label_space='word'")
    assert sorted(r["recognizer"] for r in rows) == ["word-standard", "word-standard-random"]
    assert "word-standard-random" in (tmp_path / "transfer.csv").read_text()


def test_a_layer_split_over_several_jobs_makes_one_cell_of_all_its_metamers(tmp_path):
    """A plan's batch splits a layer's stimuli over result files (``__b0``, ``__b1``); transfer counts them together."""
    from dataclasses import replace

    from metamers import synthesize
    from metamers.audio.clips import word_clips
    from metamers.modality import as_written
    from metamers.models import load
    from metamers.runs import Catalog, transfer_dir
    from metamers.settings import SynthesisSettings

    words = ["friday", "nine", "tomorrow", "seven", "today"]
    clips = as_written(word_clips(words, source="espeak-ng"))
    standard = load("word-standard")
    settings = SynthesisSettings.preset("feather2019_audio", iterations=0)
    catalog = Catalog(tmp_path)
    for b, (lo, hi) in enumerate([(0, 3), (3, 5)]):
        r = synthesize(standard.module, clips[lo:hi], standard.layer("conv_0"), settings)
        r = replace(r, metamers=clips[lo:hi].clone(), extra={"model": "word-standard", "stimuli": words[lo:hi]})
        path = f"results/word-standard__conv_0__b{b}.safetensors"
        r.save(tmp_path / path)
        _validated(catalog, path, r, [True] * (hi - lo - 1) + [False])  # the last of each batch rejected

    out = transfer_dir(tmp_path, ["word-standard-random"])
    cells = {c.recognizer: c for c in out["cells"]}
    assert len(out["cells"]) == 2 and cells["word-standard"].n == 3  # 2 + 1 accepted, from both files
    heard = standard.predict(clips)[[0, 1, 3]]
    expected = sum(standard.labels[int(h)] == w for h, w in zip(heard, ["friday", "nine", "seven"], strict=True)) / 3
    assert cells["word-standard"].proportion == pytest.approx(expected)
    rows = (tmp_path / "transfer.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # the header and one row per recognizer, not one per file


def test_yamnet_and_the_word_networks_judge_each_other_where_their_labels_meet(tmp_path):
    """YAMNet judges word-network metamers on being speech; a word network judges YAMNet's metamers on their word."""
    from dataclasses import replace

    from metamers import synthesize
    from metamers.audio.clips import word_clips
    from metamers.audio.speech import VOCABULARY
    from metamers.modality import as_written
    from metamers.models import AUDIOSET_SPEECH, load, speech_classes
    from metamers.runs import Catalog, transfer_dir
    from metamers.settings import SynthesisSettings

    words = ["friday", "nine", "tomorrow"]
    clips = as_written(word_clips(words, source="espeak-ng"))
    clips[2] = as_written(0.05 * torch.randn(clips.shape[-1], generator=torch.Generator().manual_seed(0)))  # noise
    settings = SynthesisSettings.preset("feather2019_audio", iterations=0)
    catalog = Catalog(tmp_path)
    for name in ("word-standard", "yamnet"):
        zoo = load(name)
        r = synthesize(zoo.module, clips, zoo.layer(list(zoo.stages)[1]), settings)
        r = replace(r, metamers=clips.clone(), extra={"model": name, "stimuli": words})
        r.save(tmp_path / "results" / f"{name}.safetensors")
        _validated(catalog, f"results/{name}.safetensors", r, [True, True, True])

    cells = {(c.generator, c.recognizer): c for c in transfer_dir(tmp_path, ["word-standard", "yamnet"])["cells"]}
    yamnet = load("yamnet")
    speech = speech_classes(yamnet.labels)
    assert [yamnet.labels[i] for i in speech] == [n for n in AUDIOSET_SPEECH if n in yamnet.labels]
    heard_as_speech = torch.isin(yamnet.predict(clips), torch.tensor(speech)).double().mean().item()
    assert 0 < heard_as_speech < 1  # the words are speech to YAMNet, the noise is not
    for gen in ("word-standard", "yamnet"):
        judged = cells[(gen, "yamnet")]
        assert judged.label_space == "speech" and judged.chance == pytest.approx(len(speech) / 521)
        assert judged.natural_accuracy == pytest.approx(heard_as_speech)
        assert judged.proportion == judged.natural_accuracy  # the "metamers" are the clips themselves
    by_words = cells[("yamnet", "word-standard")]
    assert by_words.label_space == "word" and by_words.chance == pytest.approx(1 / 61)
    reference = torch.tensor([VOCABULARY.index(w) for w in words])
    expected = (load("word-standard").predict(clips) == reference).double().mean().item()
    assert by_words.natural_accuracy == pytest.approx(expected)


def test_a_recognizer_of_another_clip_length_is_refused():
    from metamers.models import load
    from metamers.runs.transfer import _logits

    with pytest.raises(ValueError, match="takes waveforms of 40000 samples, these have 100"):
        _logits(load("word-standard-random"), torch.zeros(1, 100))


@pytest.mark.parametrize(
    ("early", "late", "sem", "verdict"),
    [(0.75, 0.0, 0.1, "shown"), (0.38, 0.12, 0.22, "unclear"), (0.38, 0.38, 0.23, "not shown")],
)
def test_the_figure5_judgement_weighs_the_fall_against_its_standard_error(early, late, sem, verdict):
    from metamers.transfer import figure5_trend

    cells = [
        dict(generator="a", layer=lay, recognizer="b", label_space="16-way", own=0, proportion=p, sem=sem)
        for lay, p in (("l1", early), ("l9", late))
    ]
    trend = figure5_trend(cells)[0]
    assert trend["verdict"] == verdict and trend["shown"] == (verdict == "shown")
    assert {"shown": "holds here", "unclear": "too few stimuli to tell", "not shown": "do NOT show"}[verdict] in (
        trend["text"]
    )


def test_the_demo_summary_prints_each_figure5_judgement():
    from metamers.demo import format_summary
    from metamers.transfer import figure5_trend

    cells = [
        dict(generator="a", layer=lay, recognizer="b", label_space="16-way", own=0, proportion=p, sem=0.05)
        for lay, p in (("l1", 0.9), ("l9", 0.1))
    ]
    summary = {"accepted": 2, "metamers": 2, "jobs": {"done": 2, "failed": 0}, "seconds": 60, "failed": [],
               "report": None, "trends": figure5_trend(cells)}  # fmt: skip
    text = format_summary(summary)
    assert "recognized 90% of the a metamers" in text and "holds here" in text and "not judged" not in text
