import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from metamers import CheckpointMismatch, SynthesisResult, SynthesisSettings, spearman, synthesize
from metamers.synthesis import item_losses


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
    )  # fmt: skip


def test_defaults_follow_the_paper():
    s = SynthesisSettings()
    assert (s.optimizer, s.lr, s.loss, s.iterations) == ("adam", 0.001, "squared_error", 15000)
    assert s.init == "white" and s.bounds == (0.0, 1.0) and s.linear_grad_relu
    f = SynthesisSettings.preset("feather2023")
    assert (f.loss, f.schedule, f.iterations, f.lr_at(3000)) == ("normalized", "step_halving", 24000, 0.5)


def test_bad_settings_say_what_is_allowed():
    with pytest.raises(ValueError, match="loss='l1' is not one of squared_error"):
        SynthesisSettings(loss="l1")
    with pytest.raises(TypeError, match="unknown synthesis setting"):
        synthesize(small_cnn(), torch.rand(1, 3, 8, 8), "1", iterashuns=3)


def test_stimuli_outside_bounds_are_refused():
    with pytest.raises(ValueError, match=r"stimuli span \[0, 255\].*bounds are \[0, 1\]"):
        synthesize(small_cnn(), torch.linspace(0, 255, 192).view(1, 3, 8, 8), "1", iterations=1)


def test_losses():
    a, t = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0]])
    assert item_losses(a, t, "squared_error").item() == 25.0
    assert item_losses(a, t, "mse").item() == 12.5
    assert item_losses(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 2.0]]), "normalized").item() == pytest.approx(
        2**0.5 / 2
    )


def test_metamers_stay_in_bounds_and_match():
    x = torch.rand(3, 3, 12, 12)
    r = synthesize(small_cnn(), x, "3", iterations=400, lr=0.02, schedule="constant")
    assert r.metamers.min() >= 0 and r.metamers.max() <= 1
    assert (r.layer_rho > 0.95).all()
    assert r.losses.shape == (40, 3) and r.loss_iterations[-1] == 390
    assert (r.losses[-1] < r.losses[0]).all()


def test_same_seed_same_result_other_seed_other_result():
    x = torch.rand(2, 3, 12, 12)
    a = synthesize(small_cnn(), x, "3", iterations=30, seed=1)
    b = synthesize(small_cnn(), x, "3", iterations=30, seed=1)
    c = synthesize(small_cnn(), x, "3", iterations=30, seed=2)
    assert torch.equal(a.metamers, b.metamers)
    assert not torch.equal(a.metamers, c.metamers)


def test_batch_equals_one_at_a_time():
    x = torch.rand(3, 3, 12, 12)
    init = torch.rand(3, 3, 12, 12)
    batch = synthesize(small_cnn(), x, "3", iterations=50, lr=0.01, init=init)
    for i in range(3):
        one = synthesize(small_cnn(), x[i : i + 1], "3", iterations=50, lr=0.01, init=init[i : i + 1])
        assert torch.allclose(batch.metamers[i], one.metamers[0], atol=1e-5)


def test_chunked_passes_give_the_same_metamers():
    x = torch.rand(5, 3, 12, 12)
    whole = synthesize(small_cnn(), x, "3", iterations=40, lr=0.01, chunk_size=5)
    for c in (1, 2, 3):
        chunked = synthesize(small_cnn(), x, "3", iterations=40, lr=0.01, chunk_size=c)
        assert torch.allclose(chunked.metamers, whole.metamers, atol=1e-5)
        assert torch.allclose(chunked.losses, whole.losses, rtol=1e-4)


def test_each_item_stops_on_its_own_loss():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    init = x.clone()
    init[1] = torch.rand(3, 12, 12)  # item 0 starts at its target: loss 0
    # contiguous: the targets' arithmetic exactly (channels-last rounds differently, and Adam turns a rounding-sized
    # gradient into a full step, so "starts at its target" would not mean loss 0)
    r = synthesize(
        small_cnn(), x, "3", iterations=200, stop_loss=1e-9, check_every=10, init=init, memory_format="contiguous"
    )
    assert r.stop_reason[0] == "reached stop_loss" and r.stop_iteration[0] == 10
    assert torch.equal(r.metamers[0], x[0])  # a stopped item is frozen
    assert r.stop_reason[1] == "completed" and r.stop_iteration[1] == 200


class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)


