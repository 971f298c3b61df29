"""Validate every metamer a directory holds: rho at every stage of its model, nulls, verdicts, table, figures.

The directory holds synthesis results (``*.safetensors`` written by ``metamers synthesize`` or the demo, whose
metadata names the zoo model).  Validation writes into it: ``catalog.sqlite`` (a row per metamer with its verdict and
its rho at every measured layer), ``nulls/`` (reused by later validations), ``validation_table.csv`` and
``figures/null_grid_<model>.png``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from metamers._files import DamagedFile, set_aside
from metamers.modality import as_presented, modality
from metamers.models import ZooModel, load
from metamers.models.user import register_result_models
from metamers.nulls import NullStore, compute_nulls
from metamers.runs.catalog import Catalog
from metamers.runs.lock import run_lock
from metamers.stimuli import NULL_IMAGES, CropFlip, augmented_batches, full_images
from metamers.stimuli.files import StimulusFiles
from metamers.synthesis import SynthesisResult
from metamers.taps import list_layers
from metamers.validation import MIN_PAIRS, AcceptanceRule, compare_layers, verdict

__all__ = [
    "MIN_PAIRS",
    "clips_for_pairs",
    "images_per_source",
    "null_thresholds",
    "validate_dir",
]


def clips_for_pairs(n_pairs: int) -> int:
    """Fewest clips whose distinct pairs number at least ``n_pairs``.

    Examples
    --------
    >>> clips_for_pairs(1_000_000)
    1415
    """
    return max(2, math.ceil((1 + math.sqrt(1 + 8 * n_pairs)) / 2))


def images_per_source(n_pairs: int, sources: int) -> int:
    """Fewest augmented views per source image that give ``n_pairs`` pairs of views from different sources.

    Examples
    --------
    >>> images_per_source(1_000_000, 17)
    86
    """
    if sources < 2:
        raise ValueError("a null needs at least two source images.")
    # pairs across sources with k views each: k^2 * s * (s - 1) / 2
    return max(1, math.ceil(math.sqrt(2 * n_pairs / (sources * (sources - 1)))))


def _nulls(
    zoo: ZooModel,
    layers: Sequence[str],
    store: NullStore,
    n_pairs: int,
    seed: int,
    images: Sequence[str],
    catalog: Catalog,
    null_files: Mapping[str, StimulusFiles] | None = None,
) -> dict[str, torch.Tensor]:
    own = (null_files or {}).get(modality(zoo.kind).family)
    if own is not None:
        base, make = _own_null_source(zoo, n_pairs, seed, own)
    elif modality(zoo.kind).is_sound:
        from metamers.runs.media import sample_rate

        if zoo.kind == "audio" and (zoo.input_shape[-1], sample_rate(zoo)) != (40000, 20000):
            raise ValueError(
                f"{zoo.name} takes {zoo.input_shape[-1]} samples at {sample_rate(zoo)} Hz; the built-in speech null "
                "is 2 s clips at 20 kHz: give a null set of your own sounds ([validation] null_sounds in a plan)."
            )
        base, make = _speech_null_source(zoo, n_pairs, seed)
    else:
        base, make = _image_null_source(zoo, n_pairs, seed, images)
    out, missing = {}, []
    for lay in layers:
        got = store.get(layer=lay, **base)
        if got is None:
            missing.append(lay)
        else:
            out[lay] = got
    if missing:
        batches, total = make()
        fresh = compute_nulls(zoo.module, missing, batches, n_pairs, seed=seed, total=total)
        for lay, rho in fresh.items():
            store.put(rho, layer=lay, **base)
            out[lay] = rho
    for lay in layers:
        r = out[lay].numpy()
        catalog.add_null(zoo.name, lay, base, len(r), float(np.median(r)), float(np.percentile(r, 99)), float(r.max()))
    return out


def null_thresholds(
    directory: str | os.PathLike,
    zoo: ZooModel,
    layers: Sequence[str],
    n_pairs: int,
    rule: AcceptanceRule,
    seed: int = 0,
    null_files: Mapping[str, StimulusFiles] | None = None,
) -> dict[str, float]:
    """The rho a metamer of each of ``layers`` must exceed, from the nulls that validating ``directory`` will use.

    The nulls of every layer validation measures (the model's stages and ``layers``) are computed now, with the
    same source, pairs and seed, and kept in ``directory/nulls``: the later validation reuses them. A run calls this
    before synthesis to stop each metamer relative to its layer's null (a plan's ``stop_past_null``).

    Examples
    --------
    >>> t = null_thresholds("runs/x", load("word-real-standard"), ["net.conv_3"], 20000, AcceptanceRule())
    ... # doctest: +SKIP
    >>> 0 < t["net.conv_3"] < 1  # doctest: +SKIP
    True
    """
    directory = Path(directory)
    measured = _measured(zoo, layers, _layers(zoo))
    nulls = _nulls(zoo, measured, NullStore(directory / "nulls"), n_pairs, seed, NULL_IMAGES, Catalog(directory),
                   null_files)  # fmt: skip
    return {lay: rule.threshold(nulls[lay]) for lay in layers}


def _layers(zoo: ZooModel) -> dict:
    """The model's layers by name (their forward order and feature counts)."""
    return {lay.name: lay for lay in list_layers(zoo.module, zoo.example())}


