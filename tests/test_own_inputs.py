"""A researcher's own stimuli and own network: files in a folder, a model in their own Python file."""

import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from metamers.models import load
from metamers.models.user import (
    UserModelError,
    UserModelSpec,
    build_user_model,
    register_user_model,
)
from metamers.stimuli.files import (
    StimulusFileError,
    find_stimulus_files,
    load_image_files,
    load_sound_files,
)

NET = """
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 3),
    )


NOT_A_MODULE = 3


def broken():
    raise RuntimeError("my constructor is broken")
"""


@pytest.fixture
def netfile(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent(NET))
    return path


def _spec(netfile, **kw):
    return UserModelSpec(**{"name": "mine", "module": f"{netfile}:build", "input_shape": (3, 32, 32), **kw})


def test_a_model_from_a_users_file_with_weights_labels_and_stages(netfile, tmp_path):
    torch.manual_seed(3)
    trained = build_user_model(_spec(netfile)).module
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    (tmp_path / "labels.txt").write_text("cat\ndog\ncar\n")
    spec = _spec(netfile, weights=str(tmp_path / "w.pt"), labels=str(tmp_path / "labels.txt"), stages={"early": "1"})
    zoo = build_user_model(spec)
    assert zoo.labels == ["cat", "dog", "car"] and zoo.stages == {"early": "1"} and zoo.kind == "image"
    assert all(
        torch.equal(a, b) for a, b in zip(zoo.module.state_dict().values(), trained.state_dict().values(), strict=True)
    )
    assert len(zoo.provenance["sha256"]) == 64 and zoo.provenance["source"] == "user"
    register_user_model(spec)
    assert load("mine").labels == ["cat", "dog", "car"]  # found by name, as a zoo model is


def test_mean_and_std_go_inside_the_graph(netfile):
    zoo = build_user_model(_spec(netfile, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(zoo.module(x), zoo.module.net((x - 0.5) / 0.25))


def test_a_torchscript_file_is_a_model(netfile, tmp_path):
    scripted = torch.jit.script(build_user_model(_spec(netfile)).module)
    scripted.save(str(tmp_path / "net.ts"))
    zoo = build_user_model(UserModelSpec("ts", str(tmp_path / "net.ts"), input_shape=(3, 32, 32)))
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(zoo.module(x), scripted(x))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"module": "{net}:nothing_here"}, "has no 'nothing_here'"),
        ({"module": "{net}:NOT_A_MODULE"}, "neither an nn.Module nor a callable"),
        ({"module": "{net}:broken"}, "calling .*broken\\(\\) failed: RuntimeError: my constructor is broken"),
        ({"module": "no_such_package.models:net"}, "cannot import 'no_such_package.models'"),
        ({"module": "/nowhere/net.py:build"}, "no Python file /nowhere/net.py"),
        ({"module": "just-a-name"}, "neither 'package.module:callable'"),
        ({"input_shape": (1, 32, 32)}, "refuses an input of shape \\(1, 1, 32, 32\\).*Set input_shape"),
        ({"labels": "{tmp}/two.txt"}, "has 2 labels but the model has 3 outputs"),
        ({"labels": "nonsense"}, "give a text file"),
        ({"weights": "{tmp}/random.bin"}, "random.bin is not a state dict"),
        ({"weights": "{tmp}/other.pt"}, "other.pt does not fit the network"),
        ({"stages": {"deep": "17"}}, "stage 'deep' names no layer of mine"),
        ({"kind": "video"}, "kind = 'video'"),
        ({"mean": (0.5, 0.5, 0.5)}, "give both mean and std"),
    ],
)
def test_a_model_that_does_not_fit_its_spec_is_named(netfile, tmp_path, change, message):
    (tmp_path / "two.txt").write_text("a\nb\n")
    (tmp_path / "random.bin").write_bytes(np.random.default_rng(0).bytes(300))
    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    change = {k: v.format(net=netfile, tmp=tmp_path) if isinstance(v, str) else v for k, v in change.items()}
    with pytest.raises(UserModelError, match=message):
        build_user_model(_spec(netfile, **change))


def _write_images(root, names):
    rng = np.random.default_rng(0)
    for rel in names:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(path)


def test_image_files_with_labels_from_folders_or_a_csv(tmp_path):
    _write_images(tmp_path / "photos", ["cat/a.jpg", "cat/b.png", "dog/c.jpeg"])
    found = find_stimulus_files(tmp_path / "photos", labels="folders")
    assert found.kind == "image" and found.names == ("cat-a", "cat-b", "dog-c")
    assert found.labels == ("cat", "cat", "dog")
    x = load_image_files(found, 24)
    assert x.shape == (3, 3, 24, 24) and 0 <= float(x.min()) and float(x.max()) <= 1
    (tmp_path / "labels.csv").write_text("file,label\ncat/a.jpg,tabby\nb.png,siamese\ndog/c.jpeg,terrier\n")
    assert find_stimulus_files(tmp_path / "photos", labels=tmp_path / "labels.csv").labels == (
        "tabby",
        "siamese",
        "terrier",
    )
    globbed = find_stimulus_files(f"{tmp_path}/photos/cat/*.jpg")
    assert globbed.names == ("a",) and globbed.labels is None
    assert found.digest() == find_stimulus_files(tmp_path / "photos", labels="folders").digest()


