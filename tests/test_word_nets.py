import copy

import pytest
import torch
import torch.nn.functional as F

from metamers import capture, list_layers
from metamers.audio.word_nets import HanningPool, SamePad, WordNet

# Table S1.2's feature counts at full width (the paper's conv_0 is 96 x 71 x 134).
FULL_SHAPES = {
    "standard": {
        "conv_0": (96, 71, 134),
        "conv_1": (256, 18, 34),
        "conv_2": (512, 9, 17),
        "conv_3": (1024, 9, 17),
        "conv_4": (512, 9, 17),
        "fc_intermediate": (4096,),
    },
    "reduced_aliasing": {
        "conv_0": (96, 211, 400),
        "pool_0": (96, 71, 134),
        "pool_1": (256, 18, 34),
        "conv_2": (512, 9, 17),
        "conv_4": (512, 9, 17),
        "fc_intermediate": (4096,),
    },
}


@pytest.mark.parametrize("arch", ["standard", "reduced_aliasing"])
def test_full_size_networks_build_with_the_papers_layer_shapes(arch):
    with torch.device("meta"):  # no memory: the shapes are what is tested
        net = WordNet(793, arch, width=1.0)
    assert net.fc_intermediate[0].in_features == 512 * 5 * 9
    assert net.fc_intermediate[0].out_features == 4096
    assert net.logits.out_features == 793
    x = torch.zeros(1, 1, 211, 400, device="meta")
    acts = capture(net, x, list(FULL_SHAPES[arch]))
    assert {k: tuple(v.shape[1:]) for k, v in acts.items()} == FULL_SHAPES[arch]


@pytest.mark.parametrize("arch", ["standard", "reduced_aliasing"])
def test_default_size_networks_build_and_run(arch):
    net = WordNet(60, arch, width=0.125, n_background=8).eval()
    words, backgrounds = net.heads(torch.randn(2, 1, 211, 400))
    assert words.shape == (2, 60) and backgrounds.shape == (2, 8)
    names = [layer.name for layer in list_layers(net, torch.zeros(1, 1, 211, 400))]
    for layer in ["conv_0", "conv_1", "conv_2", "conv_3", "conv_4", "fc_intermediate", "logits"]:
        assert layer in names
    if arch == "reduced_aliasing":
        assert {"pool_0", "pool_1"} <= set(names)


def test_paper_kernel_sizes_and_strides():
    std = WordNet(10, "standard", width=1.0)
    ra = WordNet(10, "reduced_aliasing", width=1.0)
    assert std.conv_0[1].kernel_size == (7, 14) and std.conv_0[1].stride == (3, 3)
    assert std.conv_1[1].kernel_size == (4, 8) and std.conv_1[1].stride == (2, 2)
    assert isinstance(std.pool_0[1], torch.nn.MaxPool2d)
    assert ra.conv_0[1].stride == (1, 1) and ra.conv_1[1].stride == (1, 1)
    assert (ra.pool_0.size, ra.pool_0.stride) == (12, 3)
    assert (ra.pool_1.size, ra.pool_1.stride) == (8, 2)
    assert sum(p.numel() for p in std.parameters()) > 100e6  # the paper's size


def test_hanning_pool_is_a_normalised_low_pass_equal_to_its_2d_kernel():
    pool = HanningPool(3, 12, 3)
    x = torch.randn(2, 3, 40, 50)
    reference = F.conv2d(pool.pad(x), pool.kernel, stride=3, groups=3)
    assert torch.allclose(pool(x), reference, atol=1e-5)
    assert torch.allclose(pool.kernel.sum((1, 2, 3)), torch.ones(3))
    # a constant passes unchanged away from the padded border
    assert torch.allclose(pool(torch.ones(1, 3, 40, 50))[..., 3:-3, 3:-3], torch.ones(1), atol=1e-5)


def test_same_padding_gives_ceil_of_input_over_stride():
    for size, k, s in [(211, 7, 3), (400, 14, 3), (36, 4, 2), (67, 8, 2)]:
        out = F.conv2d(SamePad((k, 1), (s, 1))(torch.zeros(1, 1, size, 1)), torch.zeros(1, 1, k, 1), stride=(s, 1))
        assert out.shape[2] == -(-size // s)


def test_bad_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture must be one of"):
        WordNet(10, "resnet")


@pytest.mark.parametrize("arch", ["standard", "reduced_aliasing"])
def test_input_norm_moved_past_conv_0_equals_norm_then_conv(arch):
    torch.manual_seed(0)
    net = WordNet(5, arch, width=0.125)
    with torch.no_grad():
        net.bn_0.weight.fill_(1.7)
        net.bn_0.bias.fill_(0.3)
    norm, conv = copy.deepcopy(net.bn_0), copy.deepcopy(net.conv_0)
    x = torch.rand(3, 1, 211, 400)
    weights = torch.randn_like(net.conv_0(x, net.bn_0))
    norm.load_state_dict(net.bn_0.state_dict())
    for training in (True, False):
        net.train(training)
        norm.train(training)
        fused = net.conv_0(x, net.bn_0)
        plain = torch.nn.Sequential.forward(conv, norm(x))
        assert torch.allclose(fused, plain, atol=1e-5)
        assert torch.allclose(net.bn_0.running_mean, norm.running_mean)
        assert torch.allclose(net.bn_0.running_var, norm.running_var)
        (fused * weights).sum().backward()
        (plain * weights).sum().backward()
        ours, theirs = [*net.bn_0.parameters(), *net.conv_0.parameters()], [*norm.parameters(), *conv.parameters()]
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-4 * float(b.grad.abs().max()))
            a.grad, b.grad = None, None