def _measured(zoo: ZooModel, generation_layers: Sequence[str] | set[str], layers: dict) -> list[str]:
    """The layers validation measures for a model's metamers: its stages and their generation layers, in forward
    order (the last is the model's output)."""
    return sorted(set(zoo.stages.values()) | set(generation_layers), key=lambda n: layers[n].order)


def _own_null_source(zoo: ZooModel, n_pairs: int, seed: int, found: StimulusFiles):
    """Null stimuli from the user's files, keyed by their content: augmented views of images (pairs of views of one
    picture excluded), or sound clips one source each."""
    from metamers.runs.media import sample_rate
    from metamers.stimuli.files import full_image_files, load_sound_files

    n = len(found.paths)
    if n < 2:
        raise ValueError(f"the null set {found.paths[0].parent} has {n} file: a null needs two or more stimuli.")
    base = {
        "model": zoo.name,
        "weights": zoo.weights_id,
        "stimuli": f"files:{found.digest()[:16]}",
        "size": zoo.input_shape[-1],
        "pairs": n_pairs,
        "seed": seed,
    }
    if found.kind == "image":
        per = images_per_source(n_pairs, n)
        augment = CropFlip()
        base["augment"] = f"{augment.spec()} x{per}"

        def make_images():
            batches = augmented_batches(full_image_files(found), per, zoo.input_shape[-1], augment, seed=seed)
            return batches, per * n

        return base, make_images
    if n * (n - 1) // 2 < n_pairs:
        raise ValueError(
            f"the null set of {n} sounds makes {n * (n - 1) // 2} pairs (one per two clips), fewer than the "
            f"{n_pairs} asked for: give at least {clips_for_pairs(n_pairs)} clips, or fewer pairs."
        )
    base["augment"] = "none"

    def make_sounds():
        length = zoo.frontend.settings.n_samples if zoo.frontend is not None else zoo.input_shape[-1]
        clips = load_sound_files(found, length, sample_rate(zoo))

        def batches():
            for i in range(0, n, 16):
                x = clips[i : i + 16]
                if zoo.frontend is not None:
                    with torch.no_grad():
                        x = zoo.frontend(x)
                yield x, torch.arange(i, i + len(x))

        return batches(), n

    return base, make_sounds


def _speech_null_source(zoo: ZooModel, n_pairs: int, seed: int):
    """Null stimuli for audio models: clean speech clips (espeak-ng voices), one source each, as the paper's pairs."""
    from metamers.audio.corpus import CorpusSpec, WordClips, build_corpus

    n = clips_for_pairs(n_pairs)
    spec = CorpusSpec(f"null-{n}-{seed}", "espeak-ng", n_clips=n, seed=10_000 + seed, snr_db=None)
    base = {
        "model": zoo.name,
        "weights": zoo.weights_id,
        "stimuli": f"speech:{spec.digest()[:16]}",
        "augment": "none",
        "size": zoo.input_shape[-1],
        "pairs": n_pairs,
        "seed": seed,
    }

    def make():
        clips = WordClips(build_corpus(spec, progress=False).parent, spec.split)

        def batches():
            for i in range(0, len(clips), 16):
                x = clips.batch(i, i + 16)
                if zoo.frontend is not None:  # a cochleagram view: its input is the clip's cochleagram
                    with torch.no_grad():
                        x = zoo.frontend(x)
                yield x, torch.arange(i, i + len(x))

        return batches(), len(clips)

    return base, make