def test_sound_files_are_resampled_centred_and_levelled(tmp_path):
    sr, n = 16000, 20000
    t = np.arange(6000) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "short.wav", tone, sr)  # 0.375 s: padded, centred
    long = np.zeros(3 * sr)
    long[2 * sr : 2 * sr + 6000] = tone  # a 3 s recording, the sound late in it
    sf.write(tmp_path / "long.flac", np.stack([long, long], axis=1), sr)  # stereo FLAC
    found = find_stimulus_files(tmp_path)
    assert found.kind == "audio" and found.names == ("long", "short")
    x = load_sound_files(found, n_samples=n, sr=20000)
    assert x.shape == (2, n)
    for clip in x:
        loud = torch.nonzero(clip.abs() > 0.01).flatten()
        middle = (int(loud[0]) + int(loud[-1])) / 2
        assert abs(middle - n / 2) < 0.05 * n  # the sound sits in the middle of the clip
        assert float(clip.pow(2).mean().sqrt()) == pytest.approx(0.05, rel=1e-3)


def test_bad_stimulus_files_are_named(tmp_path):
    with pytest.raises(StimulusFileError, match="no folder or files at"):
        find_stimulus_files(tmp_path / "missing")
    _write_images(tmp_path / "mixed", ["a.png"])
    sf.write(tmp_path / "mixed" / "b.wav", np.zeros(100), 8000)
    with pytest.raises(StimulusFileError, match=r"mixes images .* and sounds"):
        find_stimulus_files(tmp_path / "mixed")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(StimulusFileError, match=r"no images .* or sounds .*found: .txt"):
        find_stimulus_files(tmp_path / "notes")
    _write_images(tmp_path / "flat", ["a.png"])
    with pytest.raises(StimulusFileError, match="not in a sub-folder"):
        find_stimulus_files(tmp_path / "flat", labels="folders")
    (tmp_path / "l.csv").write_text("file,label\nzzz.png,x\n")
    with pytest.raises(StimulusFileError, match=r"gives no label for a.png"):
        find_stimulus_files(tmp_path / "flat", labels=tmp_path / "l.csv")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(StimulusFileError, match=r"cannot read the image .*bad.png"):
        load_image_files(find_stimulus_files(tmp_path / "broken"), 16)
    (tmp_path / "quiet").mkdir()
    sf.write(tmp_path / "quiet" / "zero.wav", np.zeros(800), 8000)
    with pytest.raises(StimulusFileError, match=r"zero.wav is silent"):
        load_sound_files(find_stimulus_files(tmp_path / "quiet"), 1000, 8000)


def test_a_model_without_weights_is_the_same_network_in_every_build(netfile):
    torch.manual_seed(123)  # whatever the caller's random state
    a = build_user_model(_spec(netfile)).module.state_dict()
    torch.manual_seed(456)
    b = build_user_model(_spec(netfile)).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_synthesizes_a_users_model_on_a_folder_and_validates_it(netfile, tmp_path, capsys):
    from metamers.cli import main

    _write_images(tmp_path / "pics", ["a/x.png", "b/y.jpg"])
    out = tmp_path / "out"
    args = ["synthesize", f"{netfile}:build", "--input-shape", "3,32,32", "--images", str(tmp_path / "pics"),
            "--layer", "1", "--iterations", "5", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "a-x: 0 ->" in capsys.readouterr().out
    assert (out / "media" / "mynet" / "1" / "b-y.png").is_file()  # laid out as a plan's run
    assert main(["validate", str(out), "--pairs", "50"]) == 0  # another command: the result names its model
    assert (out / "figures" / "null_grid_mynet.png").is_file()
    assert main(["synthesize", f"{tmp_path}/nothere.py:build", "--layer", "1"]) == 2
    assert "no Python file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stimuli": {"images": "nowhere"}}, r"stimuli.images: no folder or files at"),
        ({"stimuli": {"sounds": "photos"}}, r"stimuli.sounds: .*photos holds images, where sounds belong"),
        ({"stimuli": {"image_labels": "folders"}}, r"stimuli.image_labels labels files: give stimuli.images"),
        ({"stimuli": {"images": "photos", "image_labels": "nope.csv"}}, r"no label file .*nope.csv"),
        ({"validation": {"null_images": "empty"}}, r"validation.null_images: no images"),
        ({"model": [{"name": "m", "weights": "w.pt"}]}, r"has weights but no module"),
        ({"model": [{"name": "m", "module": "mynet.py:build", "input_shape": "3x32"}]}, r"input_shape '3x32'"),
        ({"model": [{"name": "m", "module": "mynet.py:build", "kind": "video"}]}, r"kind = 'video'"),
        ({"model": [{"name": "m", "module": "mynet.py:build", "mean": "0.5"}]}, r"mean must be a list of numbers"),
        ({"model": [{"name": "m", "module": "mynet.py:build", "stages": ["1"]}]}, r"stages must be a table"),
    ],
)
def test_a_plan_with_unusable_own_inputs_is_refused_naming_the_field(tmp_path, change, message):
    from metamers.runs.plan import PlanError, parse_plan

    _write_images(tmp_path / "photos", ["cat/a.png", "dog/b.png"])
    (tmp_path / "empty").mkdir()
    data = {"model": [{"name": "efficientnet-lite0", "layers": ["block_1"]}], **change}
    with pytest.raises(PlanError, match=message):
        parse_plan(data, base=tmp_path)


