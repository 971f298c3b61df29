"""A plan: one experiment described once (models, layers, stimuli, settings), read from a TOML file.

A plan names the generating models and their generation layers, the stimuli, the synthesis settings per modality,
the null and acceptance rule of validation, and the models that recognize the metamers (transfer).  Every field but
the models has a default, so the smallest plan is::

    [[model]]
    name = "efficientnet-lite0"

which synthesizes metamers of four photos at every stage of EfficientNet-Lite0.  :data:`PLAN_REFERENCE` lists every
field with its default; ``metamers run --example`` prints it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from metamers.modality import modality
from metamers.runs.own import MODEL_KEYS, OwnInputError, files_of, own_model, own_stimuli
from metamers.settings import PRESETS, SynthesisSettings
from metamers.stimuli.files import StimulusFiles

__all__ = ["PLAN_REFERENCE", "ModelPlan", "Plan", "PlanError", "load_plan", "parse_plan", "plan_toml"]


class PlanError(ValueError):
    """A plan that cannot be carried out; the message says which field is wrong and how to fix it."""


_FIRST_IMAGES = ("chelsea", "coffee", "rocket", "camera", "astronaut", "clock")
_FIRST_WORDS = ("may", "uniform", "today", "nine", "alpha", "lima")  # the shipped standard network hears these right


def _ordered(first: tuple[str, ...], everything: object) -> tuple[str, ...]:
    return first + tuple(n for n in everything if n not in first)


def _defaults() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from metamers.audio.speech import VOCABULARY
    from metamers.stimuli import IMAGES

    return _ordered(_FIRST_IMAGES, IMAGES), _ordered(_FIRST_WORDS, VOCABULARY)


DEFAULT_IMAGES, DEFAULT_WORDS = _defaults()
"""Pictures and words a plan uses when it gives a number (the first N): photos first, then every offline picture;
the words the shipped standard network recognizes in the recorded prompts first, then the rest of the vocabulary."""

PLAN_REFERENCE = """\
# A metamers plan: every field, with its default.  Only [[model]] is required.
name = "my-experiment"      # shown on the report
seed = 0                    # seed of the initial noise (batch k uses seed + k) and of the nulls
batch = "auto"              # stimuli optimised together in one synthesis job: "auto" = 4 on a CPU (more jobs for
                            # more workers), 32 on a GPU (one GPU optimises many at once); or a number

[stimuli]
images = 4                  # a number (the first N of chelsea, coffee, rocket, camera, astronaut, clock, then the
                            # other offline pictures and the Debian photographs, 537 in all) or a list of names
                            # (metamers.stimuli.IMAGES; metamers.stimuli.sixteen_way_photos() for the 16-way ones),
                            # or your own: a folder (searched recursively) or a glob of PNG/JPEG ("photos/*.jpg")
# image_labels = "folders"  # with your own images: labels from sub-folder names, or a CSV with columns file,label
words = 2                   # audio models: a number (the first N of may, uniform, today, nine, alpha, lima, then
                            # the rest of the 61 words) or a list of words (metamers.audio.speech.VOCABULARY)
speech = "recorded"         # the words' source: recorded (real speech), espeak-ng or flite
# sounds = "clips"          # audio models: your own WAV/FLAC/OGG files instead of the words (resampled, cut or
                            # padded to the model's clip, the sound centred); sound_labels as image_labels

[synthesis.image]           # any field of metamers.SynthesisSettings; preset first, then the changes
preset = "fidelity"         # L-BFGS per item, white-noise start, [0, 1] bounds; each metamer stops once its rho at the
iterations = 3000           # layer reaches 0.99 with its stimulus's label (stop_rho, stop_label, checked every
                            # check_every = 25 iterations), iterations is the cap, and lr (1) is L-BFGS's first
                            # step along each direction; "feather2019" is the paper's Adam, 15000 iterations at
                            # 0.001 whatever happens
