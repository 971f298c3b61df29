from functools import partial

import pytest
import torch
from torch import nn

from metamers import synthesize
from metamers._fastpath import channels_last, folded_batchnorm
from metamers.synthesis import _forward
from metamers.taps import Taps, frozen


def _with_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters (folding them must matter)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def conv_bn_net(bias: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return _with_stats(
        nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
        )
    )  # fmt: skip


class Residual(nn.Module):
    """conv -> bn, with the convolution's output also added back: that convolution must not be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class StandardizedConv(nn.Conv2d):
    """A convolution that normalises its weight in forward: folding a scale into the weight would be undone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), keepdim=True)
        return self._conv_forward(x, w, self.bias)


def _pass(model: nn.Module, layer: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    taps = Taps(model, [layer], linear_grad=layer)
    xa = x.clone().requires_grad_(True)
    acts = taps(xa)[layer]
    target = torch.linspace(-1, 1, acts.numel()).view_as(acts)
    (grad,) = torch.autograd.grad((acts - target).pow(2).sum(), xa)
    return acts.detach(), grad


def _folded(model: nn.Module, layer: str, x: torch.Tensor, keep=frozenset()):
    taps = Taps(model, [layer], linear_grad=layer)
    run = partial(_forward, taps, layer, "float32", "cpu")
    return folded_batchnorm(model, run, x[:1], set(keep))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("bias", [False, True])
def test_folding_keeps_activations_and_gradients(bias):
    net, x = conv_bn_net(bias), torch.rand(3, 3, 16, 16)
    with frozen(net):
        acts, grad = _pass(net, "5", x)
        with _folded(net, "5", x) as n:
            f_acts, f_grad = _pass(net, "5", x)
            assert "forward" in net[1].__dict__  # the norm is bypassed
    assert n == 2
    assert _rel(f_acts, acts) < 1e-5 and _rel(f_grad, grad) < 1e-5


def test_folding_restores_the_model_exactly():
    net = conv_bn_net(bias=False)
    params = {k: (p, p.clone()) for k, p in net.named_parameters()}
    x = torch.rand(2, 3, 16, 16)
    with frozen(net), _folded(net, "5", x) as n:
        assert n == 2 and net[0].bias is not None  # the folded shift lives in a bias
    assert net[0].bias is None and net[3].bias is None
    assert "forward" not in net[1].__dict__
    for k, p in net.named_parameters():
        assert p is params[k][0] and torch.equal(p, params[k][1])


def _unfoldable(case: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if case == "read twice":  # the convolution's output also added back: it must keep its own values
        return _with_stats(nn.Sequential(Residual(), nn.ReLU())), torch.rand(2, 4, 8, 8)
    # a convolution that rewrites its weight in forward: a folded scale would be undone (the probe check catches it)
    return _with_stats(nn.Sequential(StandardizedConv(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())), torch.rand(2, 3, 8, 8)


@pytest.mark.parametrize("case", ["read twice", "rewrites its weight"])
def test_a_convolution_that_cannot_be_folded_is_left_alone(case):
    net, x = _unfoldable(case)
    layer = str(len(net) - 1)
    with frozen(net):
        acts, _ = _pass(net, layer, x)
        with _folded(net, layer, x) as n:
            f_acts, _ = _pass(net, layer, x)
    assert n == 0 and torch.equal(f_acts, acts)


def test_a_tapped_convolution_is_not_folded():
    net, x = conv_bn_net(), torch.rand(2, 3, 16, 16)
    with frozen(net), _folded(net, "3", x, keep={net[3]}) as n:
        assert n == 1  # only the first pair: the generation layer is the second convolution's own output


def test_training_mode_batch_norm_is_not_folded():
    net, x = conv_bn_net(), torch.rand(2, 3, 16, 16)
    net.train()
    with _folded(net, "5", x) as n:
        assert n == 0


def test_channels_last_puts_back_the_original_tensors():
    net = conv_bn_net()
    before = {k: (p, p.data_ptr(), p.stride()) for k, p in net.named_parameters()}
    with channels_last(net):
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert net[0].weight.stride() != before["0.weight"][2]
    for k, p in net.named_parameters():
        assert p is before[k][0] and p.data_ptr() == before[k][1] and p.stride() == before[k][2]


def test_synthesis_reports_and_uses_the_fast_paths():
    net, x = conv_bn_net(), torch.rand(2, 3, 16, 16)
    fast = synthesize(net, x, "5", iterations=300, lr=0.01, progress=False)
    plain = synthesize(
        net, x, "5", iterations=300, lr=0.01, progress=False, fold_batchnorm=False, memory_format="contiguous"
    )
    assert fast.extra["speed"] == {"batchnorm_folded": 2, "memory_format": "channels_last", "precision": "float32"}
    assert plain.extra["speed"]["batchnorm_folded"] == 0
    assert fast.metamers.is_contiguous() and fast.metamers.shape == x.shape
    assert (fast.layer_rho > 0.9).all() and (fast.layer_rho - plain.layer_rho).abs().max() < 0.02
    assert "forward" not in net[1].__dict__ and net[0].weight.is_contiguous()


def test_lower_precision_runs_and_is_recorded():
    net, x = conv_bn_net(), torch.rand(2, 3, 16, 16)
    r = synthesize(net, x, "5", iterations=200, lr=0.01, progress=False, precision="bfloat16")
    assert r.extra["speed"]["precision"] == "bfloat16" and r.extra["speed"]["batchnorm_folded"] == 2
    assert r.metamers.dtype == torch.float32 and (r.layer_rho > 0.8).all()


@pytest.mark.parametrize(("kw", "msg"), [({"precision": "half"}, "precision"), ({"memory_format": "nhwc"}, "memory")])
def test_bad_speed_options_say_what_is_allowed(kw, msg):
    with pytest.raises(ValueError, match=msg):
        synthesize(conv_bn_net(), torch.rand(1, 3, 8, 8), "5", iterations=1, progress=False, **kw)


def test_pretrained_lite0_folds_every_pair_before_its_layer(lite0):
    x = torch.rand(2, 3, 224, 224)
    layer = lite0.stages["block_2"]
    with frozen(lite0.module):
        acts, grad = _pass(lite0.module, layer, x)
        with channels_last(lite0.module), _folded(lite0.module, layer, x) as n:
            f_acts, f_grad = _pass(lite0.module, layer, x)
    assert n == 9  # the stem and blocks 0-2: 1 + 2 + 3 + 3 convolution/batch-norm pairs
    assert _rel(f_acts, acts) < 1e-5 and _rel(f_grad, grad) < 1e-4
