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
    with pytest.raises(RuntimeError, match="run `metamers validate"):
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