def _image_null_source(zoo: ZooModel, n_pairs: int, seed: int, images: Sequence[str]):
    per = images_per_source(n_pairs, len(images))
    augment = CropFlip()
    base = {
        "model": zoo.name,
        "weights": zoo.weights_id,
        "stimuli": "images:" + ",".join(images),
        "augment": f"{augment.spec()} x{per}",
        "size": zoo.input_shape[-1],
        "pairs": n_pairs,
        "seed": seed,
    }

    def make():
        return augmented_batches(full_images(images), per, zoo.input_shape[-1], augment, seed=seed), per * len(images)

    return base, make


def validate_dir(
    directory: str | os.PathLike,
    n_pairs: int = 1_000_000,
    rule: AcceptanceRule | None = None,
    source: str = "png",
    seed: int = 0,
    images: Sequence[str] = NULL_IMAGES,
    null_files: Mapping[str, StimulusFiles] | None = None,
) -> dict:
    """Validate the metamers in ``directory`` and write the results into it.

    Parameters
    ----------
    directory : path
        A directory of synthesis results (``*.safetensors`` whose metadata names the zoo model), at its top level or
        in its ``results/`` folder (a run's).
    n_pairs : int
        Pairs in each null distribution (the paper: 1,000,000).
    rule : AcceptanceRule, optional
        Defaults to the paper's: same label and rho above the null's maximum.
    source : {"png", "full"}
        Validate what a person sees (8-bit, as in the PNGs; default) or the full-precision metamers.
    seed : int
        Seed of the augmentations and the pair draw.
    images : sequence of str
        scikit-image pictures the null is drawn from.
    null_files : mapping, optional
        The user's own null set per modality (``{"image": StimulusFiles, "audio": ...}``, from
        :func:`metamers.stimuli.files.find_stimulus_files`), instead of the built-in pictures or speech clips: for
        example the network's training images. Keyed in the null store by the files' content.

    Returns
    -------
    dict
        ``{"table": rows (Table S4/S5 columns), "metamers": per-metamer records, "figures": paths, "csv": path}``.
    """
    directory = Path(directory)
    rule = rule or AcceptanceRule()
    if source not in ("png", "full"):
        raise ValueError(f"source must be 'png' or 'full', got {source!r}.")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < MIN_PAIRS:
        raise ValueError(
            f"n_pairs = {n_pairs!r}: a null needs a whole number of at least {MIN_PAIRS} pairs (the paper: 1,000,000)."
        )
    if not directory.is_dir():
        raise FileNotFoundError(f"no directory {directory}; give a directory of synthesis results.")
    files = sorted(directory.glob("*.safetensors")) + sorted(directory.glob("results/*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no synthesis results (*.safetensors) in {directory}; synthesize metamers first.")
    with run_lock(directory, "metamers validate"):
        return _validate(directory, files, n_pairs, rule, source, seed, images, null_files)


def _load_results(files: list[Path]) -> dict[Path, SynthesisResult]:
    """Every result; a damaged one is set aside (``.corrupt``) and named in the error, for its job to be redone."""
    results = {}
    for f in files:
        try:
            results[f] = SynthesisResult.load(f)
        except DamagedFile as e:
            moved = set_aside(f)
            raise DamagedFile(
                f,
                e.__cause__ or e,
                f"set aside as {moved.name}: `metamers run` on a run directory redoes it "
                "(elsewhere, synthesize it again), then validate again.",
            ) from e
    return results


def _validate(
    directory: Path,
    files: list[Path],
    n_pairs: int,
    rule: AcceptanceRule,
    source: str,
    seed: int,
    images: Sequence[str],
    null_files: Mapping[str, StimulusFiles] | None,
) -> dict:
    results = _load_results(files)
    register_result_models([r.extra for r in results.values()])
    by_model: dict[str, list[Path]] = {}
    for f, r in results.items():
        model = r.extra.get("model")
        if not model:
            raise ValueError(f"{f.name} does not name its model (extra['model']); it was not written by metamers.")
        by_model.setdefault(model, []).append(f)

    catalog = Catalog(directory, repair=True)
    store = NullStore(directory / "nulls")
    from metamers.report.figures import null_grid  # the report draws and tabulates, as a step of the run
    from metamers.report.tables import summary_table, table_csv

    records, figures = [], []
    for model, model_files in by_model.items():
        zoo = load(model)
        order = _layers(zoo)
        measured = _measured(zoo, {results[f].layer for f in model_files}, order)
        logits = measured[-1]
        nulls = _nulls(zoo, measured, store, n_pairs, seed, images, catalog, null_files)
        grid: dict[str, dict[str, list[float]]] = {}
        for f in sorted(model_files, key=lambda f: order[results[f].layer].order):
            r = results[f]
            x = r.metamers if source == "full" else as_presented(r.metamers, zoo.kind)
            sims = compare_layers(zoo.module, x, r.stimuli, measured)
            lab_m, lab_s = zoo.predict(x), zoo.predict(r.stimuli)
            names = r.extra.get("stimuli", [str(i) for i in range(len(r))])
            row = grid.setdefault(r.layer, {lay: [] for lay in measured})
            for i in range(len(r)):
                rho = float(sims[r.layer]["spearman"][i])
                v = verdict(rho, nulls[r.layer], int(lab_m[i]), int(lab_s[i]), rule, names=zoo.labels.__getitem__)
                mid = catalog.add_metamer(
                    result_file=f.relative_to(directory).as_posix(),
                    item=i, model=model, layer=r.layer, stimulus=names[i],
                    seed=r.settings.seed, iterations=r.stop_iteration[i], settings=r.settings.to_dict(),
                    final_loss=float(r.final_loss[i]), stop_reason=r.stop_reason[i],
                )  # fmt: skip
                per_layer = [
                    (
                        lay,
                        float(sims[lay]["spearman"][i]),
                        float(sims[lay]["pearson"][i]),
                        float(sims[lay]["snr_db"][i]),
                    )
                    for lay in measured
                ]
                catalog.set_validation(
                    mid, per_layer, source=source, label_stimulus=zoo.labels[int(lab_s[i])],
                    label_metamer=zoo.labels[int(lab_m[i])], rho_layer=rho,
                    rho_logits=float(sims[logits]["spearman"][i]), null_threshold=v.threshold,
                    accepted=int(v.accepted), reason=v.reason,
                    rule=f"same_label={rule.same_label}, null_percentile={rule.null_percentile:g}",
                )  # fmt: skip
                for lay in measured:
                    row[lay].append(float(sims[lay]["spearman"][i]))
                records.append(
                    {
                        "model": model,
                        "layer": r.layer,
                        "stimulus": names[i],
                        "accepted": v.accepted,
                        "reason": v.reason,
                        "features": order[r.layer].features,
                        "rho_layer": rho,
                        "rho_logits": float(sims[logits]["spearman"][i]),
                        "null_median": float(nulls[r.layer].median()),
                        "null_max": float(nulls[r.layer].max()),
                        "label_stimulus": zoo.labels[int(lab_s[i])],
                        "label_metamer": zoo.labels[int(lab_m[i])],
                    }
                )
        title = f"{model}: metamer rho ({source}) against the null of {n_pairs:,} pairs"
        figures.append(null_grid(grid, {k: v.numpy() for k, v in nulls.items()}, measured,
                                 directory / "figures" / f"null_grid_{model}.png", title))  # fmt: skip
    table = summary_table(records)
    csv_path = directory / "validation_table.csv"
    csv_path.write_text(table_csv(table))
    return {"table": table, "metamers": records, "figures": figures, "csv": csv_path, "source": source}
