"""The audio zoo: word networks behind the cochleagram, with the weights this repository ships (trained here).

A model takes a 2-second waveform at 20 kHz ``[batch, 40000]`` and returns word logits; the cochleagram is inside the
graph, so synthesis optimises the waveform through it. Layer ``preprocess`` is the cochleagram itself (the paper's
"inverted cochleagram" condition); the network's layers read ``net.<name>``.

Shipped weights live in ``metamers/models/weights/<name>.safetensors`` (float16) with a card ``<name>.json``: the
architecture, width, vocabulary, training recipe and seed, corpus settings and held-out accuracies.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from metamers._files import sha256_file
from metamers.audio.cochleagram import Cochleagram, CochleagramSettings
from metamers.audio.word_nets import WordNet
from metamers.models.base import Preprocessed, ZooModel

__all__ = [
    "COCHLEAGRAM_VIEW",
    "RANDOM_TWINS",
    "WEIGHTS_DIR",
    "WORD_NETS",
    "cochleagram_view",
    "export_weights",
    "read_card",
    "word_model",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
# registry name -> architecture; each has shipped weights WEIGHTS_DIR/<name>.safetensors
WORD_NETS = {
    "word-standard": "standard",
    "word-reduced-aliasing": "reduced_aliasing",
    "word-standard-seed1": "standard",  # the paper's other-seed control: the same recipe from seed 1
    "word-standard-background": "standard",  # the same architecture trained on the background-sound task
    # trained on the real-speech corpus (`metamers corpus --kind real`): 159 labels, real speakers held out
    "word-real-standard": "standard",
    "word-real-reduced-aliasing": "reduced_aliasing",  # matched in validation accuracy to word-real-standard
    "word-real-standard-seed1": "standard",  # the other-seed control, trained to the same validation accuracy
    "word-real-reduced-aliasing-background": "reduced_aliasing",  # the background task: 23 classes, 15 of them real
    "word-real-reduced-aliasing-joint": "reduced_aliasing",  # the joint task: words and backgrounds, two heads
}
RANDOM_TWINS = ("word-standard", "word-reduced-aliasing", "word-real-reduced-aliasing")
"""Word networks registered with a seeded random twin (``<name>-random``); the others share these architectures."""

_STAGES = {
    "standard": ["conv_0", "conv_1", "conv_2", "conv_3", "conv_4", "fc_intermediate", "logits"],
    # Table S3: the first hanning pool after conv_0 and conv_1 has the standard network's conv_0/conv_1 features.
    "reduced_aliasing": ["pool_0", "pool_1", "conv_2", "conv_3", "conv_4", "fc_intermediate", "logits"],
}


def read_card(path: str | Path) -> dict:
    """The JSON card beside a weights file (``x.safetensors`` -> ``x.json``)."""
    card = Path(path).with_suffix(".json")
    if not card.exists():
        raise FileNotFoundError(f"{card} not found: word-network weights need their card (architecture, classes).")
    return json.loads(card.read_text())


def export_weights(state_dict: dict, card: dict, path: str | Path) -> Path:
    """Write a trained network as float16 safetensors plus its JSON card; return the weights path.

    Examples
    --------
    >>> import tempfile
    >>> net = WordNet(3, width=0.125)
    >>> p = export_weights(net.state_dict(), {"architecture": "standard", "width": 0.125, "classes": list("abc")},
    ...                    tempfile.mkdtemp() + "/w.safetensors")
    >>> word_model("word-standard", weights=p).labels
    ['a', 'b', 'c']
    """
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(path))
    path.with_suffix(".json").write_text(json.dumps(card, indent=2))
    return path


def word_model(
    name: str,
    pretrained: bool = True,
    seed: int = 0,
    weights: str | Path | None = None,
) -> ZooModel:
    """A word network by registry name, with its shipped weights, a weights file, or a seeded random init.

    Parameters
    ----------
    name : str
        A key of :data:`WORD_NETS` (``word-standard``, ``word-reduced-aliasing``, ``word-standard-seed1``,
        ``word-standard-background``; trained on real speakers too: ``word-real-standard``,
        ``word-real-reduced-aliasing``, ``word-real-standard-seed1``, and the reduced-aliasing network on the
        background task, ``word-real-reduced-aliasing-background``).
    pretrained : bool
        Load the shipped weights (False: random weights drawn with ``seed``, same width and classes).
    seed : int
        Seed of the random initialization.
    weights : path, optional
        A ``.safetensors`` file written by :func:`export_weights` (or `metamers train`), with its ``.json`` card:
        e.g. the same architecture trained from another seed, or at full width.

    Examples
    --------
    >>> m = word_model("word-standard")  # doctest: +SKIP
    >>> m.input_shape, m.stages["cochleagram"]  # doctest: +SKIP
    ((40000,), 'preprocess')
    """
    if name not in WORD_NETS:
        raise KeyError(f"no word network {name!r}; choose one of {', '.join(WORD_NETS)}.")
    arch = WORD_NETS[name]
    path = Path(weights) if weights is not None else WEIGHTS_DIR / f"{name}.safetensors"
    if not path.exists():
        raise FileNotFoundError(
            f"weights {path} not found" + ("" if weights else ": the shipped weights are missing from this install")
        )
    card = read_card(path)
    if card.get("architecture", arch) != arch:
        raise ValueError(f"{path} holds a {card['architecture']!r} network, not {arch!r}: load it by that name.")
    classes = list(card["classes"])
    n_bg = len(card.get("background_classes") or [])
    coch = CochleagramSettings(**card.get("cochleagram", {}))
    load_weights = pretrained or weights is not None
    if not load_weights:
        torch.manual_seed(seed)
    net = WordNet(len(classes), arch, float(card["width"]), n_bg, input_shape=coch.shape)
    if load_weights:
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        net.load_state_dict(state)
        provenance = {
            "file": str(path),
            "sha256": sha256_file(path),
            "card": {k: card[k] for k in _CARD_KEYS if k in card},
        }
        label = name if weights is None else f"{name}@{path.stem}"
    else:
        provenance = {"random_init_seed": seed, "architecture": arch, "width": card["width"]}
        label = f"{name}-random"
    module = Preprocessed(Cochleagram(coch), net).eval()
    stages = {"cochleagram": "preprocess", **{s: f"net.{s}" for s in _STAGES[arch]}}
    return ZooModel(
        name=label,
        module=module,
        kind="audio",
        input_shape=(coch.n_samples,),
        bounds=(-1.0, 1.0),
        labels=classes,
        stages=stages,
        provenance=provenance,
    )


_CARD_KEYS = (
    "architecture",
    "width",
    "task",
    "training",
    "corpus",
    "valid_accuracy",
    "valid_background_accuracy",
    "held_out",
    "stopped",
)


COCHLEAGRAM_VIEW = ":cochleagram"
"""Suffix of a zoo name that loads a word network's cochleagram view, e.g. ``word-standard:cochleagram``."""