def test_nan_loss_stops_that_item_and_keeps_the_others():
    x = torch.rand(2, 16) + 0.5
    init = torch.rand(2, 16) + 0.5
    init[1, 3] = -1.0  # log of a negative number: NaN for item 1 only
    r = synthesize(nn.Sequential(Log()), x, "0", iterations=300, lr=0.01, bounds=None, init=init, check_every=50)
    assert "loss became nan" in r.stop_reason[1] and r.stop_iteration[1] == 0
    assert torch.equal(r.metamers[1], init[1])  # kept the last finite state
    assert r.stop_reason[0] == "completed" and r.layer_rho[0] > 0.99
    assert torch.isfinite(r.metamers).all()


def test_linear_gradient_relu_is_reported():
    r = synthesize(small_cnn(), torch.rand(1, 3, 8, 8), "1", iterations=2)
    assert r.linear_grad_applied
    r = synthesize(small_cnn(), torch.rand(1, 3, 8, 8), "0", iterations=2)
    assert not r.linear_grad_applied
    r = synthesize(small_cnn(), torch.rand(1, 3, 8, 8), "1", iterations=2, linear_grad_relu=False)
    assert not r.linear_grad_applied


def test_result_save_and_load_round_trip(tmp_path):
    r = synthesize(small_cnn(), torch.rand(2, 3, 8, 8), "3", iterations=20, record_every=5)
    back = SynthesisResult.load(r.save(tmp_path / "m.safetensors"))
    assert torch.equal(back.metamers, r.metamers) and torch.equal(back.losses, r.losses)
    assert back.settings == r.settings and back.stop_reason == r.stop_reason and back.layer == "3"


def test_checkpoint_from_another_synthesis_is_refused(tmp_path):
    x = torch.rand(1, 3, 8, 8)
    synthesize(small_cnn(), x, "3", iterations=10, checkpoint=tmp_path / "c.pt")
    with pytest.raises(CheckpointMismatch, match="different synthesis"):
        synthesize(small_cnn(), x, "3", iterations=10, lr=0.5, checkpoint=tmp_path / "c.pt")


SCRIPT = """
import os, signal, sys, torch
torch.set_num_threads(2)
sys.path.insert(0, {tests!r})
from conftest import photo
from metamers import synthesize
from metamers.models import load
model = load("efficientnet-lite0").module
x = torch.stack([photo("chelsea", 64), photo("rocket", 64)])
kill_at = int(sys.argv[2])
def cb(it, _):
    if it == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
r = synthesize(model, x, "net._blocks.2", iterations=60, lr=0.01, checkpoint=sys.argv[1], checkpoint_every=20,
               callback=cb)
r.save(sys.argv[1] + ".result")
"""


def test_killed_synthesis_resumes_to_the_same_result(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=os.path.dirname(__file__))))
    ckpt = tmp_path / "ckpt.pt"
    killed = subprocess.run([sys.executable, str(script), str(ckpt), "50"], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert ckpt.exists() and not (tmp_path / "ckpt.pt.result").exists()
    assert torch.load(ckpt, weights_only=True)["iteration"] == 40
    resumed = subprocess.run([sys.executable, str(script), str(ckpt), "-1"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    once = tmp_path / "once.pt"
    straight = subprocess.run([sys.executable, str(script), str(once), "-1"], capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    a = SynthesisResult.load(str(ckpt) + ".result")
    b = SynthesisResult.load(str(once) + ".result")
    assert torch.equal(a.metamers, b.metamers)
    assert torch.equal(a.losses, b.losses)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "layer", "lr", "iterations"),
    [
        ("early", "net._swish@0", 0.01, 150),
        ("middle", "net._blocks.7", 0.03, 300),
        ("late", "net._blocks.15", 0.03, 400),
    ],
)
def test_pretrained_cnn_metamers_match_their_layer(lite0, photos128, stage, layer, lr, iterations):
    r = synthesize(lite0.module, photos128, layer, iterations=iterations, lr=lr, schedule="constant")
    assert (r.layer_rho >= 0.95).all(), r.summary()
    pixels = spearman(r.metamers, photos128)
    if stage == "early":
        assert (pixels > 0.9).all()  # an early-layer metamer looks like its image
    if stage == "late":
        assert (pixels.abs() < 0.3).all()  # a late-layer one is far from it in input space
        noise = spearman(r.initial, photos128)
        assert (pixels.abs() < noise.abs() + 0.3).all()
