"""What differs between images, sounds and cochleagrams (modality.py)."""

import pytest
import torch

from metamers.modality import KINDS, as_presented, modality, quantize


def test_each_kind_names_its_media_by_one_rule():
    assert modality("image").media_files("m", "s", "x") == ["media/m/s/x.png"]
    assert modality("audio").media_files("m", "s", "x") == ["media/m/s/x.wav", "media/m/s/x_cochleagram.png"]
    assert modality("cochleagram").media_files("m", "s", "x") == ["media/m/s/x.png"]
    assert modality("cochleagram").cochleagram_path("m", "s", "x") == "media/m/s/x.png"  # the picture is the metamer
    assert modality("image").cochleagram_path("m", "s", "x") is None


def test_sounds_share_the_audio_family_and_only_waveforms_play():
    assert {k: (m.family, m.playable, m.perceived) for k, m in KINDS.items()} == {
        "image": ("image", False, "sees"),
        "audio": ("audio", True, "hears"),
        "cochleagram": ("audio", False, "hears"),
    }


def test_what_a_person_sees_or_hears_is_the_file_resolution():
    x = torch.tensor([-0.3, 0.12345, 0.7, 1.4])
    assert torch.equal(as_presented(x, "image"), (x.clamp(0, 1) * 255).round() / 255)
    assert torch.equal(as_presented(x, "audio"), (x.clamp(-1, 1) * 32767).round() / 32767)
    assert torch.equal(as_presented(x, "cochleagram"), x)
    assert torch.equal(quantize(as_presented(x, "image"), "8-bit"), as_presented(x, "image"))  # idempotent


def test_an_unknown_kind_or_resolution_is_named():
    with pytest.raises(ValueError, match="unknown input kind 'video': choose from image, audio, cochleagram"):
        modality("video")
    with pytest.raises(ValueError, match="resolution '12-bit' is not one of float, 8-bit, 16-bit"):
        quantize(torch.zeros(1), "12-bit")