def test_a_plan_resolves_its_paths_from_its_own_folder_and_round_trips(netfile, tmp_path, monkeypatch):
    from metamers.runs.plan import load_plan, parse_plan, plan_toml

    _write_images(tmp_path / "photos", ["cat/a.png", "dog/b.png"])
    (tmp_path / "plan.toml").write_text(
        '[stimuli]\nimages = "photos"\nimage_labels = "folders"\n[validation]\nnull_images = "photos"\n'
        '[[model]]\nname = "mine"\nmodule = "mynet.py:build"\ninput_shape = [3, 32, 32]\n'
        'stages = { early = "1" }\n'
    )
    monkeypatch.chdir("/")
    plan = load_plan(tmp_path / "plan.toml")
    assert plan.stimuli("image") == ("cat-a", "dog-b") and plan.stimulus_labels("image") == {
        "cat-a": "cat",
        "dog-b": "dog",
    }
    assert plan.models[0].spec["module"] == f"{netfile}:build" and plan.null_files("image").names == ("cat-a", "dog-b")
    import tomllib

    assert parse_plan(tomllib.loads(plan_toml(plan))) == plan  # written with absolute paths


AUDIO_NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 64, stride=16)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool1d(8)
        self.fc = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x.unsqueeze(1)))).flatten(1))


def build():
    return Net()
"""


@pytest.mark.slow
def test_a_users_audio_model_at_its_own_rate_runs_as_a_plan_on_its_own_sounds(tmp_path):
    import json

    from metamers.runs.plan import Plan, load_plan
    from metamers.runs.run import run_plan

    (tmp_path / "snd.py").write_text(AUDIO_NET)
    rng = np.random.default_rng(0)
    for folder, n in (("clips", 2), ("null", 6)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            t = np.arange(12000) / 16000
            tone = 0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(tmp_path / folder / f"s{i}.wav", tone, 16000)
    (tmp_path / "plan.toml").write_text(
        'name = "tones"\n[stimuli]\nsounds = "clips"\n[synthesis.audio]\niterations = 10\nlr = 0.002\n'
        '[validation]\npairs = 15\nnull_sounds = "null"\nsame_label = false\n'
        '[[model]]\nname = "snd"\nmodule = "snd.py:build"\nkind = "audio"\ninput_shape = [16000]\n'
        'sample_rate = 16000\nlayers = ["relu"]\n'
    )
    plan = load_plan(tmp_path / "plan.toml")
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan  # plan.json holds the same plan
    summary = run_plan(tmp_path / "plan.toml", tmp_path / "run", progress=False)
    assert summary["jobs"]["failed"] == 0 and summary["metamers"] == 2
    wav = tmp_path / "run" / "media" / "snd" / "relu" / "s0.wav"
    assert sf.info(str(wav)).samplerate == 16000 and sf.info(str(wav)).frames == 16000
    assert (wav.with_name("s0_cochleagram.png")).is_file()


def test_a_users_audio_model_refuses_mean_and_std_and_a_plan_refuses_a_zoo_name(tmp_path):
    from metamers.runs.plan import PlanError, parse_plan

    (tmp_path / "snd.py").write_text(AUDIO_NET)
    spec = UserModelSpec("snd", f"{tmp_path}/snd.py:build", kind="audio", input_shape=(16000,), mean=(0.0,), std=(1.0,))
    with pytest.raises(UserModelError, match="mean and std are for images"):
        build_user_model(spec)
    data = {"model": [{"name": "efficientnet-lite0", "module": "snd.py:build", "kind": "audio"}]}
    with pytest.raises(PlanError, match="is a zoo model's name"):
        parse_plan(data, base=tmp_path)


def test_transfer_refuses_a_string_of_recognizers(tmp_path):
    from metamers.runs.transfer import transfer_dir

    with pytest.raises(ValueError, match="recognizers must be a list of zoo names"):
        transfer_dir(tmp_path, "efficientnet-lite1")
