"""A plan's own inputs: stimulus files, a null set from files, and the user's own models.

:func:`own_stimuli` and :func:`own_model` read the plan's fields for them (``[stimuli] images = "photos"``,
``[validation] null_images = "..."``, ``[[model]] module = "mynet.py:build"``), resolve relative paths against the
plan file's folder, and check them before anything runs. :func:`register_plan_models` makes a plan's own models
loadable by name, so that validation, transfer, the report and experiments find them as they find the zoo's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from metamers.models.user import UserModelError, UserModelSpec, parse_shape, register_user_model
from metamers.stimuli.files import StimulusFileError, StimulusFiles, find_stimulus_files

__all__ = ["MODEL_KEYS", "OwnInputError", "files_of", "model_spec", "own_model", "own_stimuli", "register_plan_models"]

MODEL_KEYS = {"module", "weights", "kind", "input_shape", "sample_rate", "mean", "std", "labels", "stages"}
"""The ``[[model]]`` keys of a user's own model (beside ``name`` and ``layers``)."""


class OwnInputError(ValueError):
    """A plan's own stimuli, null set or model that cannot be used; the plan reports it as a :class:`PlanError`."""


def _path(value: object, base: Path | None, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise OwnInputError(f'{where} must be a path (a string), e.g. "photos", got {value!r}.')
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve()) if not any(c in value for c in "*?[") else str(p)


def files_of(source: str, labels: str | None, kind: str) -> StimulusFiles:
    """The stimulus files of ``source`` as they are now (files added or removed count), checked to hold ``kind``
    ("image" or "audio")."""
    found = find_stimulus_files(source, labels)
    if found.kind != kind:
        what = "images" if kind == "image" else "sounds"
        raise StimulusFileError(f"{source} holds {'sounds' if kind == 'image' else 'images'}, where {what} belong.")
    return found


def own_stimuli(table: Mapping, base: Path | None, where: str, fields: Mapping[str, tuple[str, str | None]]) -> dict:
    """Resolve the file sources of a plan table: ``{field: absolute path}`` for each of ``fields`` the table gives,
    with its labels field; each checked to exist and to hold its kind.

    ``fields`` maps a field to the kind its files must hold and the field of their labels, or None (a null set has
    none): ``{"images": ("image", "image_labels"), "sounds": ("audio", "sound_labels")}``.
    """
    out: dict = {}
    for key, (kind, label_key) in fields.items():
        if key not in table:
            continue
        src = _path(table[key], base, f"{where}.{key}")
        labels = table.get(label_key) if label_key else None
        if labels is not None and labels != "folders":
            labels = _path(labels, base, f"{where}.{label_key}")
        try:
            files_of(src, labels, kind)
        except StimulusFileError as e:
            raise OwnInputError(f"{where}.{key}: {e}") from e
        out[key] = src
        if label_key in table:
            out[label_key] = labels
    return out


def _floats(v: object, where: str) -> list[float]:
    if not isinstance(v, list) or not v or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
        raise OwnInputError(f"{where} must be a list of numbers, e.g. [0.485, 0.456, 0.406], got {v!r}.")
    return [float(x) for x in v]


def own_model(m: Mapping, base: Path | None, where: str) -> dict | None:
    """The user-model spec of a ``[[model]]`` table as plain data (paths absolute), or None for a zoo model."""
    given = set(m) & MODEL_KEYS
    if not given:
        return None
    if "module" not in m:
        raise OwnInputError(f'{where} has {", ".join(sorted(given))} but no module: give module = "mynet.py:build".')
    module = m["module"]
    if not isinstance(module, str) or not module:
        raise OwnInputError(
            f'{where} module must be "package.module:callable", "file.py:callable" or a TorchScript file.'
        )
    where_file, sep, attr = module.rpartition(":")
    if sep and where_file.endswith(".py"):
        module = f"{_path(where_file, base, where + ' module')}:{attr}"
    elif not sep:
        module = _path(module, base, f"{where} module")
    kind = m.get("kind", "image")
    spec: dict = {"module": module, "kind": kind}
    if kind not in ("image", "audio"):
        raise OwnInputError(f'{where} kind = {kind!r}; choose "image" or "audio".')
    default_shape = [3, 224, 224] if kind == "image" else [40000]
    try:
        spec["input_shape"] = list(parse_shape(m.get("input_shape", default_shape)))
    except UserModelError as e:
        raise OwnInputError(f"{where}: {e}") from e
    if "weights" in m:
        spec["weights"] = _path(m["weights"], base, f"{where} weights")
    if "sample_rate" in m:
        rate = m["sample_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise OwnInputError(f"{where} sample_rate must be a whole number of Hz, e.g. 16000, got {rate!r}.")
        spec["sample_rate"] = rate
    for key in ("mean", "std"):
        if key in m:
            spec[key] = _floats(m[key], f"{where} {key}")
    if "labels" in m:
        labels = m["labels"]
        if not isinstance(labels, str) or not labels:
            raise OwnInputError(f'{where} labels must be a text file, "imagenet" or "module:Weights.MEMBER".')
        is_file = labels != "imagenet" and (":" not in labels or (base is not None and (base / labels).is_file()))
        spec["labels"] = _path(labels, base, f"{where} labels") if is_file else labels
    if "stages" in m:
        stages = m["stages"]
        if not isinstance(stages, Mapping) or not stages or not all(isinstance(v, str) for v in stages.values()):
            raise OwnInputError(f'{where} stages must be a table of stage = "layer", e.g. {{ early = "net.layer1" }}.')
        spec["stages"] = dict(stages)
    return spec


def model_spec(name: str, spec: Mapping) -> UserModelSpec:
    """The :class:`~metamers.models.user.UserModelSpec` of a plan's model."""
    return UserModelSpec.from_dict({"name": name, **spec})


def register_plan_models(plan) -> None:
    """Make the plan's own models loadable by name (:func:`metamers.models.load`) in this process."""
    for mp in plan.models:
        if mp.spec is not None:
            register_user_model(model_spec(mp.name, mp.spec))
