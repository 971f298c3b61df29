import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metamers import LayerError, Taps, capture, list_layers


class Scale(nn.Module):
    def forward(self, x):
        return x * 2.0


class FunctionalRelu(nn.Module):
    def forward(self, x):
        return F.relu(x * 2.0)


class TensorReluInPlace(nn.Module):
    def forward(self, x):
        y = x * 2.0
        y.relu_()
        return y


class Head(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1, keepdim=True)


VARIANTS = {
    "nn.ReLU": lambda: nn.Sequential(Scale(), nn.ReLU(), Head()),
    "nn.ReLU(inplace)": lambda: nn.Sequential(Scale(), nn.ReLU(inplace=True), Head()),
    "F.relu in forward": lambda: nn.Sequential(FunctionalRelu(), Head()),
    "Tensor.relu_ in forward": lambda: nn.Sequential(TensorReluInPlace(), Head()),
    "nn.ReLU6": lambda: nn.Sequential(Scale(), nn.ReLU6(), Head()),
}
RELU_LAYER = {"nn.ReLU": "1", "nn.ReLU(inplace)": "1", "F.relu in forward": "0",
              "Tensor.relu_ in forward": "0", "nn.ReLU6": "1"}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_relu_output_is_marked(variant):
    model = VARIANTS[variant]()
    layers = {lay.name: lay for lay in list_layers(model, torch.zeros(1, 3, 4, 4))}
    assert layers[RELU_LAYER[variant]].relu
    assert not layers["output"].relu


def test_layer_feeding_a_relu_is_marked():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten())
    layers = {lay.name: lay for lay in list_layers(model, torch.zeros(1, 3, 8, 8))}
    assert layers["0"].feeds_relu and not layers["0"].relu
    assert layers["1"].relu and not layers["1"].feeds_relu
    assert not layers["2"].feeds_relu


def _grads(model, layer, x, w, linear):
    x = x.clone().requires_grad_(True)
    acts = Taps(model, [layer], linear_grad=layer if linear else None)(x)[layer]
    (g,) = torch.autograd.grad((acts * w).sum(), x)
    return acts.detach(), g


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_linear_gradient_relu(variant):
    torch.manual_seed(0)
    model = VARIANTS[variant]()
    layer = RELU_LAYER[variant]
    x = torch.randn(2, 3, 4, 4)
    w = torch.randn(2, 3, 4, 4)
    a_std, g_std = _grads(model, layer, x, w, linear=False)
    a_lin, g_lin = _grads(model, layer, x, w, linear=True)
    # forward values identical, bit for bit
    assert torch.equal(a_std, a_lin)
    # the gradient differs exactly where the ReLU's input (2x) is negative (for ReLU6: or above 6)
    differs = g_std != g_lin
    clipped = (x < 0) | (2 * x > 6) if variant == "nn.ReLU6" else x < 0
    assert torch.equal(differs, clipped)
    # and there it is the identity's: d(2x)/dx * w
    assert torch.allclose(g_lin, 2 * w)
    if variant != "nn.ReLU6":  # for ReLU6 the standard gradient is also 0 above 6
        assert torch.allclose(g_std, 2 * w * (x > 0))


def test_linear_gradient_touches_only_the_generation_layer_relu():
    class Block(nn.Module):
        def forward(self, x):
            return F.relu(F.relu(x * 2.0) - 1.0)

    model = nn.Sequential(Block(), Head())
    x = torch.randn(1, 50)
    w = torch.ones(1, 50)
    _, g = _grads(model, "0", x, w, linear=True)
    # the inner ReLU keeps its normal gradient: zero where 2x < 0
    assert torch.equal(g == 0, x < 0)
    assert torch.allclose(g[x > 0], torch.tensor(2.0))


def test_forward_stops_after_the_deepest_requested_layer():
    calls = []
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    for name, mod in model.named_children():
        mod.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    taps = Taps(model, ["1"])
    taps(torch.rand(3, 4))  # first call traces the whole model once
    calls.clear()
    taps(torch.rand(3, 4))
    assert calls == ["0", "1"]


def test_capture_several_layers_in_one_pass_matches_full_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3), nn.ReLU(inplace=True))
    x = torch.rand(2, 3, 10, 10)
    acts = capture(model, x, ["0", "1", "3"])
    with torch.no_grad():
        conv0 = model[0](x)
        assert torch.equal(acts["0"], conv0)  # not clobbered by the in-place ReLU after it
        assert torch.equal(acts["1"], conv0.relu())
        assert torch.equal(acts["3"], model(x))


def test_unknown_layer_lists_close_matches():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 2))
    with pytest.raises(LayerError, match=r"no layer '0\.2'.*Close matches: .*0\.1"):
        capture(model, torch.rand(1, 2), ["0.2"])


def test_module_called_twice_needs_a_call_index():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    names = [lay.name for lay in list_layers(model, torch.rand(1, 2))]
    assert "1@0" in names and "1@1" in names
    with pytest.raises(LayerError, match="runs 2 times"):
        capture(model, torch.rand(1, 2), ["1"])
    x = torch.rand(3, 2)
    acts = capture(model, x, ["1@1"])
    with torch.no_grad():
        assert torch.equal(acts["1@1"], model(x))


def test_model_is_left_unmodified():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.ReLU())
    model.train()
    capture(model, torch.rand(1, 2), ["2"])
    assert model.training
    assert not model[0]._forward_hooks and not model[0]._forward_pre_hooks
    assert model[0].weight.requires_grad