checkpoint_every = 500      # iterations between checkpoints of a running job
# stop_past_null = 0.9      # stop relative to the null instead: the run computes the validation's null of each
                            # generating layer first, and each metamer stops once its rho has closed this fraction of
                            # the gap between the null's threshold and 1 (0.9: a null maximum of 0.99 asks 0.999,
                            # one of 0.5 asks 0.95); with stop_rho too, the higher of the two

[synthesis.audio]
preset = "feather2019_audio"  # the same, starting from pink noise at RMS 0.01, bounds [-1, 1]
iterations = 15000
lr = 0.001
checkpoint_every = 500

[synthesis.cochleagram]     # optional: changes to the audio settings for cochleagram views (word-standard:cochleagram:
lr = 0.001                  # metamers optimised on the cochleagram, the paper's Figure S9); bounds are [0, 4]

[validation]
pairs = 1000000             # pairs in each null distribution (the paper's)
percentile = 100            # a metamer's rho must exceed this percentile of the null (100: its maximum)
same_label = true           # and the model must give it the label of its stimulus
source = "png"              # judge what a person sees or hears (8-bit PNG, 16-bit WAV) or "full" precision
# null_images = "train-images"  # the null's source: your files (e.g. the network's training images) instead of the
# null_sounds = "train-clips"   # built-in pictures or speech clips; keyed in the null store by their content

[transfer]
recognizers = []            # models that classify every accepted metamer (those of the generator's kind)
spaces = ["imagenet", "16-way"]   # label spaces for images; audio is judged in the 61-word space

[[model]]
name = "efficientnet-lite0" # a zoo name (`metamers models`); a word network + ":cochleagram" is its cochleagram view
layers = "stages"           # "stages" (the model's default stages) or a list of stage or layer names
# synthesis = { iterations = 6000 }  # changes to its kind's [synthesis] table for this model alone (any key of
                            # that table, e.g. a higher cap for a network whose late layers converge slowly)

# Your own model: name it and say how to build it (paths relative to this file).
# [[model]]
# name = "mynet"
# module = "mynet.py:build" # or "package.module:callable" (returns an nn.Module), or a TorchScript file
# weights = "mynet.pth"     # a state dict (torch.save(net.state_dict())) or a .safetensors file
# kind = "image"            # or "audio" (a waveform; sample_rate = 20000)
# input_shape = [3, 224, 224]
# mean = [0.485, 0.456, 0.406]  # preprocessing inside the graph (optional)
# std = [0.229, 0.224, 0.225]
# labels = "imagenet"       # or a text file (one per line), or "torchvision.models:ResNet50_Weights.DEFAULT"
# stages = { early = "net.layer1", late = "net.layer4" }
"""

_TOP = {"name", "seed", "batch", "stimuli", "synthesis", "validation", "transfer", "model"}
_STIMULI = {"images", "words", "speech", "image_labels", "sounds", "sound_labels"}
_VALIDATION = {"pairs", "percentile", "same_label", "source", "null_images", "null_sounds"}
_TRANSFER = {"recognizers", "spaces"}
_MODEL = {"name", "layers", "synthesis"} | MODEL_KEYS
_SETTINGS = set(SynthesisSettings.__dataclass_fields__)
_SPEECH = ("recorded", "espeak-ng", "flite")
_DEFAULT_PRESET = {"image": "fidelity", "audio": "feather2019_audio"}


def _modality(kind: str) -> str:
    """A model kind's modality: a cochleagram view of a word network is synthesized with the audio settings."""
    return modality(kind).family


@dataclass(frozen=True)
class ModelPlan:
    """A generating model and its generation layers (``("stages",)`` means the model's default stages).

    ``spec`` holds a user's own model (``module``, ``weights``, ``input_shape``, ... as plain data with absolute
    paths; :mod:`metamers.runs.own`), None for a zoo model. ``synthesis`` holds this model's changes to its kind's
    synthesis table (e.g. ``{"iterations": 1200}``), None for none.
    """

    name: str
    layers: tuple[str, ...] = ("stages",)
    spec: dict | None = None
    synthesis: dict | None = None


