"""Your own network as a zoo model: built from a Python callable or a TorchScript file, with your weights and labels.

A :class:`UserModelSpec` says everything the toolkit needs that a bare ``nn.Module`` does not: where the network
comes from (``"package.module:callable"``, ``"path/to/file.py:callable"`` or a TorchScript file), its weights (a state
dict or a safetensors file), the input kind and shape, its preprocessing (mean and std, applied inside the graph so
that gradients reach the raw input), its labels (a text file, one per line, or ``"imagenet"`` for torchvision's
ImageNet categories, or ``"module:Weights.MEMBER"`` for a torchvision weights object's categories) and the stages
worth generating from.  :func:`build_user_model` checks each against the network (that it builds, takes the input,
has as many outputs as labels, has the layers named) and says which is wrong.

Specs are registered by name (:func:`register_user_model`), so that everything that loads a model by name (the runs'
validation, transfer, report and experiments) finds them as it finds the zoo's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from metamers._files import sha256_file
from metamers.models.base import ZooModel, wrap

__all__ = [
    "TORCHSCRIPT_SUFFIXES",
    "UserModelError",
    "UserModelSpec",
    "build_user_model",
    "import_callable",
    "parse_shape",
    "register_result_models",
    "register_user_model",
    "registered_user_model",
]

_KINDS = {"image": (0.0, 1.0), "audio": (-1.0, 1.0)}
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
"""File suffixes taken as TorchScript files when ``module`` names a file (no ``:callable``)."""


class UserModelError(ValueError):
    """A user model that cannot be built or does not fit what its spec says; the message names the fix."""


@dataclass(frozen=True)
class UserModelSpec:
    """How to build a user's model.

    Attributes
    ----------
    name : str
        What the run, the catalog and the report call it.
    module : str
        ``"package.module:callable"``, ``"path/to/file.py:callable"`` (the callable is called with no arguments and
        returns an ``nn.Module``; an ``nn.Module`` instance is taken as it is), or the path of a TorchScript file.
    weights : str, optional
        A state dict (``torch.save``) or a ``.safetensors`` file, loaded into the module strictly. Without it the
        network keeps the initialization the callable gives it, made under seed 0 so that every process builds the
        same network.
    kind : {"image", "audio"}
        Images in [0, 1] (``input_shape`` = channels, height, width) or waveforms in [-1, 1] (``input_shape`` =
        samples,).
    input_shape : tuple of int
        One stimulus's shape.
    sample_rate : int
        For sounds: the rate the network expects (sound files are resampled to it).
    mean, std : tuple of float, optional
        Per-channel normalisation applied inside the graph (layers are then named ``net.<path>``).
    labels : str, optional
        A text file (one label per line, in logit order), ``"imagenet"``, or ``"module:Weights.MEMBER"``. Without it
        the labels are the output indices (``"0"``, ``"1"``, ...).
    stages : dict of str to str
        Stage name to layer name (as ``metamers layers`` lists them); a plan's ``layers = "stages"`` uses these.
    """

    name: str
    module: str
    weights: str | None = None
    kind: str = "image"
    input_shape: tuple[int, ...] = (3, 224, 224)
    sample_rate: int = 20000
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: str | None = None
    stages: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain data (what a result file records, so that it names how to build its model)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> UserModelSpec:
        """The inverse of :meth:`to_dict` (lists, as JSON holds them, become tuples).

        Examples
        --------
        >>> spec = UserModelSpec("tiny", "torch.nn:Identity", input_shape=(3, 8, 8), mean=(0.5,) * 3, std=(0.2,) * 3)
        >>> UserModelSpec.from_dict(spec.to_dict()) == spec
        True
        """
        d = dict(d)
        for key in ("input_shape", "mean", "std"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        d["stages"] = dict(d.get("stages") or {})
        return cls(**d)


_REGISTRY: dict[str, UserModelSpec] = {}


def register_user_model(spec: UserModelSpec) -> None:
    """Make ``spec`` loadable by name (:func:`metamers.models.load`) in this process.

    Examples
    --------
    >>> register_user_model(UserModelSpec("tiny", "torch.nn:Identity", input_shape=(3, 8, 8)))
    >>> registered_user_model("tiny").module
    'torch.nn:Identity'
    """
    _REGISTRY[spec.name] = spec


def registered_user_model(name: str) -> UserModelSpec | None:
    """The spec registered under ``name``, or None."""
    return _REGISTRY.get(name)


def register_result_models(extras: Sequence[Mapping]) -> None:
    """Register the user models that synthesis results name (``extra["model_spec"]``), so that whoever reads the
    results (validation, transfer) can load them by name."""
    for extra in extras:
        if extra.get("model_spec"):
            register_user_model(UserModelSpec.from_dict(extra["model_spec"]))


def import_callable(spec: str) -> object:
    """The object that ``"package.module:attr"`` or ``"path/to/file.py:attr"`` names (``attr`` may be dotted).

    Examples
    --------
    >>> import_callable("torch.nn:Identity").__name__
    'Identity'
    """
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise UserModelError(
            f"{spec!r} is not 'package.module:callable' or 'path/to/file.py:callable' (nor a TorchScript file)."
        )
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise UserModelError(f"no Python file {path} (from {spec!r}).")
        mod_name = "metamers_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        if mod_name in sys.modules:
            module = sys.modules[mod_name]
        else:
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader_spec)
            try:
                loader_spec.loader.exec_module(module)
            except Exception as e:
                raise UserModelError(f"importing {path} failed: {type(e).__name__}: {e}") from e
            sys.modules[mod_name] = module
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise UserModelError(f"cannot import {where!r} (from {spec!r}): {e}") from e
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserModelError(f"{where} has no {attr!r} (from {spec!r}).")
        obj = getattr(obj, part)
    return obj


def _network(spec: UserModelSpec) -> nn.Module | ZooModel:
    path = Path(spec.module).expanduser()
    if ":" not in spec.module or (path.suffix in TORCHSCRIPT_SUFFIXES and path.is_file()):
        if not path.is_file():
            raise UserModelError(
                f"module = {spec.module!r} is neither 'package.module:callable', 'file.py:callable' nor a file."
            )
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as e:
            raise UserModelError(f"{path} is not a TorchScript file torch.jit.load can read: {e}") from e
    obj = import_callable(spec.module)
    if isinstance(obj, nn.Module | ZooModel):
        return obj
    if not callable(obj):
        raise UserModelError(f"{spec.module!r} is a {type(obj).__name__}, neither an nn.Module nor a callable.")
    try:
        with torch.random.fork_rng():  # seeded: every process that builds it (run, validate, transfer) gets one network
            torch.manual_seed(0)
            net = obj()
    except Exception as e:
        raise UserModelError(f"calling {spec.module}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(net, nn.Module | ZooModel):
        raise UserModelError(f"{spec.module}() returned a {type(net).__name__}, not a torch.nn.Module.")
    return net


def _load_weights(net: nn.Module, weights: str) -> dict:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserModelError(f"no weights file {path}.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserModelError(
            f"{path} is not a state dict (torch.save of model.state_dict()) or a safetensors file: "
            f"{str(e).strip().splitlines()[0]}"
        ) from e
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserModelError(f"{path} holds no state dict (a mapping of parameter names to tensors).")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise UserModelError(f"{path} does not fit the network: {first}") from e
    return {"weights": f"file {path.name}", "path": str(path.resolve()), "sha256": sha256_file(path)}


def _labels(spec: UserModelSpec, outputs: int) -> list[str]:
    if spec.labels is None:
        return [str(i) for i in range(outputs)]
    if spec.labels == "imagenet":
        from metamers.models.labels import imagenet_labels

        labels = imagenet_labels()
    elif Path(spec.labels).expanduser().is_file():
        labels = [line.strip() for line in Path(spec.labels).expanduser().read_text().splitlines() if line.strip()]
    elif ":" in spec.labels:
        weights = import_callable(spec.labels)
        labels = list(getattr(weights, "meta", {}).get("categories") or [])
        if not labels:
            raise UserModelError(f"labels = {spec.labels!r} has no meta['categories'] (a torchvision weights object).")
    else:
        raise UserModelError(
            f"labels = {spec.labels!r}: give a text file (one label per line), 'imagenet', or 'module:Weights.MEMBER'."
        )
    if len(labels) != outputs:
        raise UserModelError(
            f"labels {spec.labels!r} has {len(labels)} labels but the model has {outputs} outputs; give one label per "
            "output, in order."
        )
    return labels


def build_user_model(spec: UserModelSpec) -> ZooModel:
    """Build and check ``spec``: the network, in eval mode, with its preprocessing, labels and stages.

    Raises
    ------
    UserModelError
        Naming what does not fit: the callable, the weights, the input shape, the labels or a stage.

    Examples
    --------
    >>> spec = UserModelSpec("tiny", "torch.nn:Flatten", input_shape=(3, 2, 2), stages={"all": "."})
    >>> build_user_model(spec)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    UserModelError: stage 'all' names no layer of tiny ...
    """
    if spec.kind not in _KINDS:
        raise UserModelError(f"kind = {spec.kind!r}; choose from {', '.join(_KINDS)}.")
    if (spec.mean is None) != (spec.std is None):
        raise UserModelError("give both mean and std, or neither.")
    if spec.kind == "audio" and spec.mean is not None:
        raise UserModelError("mean and std are for images (per channel); a waveform model normalises inside itself.")
    net = _network(spec)
    if isinstance(net, ZooModel):  # the callable made a whole zoo model: its own input, labels and stages
        given = [k for k in ("weights", "mean", "std", "labels") if getattr(spec, k) is not None]
        if given:
            raise UserModelError(
                f"{spec.module} returns a whole ZooModel, which carries its own {', '.join(given)}: leave them out."
            )
        return dataclasses.replace(net, name=spec.name)  # the name the plan or the command line gives it
    provenance: dict = {"source": "user", "module": spec.module}
    code = Path(spec.module.rpartition(":")[0] or spec.module).expanduser()
    if code.is_file():  # the code behind the network, for the null store's key when no weights file names it
        provenance["code_sha256"] = sha256_file(code)
    if spec.weights is not None:
        provenance.update(_load_weights(net, spec.weights))
    zoo = wrap(
        net.float(),
        name=spec.name,
        input_shape=spec.input_shape,
        labels=[],
        kind=spec.kind,
        bounds=_KINDS[spec.kind],
        mean=spec.mean,
        std=spec.std,
        provenance=provenance,
    )
    try:
        with torch.no_grad():
            out = zoo.module(zoo.example())
    except Exception as e:
        raise UserModelError(
            f"{spec.name} refuses an input of shape {(1, *spec.input_shape)}: {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}. "
            "Set input_shape to what the network takes (one stimulus, without the batch dimension)."
        ) from e
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserModelError(f"{spec.name} must return logits of shape (batch, classes); it returned {got}.")
    zoo.labels = _labels(spec, out.shape[1])
    if spec.stages:
        from metamers.taps import list_layers

        known = {lay.name for lay in list_layers(zoo.module, zoo.example())}
        for stage, layer in spec.stages.items():
            if layer not in known:
                raise UserModelError(
                    f"stage {stage!r} names no layer of {spec.name} ({layer!r}); its layers: "
                    f"{', '.join(sorted(known)[:12])}... (`metamers layers {spec.module}` lists them)."
                )
        zoo.stages = dict(spec.stages)
    zoo.provenance["sample_rate"] = spec.sample_rate if spec.kind == "audio" else None
    return zoo


def parse_shape(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"3,224,224"`` or ``[3, 224, 224]`` as a shape; a clear error for anything else.

    Examples
    --------
    >>> parse_shape("3, 64, 64")
    (3, 64, 64)
    """
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise UserModelError(f"input_shape {value!r}: give positive sizes, e.g. 3,224,224 or [3, 224, 224].")
    return shape