def cochleagram_view(zoo: ZooModel) -> ZooModel:
    """A word network without its cochleagram: its input is the cochleagram ``[1, 211, 400]``, not the waveform.

    Metamers synthesized on this view optimise the cochleagram directly (the paper's Figure S9 condition) and cannot
    be played; the view's ``frontend`` turns waveforms into its input, for stimuli and nulls.  Its layers are the
    network's (``conv_0``, ..., ``logits``); the values are bounded below by 0, as a cochleagram's are.

    Examples
    --------
    >>> view = cochleagram_view(word_model("word-standard"))  # doctest: +SKIP
    >>> view.name, view.input_shape, view.stages["conv_0"]  # doctest: +SKIP
    ('word-standard:cochleagram', (1, 211, 400), 'conv_0')
    """
    if zoo.kind != "audio" or not isinstance(zoo.module, Preprocessed):
        raise ValueError(f"{zoo.name} is not a word network; only those have a cochleagram view.")
    coch = zoo.module.preprocess
    return ZooModel(
        name=zoo.name + COCHLEAGRAM_VIEW,
        module=zoo.module.net,
        kind="cochleagram",
        input_shape=(1, *coch.settings.shape),
        bounds=(0.0, 4.0),
        labels=zoo.labels,
        stages={s: layer.removeprefix("net.") for s, layer in zoo.stages.items() if layer.startswith("net.")},
        provenance={**zoo.provenance, "input": "cochleagram"},
        frontend=coch,
    )
