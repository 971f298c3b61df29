import math

import numpy as np
import pytest
import torch

from metamers.audio.cochleagram import (
    Cochleagram,
    CochleagramSettings,
    erb_cosine_filters,
    erb_to_freq,
    freq_to_erb,
)

SR = 20000


@pytest.fixture(scope="module")
def coch():
    return Cochleagram()


def tone(freq, seconds=2.0, rms=0.05):
    t = torch.arange(int(SR * seconds)) / SR
    return (rms * math.sqrt(2) * torch.sin(2 * math.pi * freq * t))[None]


def test_default_shape_is_table_s2_input(coch):
    assert CochleagramSettings().shape == (211, 400)
    assert coch(torch.randn(3, 40000) * 0.01).shape == (3, 1, 211, 400)


def test_output_rate_is_200_hz():
    s = CochleagramSettings(n_samples=30000)
    assert s.n_frames == 300  # 1.5 s at 200 Hz


def test_band_pass_centres_are_equally_spaced_on_the_erb_scale():
    _, centres = erb_cosine_filters(40000, SR)
    band = centres[4:-4]  # without the 4 low-pass and 4 high-pass edge filters
    steps = np.diff(freq_to_erb(band))
    assert np.allclose(steps, steps[0], rtol=1e-9)
    assert len(band) == 4 * (50 + 1) - 1
    # they tile 20 Hz - 8 kHz: one spacing inside each limit
    assert band[0] > 20 and band[-1] < 8000
    assert math.isclose(float(erb_to_freq(freq_to_erb(band[0]) - steps[0])), 20.0, rel_tol=1e-9)


def test_squared_responses_sum_to_a_flat_response(coch):
    filters, _ = erb_cosine_filters(40000, SR)
    total = (filters.astype(np.float64) ** 2).sum(0)
    assert np.allclose(total, 1.0, atol=1e-5)  # DC to Nyquist


def test_band_pass_filters_are_half_cosines_peaking_at_their_centre():
    filters, centres = erb_cosine_filters(40000, SR)
    freqs = np.fft.rfftfreq(40000, 1 / SR)
    for ch in (20, 100, 180):
        peak = freqs[np.argmax(filters[ch])]
        assert abs(freq_to_erb(peak) - freq_to_erb(centres[ch])) < 0.05


@pytest.mark.parametrize("freq", [200.0, 1000.0, 3000.0, 6000.0])
def test_a_pure_tone_drives_the_channel_at_its_frequency(coch, freq):
    out = coch(tone(freq))[0, 0, :, 50:350].mean(-1)  # away from the edges
    best = int(out.argmax())
    assert abs(freq_to_erb(coch.centre_frequencies[best]) - freq_to_erb(freq)) < 0.25
    # and it is selective: a channel an octave away responds far less
    far = int(np.argmin(np.abs(coch.centre_frequencies - freq * 2)))
    assert out[far] < 0.3 * out[best]


def test_envelope_follows_amplitude_modulation(coch):
    t = torch.arange(40000) / SR
    am = (1 + 0.9 * torch.sin(2 * math.pi * 4 * t)) * torch.sin(2 * math.pi * 1000 * t) * 0.05
    ch = int(np.argmin(np.abs(coch.centre_frequencies - 1000)))
    env = coch(am[None])[0, 0, ch, 25:375].numpy()
    spectrum = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(env.size, 1 / 200)
    assert abs(freqs[spectrum.argmax()] - 4.0) < 0.6


def test_banded_method_matches_the_full_rate_pipeline():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40000, generator=g) * 0.02
    x[1] += tone(440)[0]
    full = Cochleagram(method="full")(x)
    banded = Cochleagram()(x)
    err = (full - banded).abs()
    assert float(err.mean() / full.mean()) < 1e-3
    assert float(err[..., 3:-3].max()) < 5e-3


def test_gradients_are_finite_through_silence_and_the_compression(coch):
    x = torch.zeros(1, 40000)
    x[0, 20000:20100] = 0.01  # mostly silent: the compression's derivative is infinite at zero
    x.requires_grad_(True)
    coch(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().max() > 0


def test_compression_gradient_is_clipped():
    from metamers.audio.cochleagram import clipped_power

    x = torch.tensor([0.0, 1e-6, 1.0], requires_grad=True)
    clipped_power(x, 0.3, 1.0).sum().backward()
    assert x.grad.tolist()[0] == pytest.approx(1.0)
    assert x.grad.tolist()[1] == pytest.approx(1.0)
    assert x.grad.tolist()[2] == pytest.approx(0.3)


def test_wrong_length_gets_a_clear_error(coch):
    with pytest.raises(ValueError, match="expected waveforms"):
        coch(torch.zeros(1, 1234))


def test_settings_refuse_a_band_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        CochleagramSettings(sr=8000, high_hz=8000)


def test_strided_lowpass_gradient_matches_the_plain_strided_convolution():
    """The polyphase backward of the anti-aliasing filter gives the gradient of conv1d(stride=s)."""
    from metamers.audio.cochleagram import _StridedFilter

    torch.manual_seed(0)
    kernel = torch.randn(1, 1, 101)
    for stride in (1, 4, 20, 50):
        x = torch.randn(3, 1, 4107, requires_grad=True)
        w = torch.randn_like(torch.nn.functional.conv1d(x, kernel, stride=stride))
        (plain,) = torch.autograd.grad((torch.nn.functional.conv1d(x, kernel, stride=stride) * w).sum(), x)
        out = _StridedFilter.apply(x, kernel, stride)
        (ours,) = torch.autograd.grad((out * w).sum(), x)
        assert torch.equal(out, torch.nn.functional.conv1d(x, kernel, stride=stride))
        torch.testing.assert_close(ours, plain, rtol=1e-4, atol=1e-6 * float(plain.abs().max()))  # summation order