@dataclass(frozen=True)
class Plan:
    """An experiment: what to synthesize, how to validate it, who recognizes it.

    Examples
    --------
    >>> plan = parse_plan({"model": [{"name": "efficientnet-lite0", "layers": ["block_2"]}]})
    >>> plan.models[0].layers, plan.images
    (('block_2',), ('chelsea', 'coffee', 'rocket', 'camera'))
    >>> plan.settings("image").optimizer, plan.settings("image").iterations
    ('lbfgs', 3000)
    """

    models: tuple[ModelPlan, ...]
    name: str = "metamers"
    seed: int = 0
    batch: int | None = None  # None: "auto", decided by the device (:func:`metamers.runs.run.job_batch`)
    images: tuple[str, ...] = DEFAULT_IMAGES[:4]
    words: tuple[str, ...] = DEFAULT_WORDS[:2]
    speech: str = "recorded"
    synthesis: dict = field(default_factory=dict)
    pairs: int = 1_000_000
    percentile: float = 100.0
    same_label: bool = True
    source: str = "png"
    recognizers: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ("imagenet", "16-way")
    image_files: str | None = None  # a folder or glob of the user's images, instead of ``images``
    image_labels: str | None = None  # "folders" or a CSV of file,label
    sound_files: str | None = None  # a folder or glob of the user's sounds, instead of ``words``
    sound_labels: str | None = None
    null_images: str | None = None  # the null's source, instead of the built-in pictures
    null_sounds: str | None = None  # instead of the built-in speech clips

    def settings(self, kind: str, null_stop: float | None = None, model: str | None = None) -> SynthesisSettings:
        """The synthesis settings of ``kind`` ("image" or "audio"; "cochleagram" takes the audio ones), with the
        changes of the plan's ``model`` on top when it is given (its ``[[model]]`` table's ``synthesis``).

        With ``stop_past_null`` in the table, ``null_stop`` is the rho a job's layer asks from its null (the run
        computes it): ``stop_rho`` becomes the higher of it and the table's ``stop_rho``. Without it (no null yet),
        a table with no ``stop_rho`` of its own gets 1.0, a stop no metamer reaches."""
        s = self._synthesis_table(kind, model)
        if "stop_on" not in s:  # the fidelity test judges what validation will: the PNG, the WAV, the cochleagram
            s["stop_on"] = modality(kind).resolution
        kind = _modality(kind)
        s.pop("checkpoint_every", None)
        if s.pop("stop_past_null", None) is not None:
            floor = s.get("stop_rho")
            if null_stop is not None:
                s["stop_rho"] = null_stop if floor is None else max(null_stop, floor)
            elif floor is None:
                s["stop_rho"] = 1.0  # until the run sets it from the layer's null
        preset = s.pop("preset", _DEFAULT_PRESET[kind])
        return SynthesisSettings.preset(preset, **{"seed": self.seed, **s})

    def _synthesis_table(self, kind: str, model: str | None = None) -> dict:
        """The synthesis table of ``kind``: its modality's, with a cochleagram view's changes on top, then those of
        the plan's ``model`` (if given)."""
        s = dict(self.synthesis.get(_modality(kind), {}))
        if kind == "cochleagram":
            s.pop("stop_on", None)  # how a waveform's file holds it says nothing of how a cochleagram is judged
            s.update(self.synthesis.get("cochleagram", {}))
        found = self.model(model) if model is not None else None
        s.update((found.synthesis if found else None) or {})
        return s

    def model(self, name: str) -> ModelPlan | None:
        """The plan's generating model called ``name``, or None (e.g. a recognizer that generates nothing)."""
        return next((mp for mp in self.models if mp.name == name), None)

    def checkpoint_every(self, kind: str, model: str | None = None) -> int:
        """Iterations between checkpoints of a running job of ``kind`` (of the plan's ``model``, if given)."""
        return int(self._synthesis_table(kind, model).get("checkpoint_every", 500))

    def stop_past_null(self, kind: str, model: str | None = None) -> float | None:
        """The fraction of the gap between the null's threshold and 1 that a metamer of ``kind`` (of the plan's
        ``model``, if given) closes before it stops (``stop_past_null`` of its synthesis table), or None to stop on
        the settings alone."""
        value = self._synthesis_table(kind, model).get("stop_past_null")
        return None if value is None else float(value)

    def files(self, kind: str) -> StimulusFiles | None:
        """The user's stimulus files for models of ``kind``, or None when the plan uses built-in stimuli."""
        if _modality(kind) == "image":
            return files_of(self.image_files, self.image_labels, "image") if self.image_files else None
        return files_of(self.sound_files, self.sound_labels, "audio") if self.sound_files else None

    def null_files(self, kind: str) -> StimulusFiles | None:
        """The user's null set for models of ``kind``, or None for the built-in source."""
        if _modality(kind) == "image":
            return files_of(self.null_images, None, "image") if self.null_images else None
        return files_of(self.null_sounds, None, "audio") if self.null_sounds else None

    def stimuli(self, kind: str) -> tuple[str, ...]:
        """The stimulus names for models of ``kind``."""
        found = self.files(kind)
        if found is not None:
            return found.names
        return self.images if _modality(kind) == "image" else self.words

    def stimulus_labels(self, kind: str) -> dict[str, str]:
        """The label the user gave each stimulus of ``kind`` (empty without labels): the reference of transfer and
        the answer of an experiment, where it names a class of the recognizer."""
        found = self.files(kind)
        if found is None or found.labels is None:
            return {}
        return dict(zip(found.names, found.labels, strict=True))

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        models = tuple(
            ModelPlan(m["name"], tuple(m["layers"]), m.get("spec"), m.get("synthesis")) for m in d.pop("models")
        )
        tuples = {k: tuple(d[k]) for k in ("images", "words", "recognizers", "spaces") if k in d}
        return cls(models=models, **{**d, **tuples})

    def to_dict(self) -> dict:
        """The plan as plain data (what ``plan.json`` holds; two plans are the same experiment if these are equal)."""
        d = asdict(self)
        # a model without synthesis changes is written as before they existed, so older run directories resume
        d["models"] = [{k: v for k, v in asdict(m).items() if k != "synthesis" or v} for m in self.models]
        return d


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Plan) if f.default is not dataclasses.MISSING}
"""Every plan field's default, defined once (on :class:`Plan`); the reference plan above is tested against them."""


