"""The per-item L-BFGS step rule (``optimizer="lbfgs"``): independent items, bounds, exact resume, better fits."""

import pytest
import torch
from torch import nn

from metamers import synthesize


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
    )  # fmt: skip


KW = dict(iterations=80, optimizer="lbfgs", lr=1.0, schedule="constant", memory_format="contiguous")


def test_a_batch_is_its_items_made_one_at_a_time():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 12, 12)
    init = torch.rand(3, 3, 12, 12)
    whole = synthesize(small_cnn(), x, "3", init=init, **KW)
    for i in range(3):
        one = synthesize(small_cnn(), x[i : i + 1], "3", init=init[i : i + 1], **KW)
        assert torch.allclose(one.metamers[0], whole.metamers[i], atol=1e-5)


def test_it_fits_better_than_adam_in_as_many_evaluations_and_keeps_the_bounds():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 12, 12)
    lbfgs = synthesize(small_cnn(), x, "3", **KW)
    adam = synthesize(small_cnn(), x, "3", iterations=80, lr=0.01, schedule="constant")
    assert (lbfgs.final_loss < adam.final_loss).all(), (lbfgs.final_loss, adam.final_loss)
    assert lbfgs.metamers.min() >= 0 and lbfgs.metamers.max() <= 1


class Interrupted(Exception):
    pass


def test_resuming_from_a_checkpoint_ends_as_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    kw = {**KW, "checkpoint_every": 30}
    whole = synthesize(small_cnn(), x, "3", **kw)

    def stop_at_40(it, _):
        if it == 40:
            raise Interrupted

    with pytest.raises(Interrupted):
        synthesize(small_cnn(), x, "3", checkpoint=tmp_path / "c.pt", callback=stop_at_40, **kw)
    resumed = synthesize(small_cnn(), x, "3", checkpoint=tmp_path / "c.pt", **kw)
    assert torch.equal(resumed.metamers, whole.metamers) and torch.equal(resumed.losses, whole.losses)


def test_an_item_stopped_on_fidelity_stays_where_it_stopped():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    init = torch.rand(2, 3, 12, 12)
    init[0] = x[0]
    at = {}

    def keep(it, m):
        if it == 10:
            at["x"] = m[0].detach().clone()

    r = synthesize(small_cnn(), x, "3", init=init, stop_rho=0.99, check_every=10, callback=keep, **KW)
    assert r.stop_iteration[0] == 10 and torch.equal(r.metamers[0], at["x"])
