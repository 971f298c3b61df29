import pytest
import torch

from metamers import list_layers
from metamers.models import available, load, names
from metamers.models.torchvision_nets import find_weights
from metamers.stimuli import load_photos

OFFLINE = [n for n, ok, _, _ in available() if ok]
AUDIO = ("word-", "yamnet")  # audio models: test_audio_metamers.py, test_word_nets.py, test_yamnet.py
IMAGE_MODELS = [n for n in names() if n in OFFLINE and not n.startswith(AUDIO)]


def test_what_is_available_offline():
    assert {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenet-v2"} <= set(OFFLINE)
    assert {"efficientnet-lite0-random", "mobilenet-v2-random"} <= set(OFFLINE)
    assert {"vgg19-random", "resnet101-random", "inception_v3-random"} <= set(OFFLINE)
    rows = {n: (ok, why) for n, ok, why, _ in available()}
    assert not rows["ARCH@SEED2"][0] and "bring your own" in rows["ARCH@SEED2"][1]


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_available_model_loads_lists_layers_and_runs_backward(name):
    zoo = load(name)
    assert zoo.kind == "image", f"{name} is an {zoo.kind} model: add its prefix to AUDIO"
    x, _ = load_photos(["chelsea"], size=zoo.input_shape[-1])
    layers = {lay.name: lay for lay in list_layers(zoo.module, x)}
    assert set(zoo.stages.values()) <= set(layers), set(zoo.stages.values()) - set(layers)
    x.requires_grad_(True)
    out = zoo.module(x)
    assert out.shape == (1, len(zoo.labels)) == (1, 1000)
    out[0, 281].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ["vgg19", "resnet101", "inception_v3"])
def test_paper_architectures_without_weights_refuse_to_load_silently(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("METAMERS_WEIGHTS", raising=False)
    assert find_weights(arch) is None
    with pytest.raises(RuntimeError, match=rf"no ImageNet weights for {arch}.*{arch}-random"):
        load(arch)


def test_weights_found_in_metamers_weights_dir(monkeypatch, tmp_path):
    random = load("resnet101-random")
    torch.save(random.module.net.state_dict(), tmp_path / "resnet101-cd907fc2.pth")
    monkeypatch.setenv("METAMERS_WEIGHTS", str(tmp_path))
    zoo = load("resnet101")
    assert zoo.name == "resnet101" and zoo.provenance["path"].startswith(str(tmp_path))
    assert torch.equal(zoo.module.net.fc.weight, random.module.net.fc.weight)


def test_random_networks_are_seeded_and_differ_from_trained():
    a, b = load("efficientnet-lite0-random"), load("efficientnet-lite0")
    assert a.provenance == {"weights": "random initialization", "seed": 0}
    assert not torch.equal(a.module.net._fc.weight, b.module.net._fc.weight)


def test_a_second_seed_is_any_checkpoint_of_the_architecture(tmp_path):
    base = load("efficientnet-lite0")
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in base.module.net.state_dict().items()}  # fmt: skip
    torch.save(state, tmp_path / "seed2.pth")
    other = load("efficientnet-lite0", weights=tmp_path / "seed2.pth")
    assert other.name == "efficientnet-lite0@seed2" and len(other.provenance["sha256"]) == 64
    assert torch.allclose(other.module.net._fc.weight, state["_fc.weight"])
    with pytest.raises(ValueError, match="does not hold efficientnet-lite0 weights"):
        torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pth")
        load("efficientnet-lite0", weights=tmp_path / "bad.pth")


def test_pretrained_lite_models_agree_on_photos():
    x, _ = load_photos(["coffee", "camera"], size=260)
    for name in ("efficientnet-lite1", "efficientnet-lite2"):
        zoo = load(name)
        xs = torch.nn.functional.interpolate(x, size=zoo.input_shape[-1], mode="bilinear", antialias=True)
        assert [zoo.labels[i] for i in zoo.predict(xs)] == ["espresso", "tripod"], name


def test_image_set_states_source_license_and_category():
    from metamers.models import category_of
    from metamers.stimuli import IMAGES, full_images

    assert len(IMAGES) == 537 and len(full_images()) == 19  # the built-in 19 (the null's default) load offline
    assert all(src for _, _, src in IMAGES.values())
    assert IMAGES["chelsea"][1] == "cat" and IMAGES["clock"][1] == "clock"
    # the category agrees with what Lite0 sees, read out by the 16-way rule
    zoo = load("efficientnet-lite0")
    x, _ = load_photos(["chelsea"], size=224)
    assert category_of(int(zoo.predict(x)[0])) == "cat"
