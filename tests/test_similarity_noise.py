import numpy as np
import pytest
import torch
from scipy import stats

from metamers import gaussian_noise, pearson, pink_noise, rank, snr_db, spearman, white_noise


def test_rank_matches_scipy_with_ties():
    x = torch.randint(0, 5, (4, 50)).double()
    expected = np.stack([stats.rankdata(row) for row in x.numpy()])
    assert np.array_equal(rank(x).numpy(), expected)


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (5, 200), generator=g).float()
    b = a + torch.randint(0, 4, (5, 200), generator=g).float()
    ours = spearman(a, b).numpy()
    ref = [stats.spearmanr(a[i].numpy(), b[i].numpy()).statistic for i in range(5)]
    assert np.allclose(ours, ref, atol=1e-12)


def test_pearson_and_snr():
    a = torch.randn(3, 100, dtype=torch.float64)
    b = 2 * a + 1
    assert torch.allclose(pearson(a, b), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(snr_db(a, a * 1.1), torch.full((3,), 20.0, dtype=torch.float64))


def test_spearman_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        spearman(torch.zeros(2, 3), torch.zeros(2, 4))


def test_white_noise_is_centred_in_the_range():
    x = white_noise((4, 3, 32, 32), bounds=(0.0, 255.0), seed=0)
    assert abs(float(x.mean()) - 127.5) < 0.2
    assert float(x.min()) >= 127.5 - 12.75 and float(x.max()) <= 127.5 + 12.75


def test_noise_is_seeded():
    assert torch.equal(gaussian_noise((10,), seed=3), gaussian_noise((10,), seed=3))
    assert not torch.equal(pink_noise((100,), seed=3), pink_noise((100,), seed=4))


def test_pink_noise_has_a_one_over_f_spectrum_and_the_rms_asked_for():
    x = pink_noise((64, 2**14), rms_level=0.01, seed=0)
    assert torch.allclose(x.pow(2).mean(-1).sqrt(), torch.full((64,), 0.01), rtol=1e-5)
    assert x.mean(-1).abs().max() < 1e-9
    power = torch.fft.rfft(x.double(), dim=-1).abs().pow(2).mean(0)[1:]
    f = torch.arange(1, power.shape[0] + 1, dtype=torch.float64)
    slope = np.polyfit(np.log(f[10:4000].numpy()), np.log(power[10:4000].numpy()), 1)[0]
    assert -1.1 < slope < -0.9
