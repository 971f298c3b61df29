"""Stopping on fidelity: ``stop_rho`` at the generation layer and ``stop_label``, item by item."""

import pytest
import torch
from torch import nn

from metamers import SynthesisSettings, synthesize


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
    )  # fmt: skip


class Counting(nn.Module):
    """Counts the items that go through the network."""

    def __init__(self, net):
        super().__init__()
        self.net, self.items = net, 0

    def forward(self, x):
        self.items += x.shape[0]
        return self.net(x)


def test_an_item_stops_once_its_rho_is_reached_and_is_frozen():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    init = torch.rand(2, 3, 12, 12)
    init[0] = x[0]  # item 0 starts at its stimulus: rho 1
    at_stop = {}

    def keep(it, metamers):
        if it == 20:
            at_stop["x"] = metamers[0].detach().clone()

    r = synthesize(small_cnn(), x, "3", iterations=60, lr=0.01, stop_rho=0.99, check_every=20, init=init, callback=keep)
    assert r.stop_reason[0] == "reached stop_rho 0.99" and r.stop_iteration[0] == 20
    assert torch.equal(r.metamers[0], at_stop["x"].contiguous())  # frozen from its stop on
    assert r.stop_reason[1] == "completed" and r.stop_iteration[1] == 60


def test_stopped_items_no_longer_go_through_the_model():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 12, 12)
    init = torch.rand(3, 3, 12, 12)
    init[0], init[1] = x[0], x[1]
    counts = []
    for stop in (None, 0.99):
        net = Counting(small_cnn())
        synthesize(net, x, "net.3", iterations=60, stop_rho=stop, check_every=20, init=init, fold_batchnorm=False)
        counts.append(net.items)
    # items 0 and 1 stop at the check at 20: 2 x 40 item-iterations fewer, for the rho checks of 3 items at 20 and of
    # item 2 at 40 and 60, and one pass of the 2 stopped items for their loss where they stay
    assert counts[0] - counts[1] == 2 * 40 - (3 + 2) - 2


def _label_flip():
    """A stimulus and a start with rho 0.997 at layer "0" whose labels differ (the two largest values swapped)."""
    x = torch.linspace(0.1, 0.4, 16).view(1, 16)
    x[0, 0], x[0, 1] = 0.50, 0.49
    init = x.clone()
    init[0, 0], init[0, 1] = 0.49, 0.50
    head = nn.Linear(16, 2, bias=False)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0], head.weight[1, 1] = 1.0, 1.0  # label 0 when x0 > x1
    return nn.Sequential(nn.ReLU(), head), x, init


def test_stop_label_waits_for_the_stimulus_label():
    net, x, init = _label_flip()
    kw = dict(iterations=40, lr=1e-6, check_every=20, init=init, stop_rho=0.99, bounds=None)
    assert synthesize(net, x, "0", **kw).stop_reason == ["reached stop_rho 0.99"]
    r = synthesize(net, x, "0", stop_label=True, **kw)
    assert r.stop_reason == ["completed"] and r.stop_iteration == [40]


def test_stop_label_stops_when_rho_and_label_agree():
    net, x, _ = _label_flip()
    r = synthesize(net, x, "0", iterations=40, check_every=10, init=x.clone(), stop_rho=0.99, stop_label=True)
    assert r.stop_reason == ["reached stop_rho 0.99 with the stimulus's label"] and r.stop_iteration == [10]


def _rounding_tie():
    """A stimulus of label 1 and a start of label 1 whose two top values round to one 8-bit level (label 0 then)."""
    net, x, _ = _label_flip()
    x[0, 0], x[0, 1] = 0.49, 0.50
    init = x.clone()
    init[0, 0], init[0, 1] = 0.4995, 0.4998  # both 127/255 as an 8-bit PNG; argmax of a tie is the first
    return net, x, init


@pytest.mark.parametrize(
    ("stop_on", "reason"), [("float", "reached stop_rho 0.99 with the stimulus's label"), ("8-bit", "completed")]
)
def test_stop_on_judges_the_metamer_as_its_file_holds_it(stop_on, reason):
    net, x, init = _rounding_tie()
    kw = dict(iterations=40, lr=1e-6, check_every=10, init=init, stop_rho=0.99, stop_label=True, bounds=None)
    assert synthesize(net, x, "0", stop_on=stop_on, **kw).stop_reason == [reason]


def test_stop_on_names_the_resolution_in_the_reason():
    net, x, _ = _label_flip()
    r = synthesize(net, x, "0", iterations=20, check_every=10, init=x.clone(), stop_rho=0.99, stop_on="8-bit")
    assert r.stop_reason == ["reached stop_rho 0.99 as an 8-bit image"] and r.stop_iteration == [10]


@pytest.mark.parametrize(("stop_on", "kind"), [("8-bit", "image"), ("16-bit", "audio")])
def test_stop_on_rounds_to_the_grid_of_the_written_file(stop_on, kind):
    from metamers._stopping import Fidelity
    from metamers.modality import as_presented

    x = torch.rand(3, 1000) * 2.4 - 1.2
    f = Fidelity(torch.rand(3, 4), acts=lambda v: v, stop_on=stop_on)
    assert torch.equal(f._items(x, torch.arange(3)), as_presented(x, kind))


def test_stop_label_needs_class_scores():
    with pytest.raises(ValueError, match="stop_label needs a model whose output is one row of class scores"):
        synthesize(small_cnn()[:4], torch.rand(1, 3, 8, 8), "1", iterations=2, stop_rho=0.9, stop_label=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stop_rho": 1.5}, "stop_rho is a Spearman rho: between -1 and 1"),
        ({"stop_rho": "0.99"}, "stop_rho must be a number"),
        ({"stop_label": True}, "stop_label adds a condition to stop_rho or stop_loss"),
        ({"stop_rho": 0.9, "stop_label": "yes"}, "stop_label must be true or false"),
        ({"stop_rho": 0.9, "stop_on": "png"}, "stop_on='png' is not one of float, 8-bit, 16-bit"),
    ],
)
def test_bad_stopping_settings_say_what_is_wrong(changes, message):
    with pytest.raises((TypeError, ValueError), match=message):
        SynthesisSettings(**changes)


class Interrupted(Exception):
    pass


def test_resuming_after_an_item_stopped_ends_as_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    init = torch.rand(2, 3, 12, 12)
    init[0] = x[0]
    kw = dict(iterations=60, lr=0.01, stop_rho=0.99, check_every=10, init=init, checkpoint_every=30)
    whole = synthesize(small_cnn(), x, "3", **kw)

    def stop_at_35(it, _):
        if it == 35:
            raise Interrupted

    ckpt = tmp_path / "c.pt"
    with pytest.raises(Interrupted):
        synthesize(small_cnn(), x, "3", checkpoint=ckpt, callback=stop_at_35, **kw)
    resumed = synthesize(small_cnn(), x, "3", checkpoint=ckpt, **kw)  # from iteration 30, item 0 stopped at 10
    assert resumed.stop_iteration == whole.stop_iteration == [10, 60]
    assert torch.equal(resumed.metamers, whole.metamers)
    assert torch.equal(resumed.losses, whole.losses)