def _check_keys(table: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PlanError(
            f"unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))} "
            "(`metamers run --example` prints a plan with every field)."
        )


def _kind(v: object) -> str:
    name = {"str": "string", "int": "whole number", "list": "list", "dict": "table"}.get(type(v).__name__)
    return f"{v!r} (a {name or type(v).__name__})"


def _str(v: object, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise PlanError(f'{where} must be a non-empty string, e.g. "x", got {_kind(v)}.')
    return v


def _int(v: object, where: str, least: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise PlanError(f"{where} must be a whole number (no quotes), got {_kind(v)}.")
    if least is not None and v < least:
        raise PlanError(f"{where} = {v}: give {least} or more.")
    return v


def _bool(v: object, where: str) -> bool:
    if not isinstance(v, bool):
        raise PlanError(f"{where} must be true or false (no quotes), got {_kind(v)}.")
    return v


def _strings(v: object, where: str, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) and x for x in v):
        raise PlanError(f'{where} must be a list of names, e.g. ["a", "b"], got {_kind(v)}.')
    bad = [x for x in v if choices is not None and x not in choices]
    if bad:
        raise PlanError(f"{where} has {', '.join(bad)}; choose from {', '.join(choices or ())}.")
    if len(set(v)) != len(v):
        raise PlanError(f"{where} lists a name twice: {', '.join(v)}.")
    return tuple(v)


def _table(v: object, where: str) -> Mapping:
    if not isinstance(v, Mapping):
        raise PlanError(f"{where} must be a table (a [section] of key = value lines), got {_kind(v)}.")
    return v


def _names(value: object, defaults: tuple[str, ...], known: Mapping | tuple, what: str) -> tuple[str, ...]:
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        raise PlanError(f"stimuli.{what} must be a number or a list of names, got {_kind(value)}.")
    if isinstance(value, int):
        if not 1 <= value <= len(defaults):
            raise PlanError(
                f"stimuli.{what} = {value}: give 1 to {len(defaults)}, or list the names (choose from "
                f"{', '.join(list(known)[:30])}...)."
            )
        return tuple(defaults[:value])
    if not value:
        raise PlanError(f"stimuli.{what} = []: list at least one name, or give a number (1 to {len(defaults)}).")
    names = _strings(value, f"stimuli.{what}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlanError(f"unknown {what} {', '.join(unknown)} in stimuli.{what}; choose from {', '.join(known)}.")
    return names


def _synthesis_changes(s: object, where: str, kind: str | None) -> dict:
    """One synthesis table, checked: its keys, ``stop_past_null``, ``checkpoint_every`` and ``preset``."""
    _table(s, where)
    _check_keys(s, _SETTINGS | {"preset", "checkpoint_every", "stop_past_null"}, where)
    s = dict(s)
    if "stop_past_null" in s:
        f = s["stop_past_null"]
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
            raise PlanError(
                f"{where} stop_past_null = {f!r}: give the fraction of the gap between the null and 1 that a "
                "metamer must close before it stops, between 0 and 1 (e.g. 0.9)."
            )
    if isinstance(s.get("bounds"), list):
        s["bounds"] = tuple(s["bounds"])
    if "checkpoint_every" in s:
        _int(s["checkpoint_every"], f"{where} checkpoint_every", least=1)
    if "preset" in s or kind is not None:
        preset = s.get("preset", _DEFAULT_PRESET[_modality(kind or "image")])
        if not isinstance(preset, str) or preset not in PRESETS:
            raise PlanError(f"{where} preset {preset!r} is unknown; choose from {', '.join(PRESETS)}.")
    return s


def _synthesis(table: Mapping) -> dict:
    _check_keys(
        table,
        {"image", "audio", "cochleagram"},
        "[synthesis] (use [synthesis.image], [synthesis.audio] and "
        "[synthesis.cochleagram], which changes the audio settings for cochleagram views)",
    )
    return {kind: _synthesis_changes(s, f"[synthesis.{kind}]", kind) for kind, s in table.items()}


def _is_zoo_name(name: str) -> bool:
    from metamers.models import names

    return name in names() or name.endswith(":cochleagram")


def _models(models: object, base: Path | None) -> tuple[ModelPlan, ...]:
    if not models or not isinstance(models, list):
        raise PlanError(
            'the plan names no models: add a [[model]] table with name = "efficientnet-lite0" (a zoo name).'
        )
    plans = []
    for i, m in enumerate(models):
        where = f"[[model]] number {i + 1}"
        _check_keys(_table(m, where), _MODEL, where)
        if "name" not in m:
            raise PlanError(f"{where} has no name.")
        name = _str(m["name"], f"{where} name")
        layers = m.get("layers", "stages")
        layers = (_str(layers, f"model {name} layers"),) if isinstance(layers, str) else layers
        if isinstance(layers, list | tuple) and not layers:
            raise PlanError(f'model {name} lists no layers; give a list or "stages".')
        try:
            spec = own_model(m, base, f"model {name}")
        except OwnInputError as e:
            raise PlanError(str(e)) from e
        if spec is not None and _is_zoo_name(name):
            raise PlanError(
                f"model {name} builds your own network but {name} is a zoo model's name: name it otherwise."
            )
        synthesis = m.get("synthesis")
        if synthesis is not None:
            synthesis = _synthesis_changes(synthesis, f"model {name} synthesis", None) or None
        plans.append(ModelPlan(name, _strings(layers, f"model {name} layers"), spec, synthesis))
    names = [p.name for p in plans]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PlanError(f"the plan names the model {', '.join(twice)} twice; give one [[model]] with all its layers.")
    return tuple(plans)


def parse_plan(data: Mapping, base: str | os.PathLike | None = None) -> Plan:
    """A :class:`Plan` from parsed TOML (a dict); raises :class:`PlanError` on any unknown or invalid field.

    Relative paths (stimulus folders, a null set, a model's module file, weights and labels) are taken from ``base``
    (:func:`load_plan` passes the plan file's folder; default: the working directory) and stored absolute.

    Every field is checked for its type (a quoted number, ``same_label = "no"`` or a string where a list belongs is
    refused, not converted) and its range.  Models and layers are checked against the zoo when the run starts
    (:func:`metamers.runs.run_plan`).

    Examples
    --------
    >>> parse_plan({"model": [{"name": "word-standard"}], "stimuli": {"words": ["seven"]}}).words
    ('seven',)
    """
    from metamers.audio.speech import VOCABULARY
    from metamers.stimuli import IMAGES
    from metamers.validation import MIN_PAIRS

    _check_keys(_table(data, "the plan"), _TOP, "the plan")
    base = Path(base) if base is not None else Path.cwd()
    models = _models(data.get("model"), base)
    stim = _table(data.get("stimuli", {}), "[stimuli]")
    _check_keys(stim, _STIMULI, "[stimuli]")
    val = _table(data.get("validation", {}), "[validation]")
    _check_keys(val, _VALIDATION, "[validation]")
    tra = _table(data.get("transfer", {}), "[transfer]")
    _check_keys(tra, _TRANSFER, "[transfer]")
    try:
        named = isinstance(stim.get("images"), int | list)  # a number or names of built-in pictures, not a path
        files = own_stimuli(
            {k: v for k, v in stim.items() if not (named and k == "images")},
            base,
            "stimuli",
            {"images": ("image", "image_labels"), "sounds": ("audio", "sound_labels")},
        )
        nulls = own_stimuli(val, base, "validation", {"null_images": ("image", None), "null_sounds": ("audio", None)})
    except OwnInputError as e:
        raise PlanError(str(e)) from e
    for key in ("image_labels", "sound_labels"):
        if key in stim and key not in files:
            field = "images" if key == "image_labels" else "sounds"
            raise PlanError(f"stimuli.{key} labels files: give stimuli.{field} as a folder or glob of files too.")
    speech = stim.get("speech", _DEFAULTS["speech"])
    if speech not in _SPEECH:
        raise PlanError(f"stimuli.speech = {speech!r}; choose from {', '.join(_SPEECH)}.")
    source = val.get("source", _DEFAULTS["source"])
    if source not in ("png", "full"):
        raise PlanError(f'validation.source = {source!r}; choose "png" (what a person sees or hears) or "full".')
    batch = data.get("batch", "auto")
    if batch != "auto":
        if isinstance(batch, str) or isinstance(batch, bool) or not isinstance(batch, int):
            raise PlanError(f'batch = {batch!r}: give a whole number of stimuli per synthesis job, or "auto".')
        if batch < 1:
            raise PlanError(f'batch = {batch}: give 1 or more stimuli per synthesis job, or "auto".')
    percentile = val.get("percentile", _DEFAULTS["percentile"])
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) or not 0 < percentile <= 100:
        raise PlanError(f"validation.percentile = {percentile!r}: give a number in (0, 100].")
    plan = Plan(
        models=models,
        name=_str(data.get("name", _DEFAULTS["name"]), "name"),
        seed=_int(data.get("seed", _DEFAULTS["seed"]), "seed", least=0),
        batch=None if batch == "auto" else batch,
        images=()
        if "images" in files
        else _names(stim.get("images", len(_DEFAULTS["images"])), DEFAULT_IMAGES, IMAGES, "images"),
        words=_names(stim.get("words", len(_DEFAULTS["words"])), DEFAULT_WORDS, VOCABULARY, "words"),
        speech=speech,
        synthesis=_synthesis(_table(data.get("synthesis", {}), "[synthesis]")),
        pairs=_int(val.get("pairs", _DEFAULTS["pairs"]), "validation.pairs", least=MIN_PAIRS),
        percentile=float(percentile),
        same_label=_bool(val.get("same_label", _DEFAULTS["same_label"]), "validation.same_label"),
        source=source,
        recognizers=_strings(tra.get("recognizers", []), "transfer.recognizers"),
        spaces=_strings(tra.get("spaces", list(_DEFAULTS["spaces"])), "transfer.spaces", _DEFAULTS["spaces"]),
        image_files=files.get("images"),
        image_labels=files.get("image_labels"),
        sound_files=files.get("sounds"),
        sound_labels=files.get("sound_labels"),
        null_images=nulls.get("null_images"),
        null_sounds=nulls.get("null_sounds"),
    )
    for kind in ("image", "audio", "cochleagram"):
        try:
            plan.settings(kind)
        except (TypeError, ValueError) as e:
            raise PlanError(f"[synthesis.{kind}]: {e}") from e
    return plan


def load_plan(path: str | os.PathLike) -> Plan:
    """Read a plan from a TOML file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "plan.toml"
    >>> _ = p.write_text('[[model]]\\nname = "efficientnet-lite0"\\nlayers = ["block_2"]\\n')
    >>> load_plan(p).models[0].name
    'efficientnet-lite0'
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"no plan file {path}; `metamers run --example > plan.toml` writes one to start from.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path} is not valid TOML: {e}") from e
    return parse_plan(data, base=path.resolve().parent)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def plan_toml(plan: Plan) -> str:
    """The plan as TOML text that :func:`load_plan` reads back to the same plan.

    Examples
    --------
    >>> plan = parse_plan({"model": [{"name": "efficientnet-lite0", "layers": ["block_2"]}], "batch": 2})
    >>> parse_plan(tomllib.loads(plan_toml(plan))) == plan
    True
    """
    batch = _toml_value(plan.batch or "auto")
    lines = [f"name = {_toml_value(plan.name)}", f"seed = {plan.seed}", f"batch = {batch}", "", "[stimuli]"]
    lines += [
        f"images = {_toml_value(plan.image_files or plan.images)}",
        f"words = {_toml_value(plan.words)}",
        f"speech = {_toml_value(plan.speech)}",
    ]
    own = {"image_labels": plan.image_labels, "sounds": plan.sound_files, "sound_labels": plan.sound_labels}
    lines += [f"{k} = {_toml_value(v)}" for k, v in own.items() if v is not None]
    for kind, table in plan.synthesis.items():
        lines += ["", f"[synthesis.{kind}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    lines += [
        "",
        "[validation]",
        f"pairs = {plan.pairs}",
        f"percentile = {plan.percentile!r}",
        f"same_label = {_toml_value(plan.same_label)}",
        f"source = {_toml_value(plan.source)}",
    ]
    nulls = {"null_images": plan.null_images, "null_sounds": plan.null_sounds}
    lines += [f"{k} = {_toml_value(v)}" for k, v in nulls.items() if v is not None]
    lines += [
        "",
        "[transfer]",
        f"recognizers = {_toml_value(plan.recognizers)}",
        f"spaces = {_toml_value(plan.spaces)}",
    ]
    for m in plan.models:
        lines += ["", "[[model]]", f"name = {_toml_value(m.name)}"]
        lines.append(f"layers = {_toml_value(m.layers[0] if m.layers == ('stages',) else m.layers)}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in (m.spec or {}).items()]
        if m.synthesis:
            lines.append(f"synthesis = {_toml_value(m.synthesis)}")
    return "\n".join(lines) + "\n"
