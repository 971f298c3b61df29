"""Transfer over a validated directory: every accepted metamer classified by every recognizing model."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from metamers.modality import as_presented, modality
from metamers.models import CATEGORIES, ZooModel, decision_16, imagenet_labels, load, speech_classes
from metamers.models.user import register_result_models
from metamers.runs.catalog import Catalog
from metamers.runs.lock import run_lock
from metamers.stimuli import IMAGES
from metamers.synthesis import SynthesisResult
from metamers.taps import list_layers
from metamers.transfer import TransferCell, transfer_cell

__all__ = ["AUDIO_SPACE", "OWN_SPACE", "SPACES", "SPEECH_SPACE", "transfer_dir"]

SPACES = ("imagenet", "16-way")
AUDIO_SPACE = "word"
SPEECH_SPACE = "speech"  # an AudioSet network judging speech: is its top class one of the speech classes?
OWN_SPACE = "labels"  # an image model with its own labels (not ImageNet's): judged by models that share them


def _forward(zoo: ZooModel, xb: torch.Tensor) -> torch.Tensor:
    param = next(zoo.module.parameters(), None)
    return zoo.module(xb.to(param.device) if param is not None else xb).cpu()


def _logits(zoo: ZooModel, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The model's logits, in batches: images of any size resized (bilinear, antialiased) to its input; waveforms
    as they are (their length must be the model's)."""
    if zoo.kind == "audio" and x.shape[-1] != zoo.input_shape[-1]:
        raise ValueError(
            f"{zoo.name} takes waveforms of {zoo.input_shape[-1]} samples, these have {x.shape[-1]}: a recognizer "
            "must take clips of the generating model's length (waveforms are not resampled)."
        )
    size = zoo.input_shape[-2:]
    out = []
    with torch.no_grad():
        zoo.module.eval()
        for i in range(0, x.shape[0], batch):
            xb = x[i : i + batch]
            if zoo.kind == "image" and tuple(xb.shape[-2:]) != tuple(size):
                xb = F.interpolate(xb, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
            out.append(_forward(zoo, xb))
    return torch.cat(out) if out else torch.zeros(0, len(zoo.labels))


def _labels(logits: torch.Tensor, space: str) -> torch.Tensor:
    return decision_16(logits) if space == "16-way" else logits.argmax(-1)


def _word_reference(names: Sequence[str], rz: ZooModel, gen: ZooModel, gen_labels: torch.Tensor) -> torch.Tensor:
    """Reference labels of audio stimuli in the recognizer's label list: the stimulus's word, or else the
    generating model's label for the natural clip (-1, matching nothing, if the recognizer lacks that label)."""
    out = []
    for name, g in zip(names, gen_labels.tolist(), strict=True):
        word = name if name in rz.labels else gen.labels[g]
        out.append(rz.labels.index(word) if word in rz.labels else -1)
    return torch.tensor(out, dtype=torch.long)


def _speech_cell(
    gen: str, layer: str, rz: ZooModel, source: str, metamers: torch.Tensor, natural: torch.Tensor, speech: list[int]
) -> TransferCell:
    """An AudioSet network's judgement of speech clips and their metamers: top class among its speech classes."""
    classes = torch.tensor(speech)

    def is_speech(x: torch.Tensor) -> torch.Tensor:
        if not len(x):
            return torch.zeros(0, dtype=torch.long)
        return torch.isin(_logits(rz, x).argmax(-1), classes).long()

    ref = torch.ones(len(metamers), dtype=torch.long)
    n = len(rz.labels)
    on_metamers, on_natural = is_speech(metamers), is_speech(natural)
    chance = len(speech) / n
    return transfer_cell(gen, layer, rz.name, SPEECH_SPACE, source, on_metamers, on_natural, ref, n, chance=chance)


def transfer_dir(
    directory: str | os.PathLike,
    recognizers: Sequence[str],
    source: str = "png",
    spaces: Sequence[str] = SPACES,
) -> dict:
    """Classify the accepted metamers of a validated directory with each recognizing model.

    Image generators are judged in the label ``spaces`` (``"imagenet"``, ``"16-way"``).  The reference label of a
    photo is, in the 1000-way space, the generating model's label for it (the photos carry no ImageNet ground truth),
    and in the 16-way space its known category (``metamers.stimuli.IMAGES``) or else the generating model's 16-way
    decision.  The generating model itself recognizes its accepted image metamers by construction (proportion 1 in
    the 1000-way space).

    Audio metamers are judged where the two label spaces meet, whatever ``spaces`` says.  A recognizer with words
    (a word network) judges in the ``"word"`` space: the reference label of a clip is its word (the stimulus name,
    in the recognizer's vocabulary), or else the generating model's label for the natural clip.  A recognizer
    without the clips' words but with AudioSet's speech classes (``yamnet``) judges in the ``"speech"`` space: a
    clip is recognized when its top class is one of the speech classes (``metamers.models.AUDIOSET_SPEECH``;
    chance is their share of its classes).  So YAMNet's metamers of words are judged by the word networks on their
    words, and the word networks' metamers by YAMNet on being speech.  The natural accuracy is the recognizer's on
    the natural clips, and the generating model's own proportion is whatever it measures (below 1 where it mishears
    a word).  With ``source="png"`` the audio metamers are classified as a 16-bit WAV holds them.

    The generating model is always listed, with ``own=True``.  Recognizers of the other kind than a generator
    (image against audio) are skipped for it.

    A recognizer that judges no generator of the directory (an audio model for image metamers) is an error.

    Returns
    -------
    dict
        ``{"cells": [TransferCell, ...], "csv": path, "figures": [paths]}``; the cells replace the catalog's
        transfer rows, so that it and ``transfer.csv`` hold the same results.
    """
    directory = Path(directory)
    if source not in ("png", "full"):
        raise ValueError(f"source must be 'png' or 'full', got {source!r}.")
    unknown = [s for s in spaces if s not in SPACES]
    if unknown:
        raise ValueError(
            f"unknown label space(s) {unknown}; choose from {', '.join(SPACES)} (audio generators are always "
            f"judged in the {AUDIO_SPACE!r} or {SPEECH_SPACE!r} space)."
        )
    if isinstance(recognizers, str) or not recognizers or not all(isinstance(r, str) and r for r in recognizers):
        raise ValueError(f"recognizers must be a list of zoo names, e.g. ['efficientnet-lite1'], got {recognizers!r}.")
    recognizers = list(recognizers)
    if not (directory / "catalog.sqlite").is_file():
        raise FileNotFoundError(f"nothing validated in {directory}: run `metamers validate {directory}` first.")
    with run_lock(directory, "metamers transfer"):
        return _transfer(directory, recognizers, source, spaces)


def _by_layer(
    results: dict[str, SynthesisResult], orders: dict[str, dict[str, int]]
) -> dict[tuple[str, str], list[tuple[str, SynthesisResult]]]:
    """Result files grouped by (generating model, layer), in forward-pass order, each group's batches in order: a plan
    splits a layer's stimuli over several jobs, and a transfer cell counts them all."""

    def batch(path: str) -> tuple[int, str]:
        tail = Path(path).stem.rpartition("__b")[2]
        return (int(tail), path) if tail.isdigit() else (0, path)

    groups: dict[tuple[str, str], list[tuple[str, SynthesisResult]]] = {}
    for f, res in sorted(
        results.items(), key=lambda fr: (fr[1].extra["model"], orders[fr[1].extra["model"]][fr[1].layer], batch(fr[0]))
    ):
        groups.setdefault((res.extra["model"], res.layer), []).append((f, res))
    return groups


def _transfer(directory: Path, recognizers: list[str], source: str, spaces: Sequence[str]) -> dict:
    catalog = Catalog(directory)
    rows = catalog.query(
        "SELECT m.result_file, m.item, m.model, m.layer, v.accepted FROM metamers m "
        "JOIN validation v ON v.metamer_id = m.id"
    )
    if not rows:
        raise FileNotFoundError(f"nothing validated in {directory}: run `metamers validate {directory}` first.")
    accepted: dict[str, list[int]] = {}
    for r in rows:
        accepted.setdefault(r["result_file"], [])
        if r["accepted"]:
            accepted[r["result_file"]].append(r["item"])
    results = {f: SynthesisResult.load(directory / f) for f in accepted}
    register_result_models([r.extra for r in results.values()])
    zoos: dict[str, ZooModel] = {}

    def zoo(name: str) -> ZooModel:
        if name not in zoos:
            zoos[name] = load(name)
        return zoos[name]

    kinds = {zoo(r.extra["model"]).kind: r.extra["model"] for r in results.values()}
    for rec in recognizers:
        if zoo(rec).kind not in kinds:
            raise ValueError(
                f"{rec} is a{'n' if zoo(rec).kind[0] in 'aeiou' else ''} {zoo(rec).kind} model, but the metamers in "
                f"{directory} are {' and '.join(kinds)} metamers (of {', '.join(kinds.values())}); a recognizer judges "
                "generators of its own kind: give recognizers of that kind."
            )
    for gen in sorted({r.extra["model"] for r in results.values()}):
        gz = zoo(gen)
        own_labels = gz.kind == "image" and gz.labels != imagenet_labels()
        strangers = [r for r in recognizers if zoo(r).kind == gz.kind and own_labels and zoo(r).labels != gz.labels]
        if strangers:
            raise ValueError(
                f"{gen} has its own {len(gz.labels)} labels, not the 1000 ImageNet classes, so {', '.join(strangers)} "
                f"cannot judge its metamers: give recognizers with the same labels as {gen}."
            )
    orders: dict[str, dict[str, int]] = {}
    for gen in sorted({r.extra["model"] for r in results.values()}):
        orders[gen] = {lay.name: lay.order for lay in list_layers(zoo(gen).module, zoo(gen).example())}
    cells: list[TransferCell] = []
    for (gen, layer), parts in _by_layer(results, orders).items():
        gz = zoo(gen)
        audio = modality(gz.kind).is_sound
        keep, names, given, offset = [], [], [], 0  # one cell per (generator, layer): every batch's metamers
        for f, res in parts:
            keep += [offset + i for i in accepted[f]]
            n = len(res.stimuli)
            names += list(res.extra.get("stimuli", [str(offset + i) for i in range(n)]))
            given += list(res.extra.get("labels") or [None] * n)  # the user's labels of their stimulus files
            offset += n
        stimuli = torch.cat([res.stimuli for _, res in parts])
        metamers = torch.cat([res.metamers for _, res in parts])
        gen_logits = _logits(gz, stimuli)
        x = as_presented(metamers, gz.kind) if source == "png" else metamers
        recs = [r for r in dict.fromkeys([gen, *recognizers]) if zoo(r).kind == gz.kind]
        own_labels = not audio and gz.labels != imagenet_labels()
        for space in (AUDIO_SPACE,) if audio else ((OWN_SPACE,) if own_labels else spaces):
            reference = _labels(gen_logits, space)
            if space == "16-way":
                known = [
                    g if g in CATEGORIES else IMAGES.get(n, (None, None, None))[1]
                    for n, g in zip(names, given, strict=True)
                ]
                reference = torch.tensor(
                    [CATEGORIES.index(k) if k else int(d) for k, d in zip(known, reference, strict=True)]
                )
            elif not audio:  # the ImageNet classes, or the generator's own labels
                reference = torch.tensor(
                    [gz.labels.index(g) if g in gz.labels else int(d) for g, d in zip(given, reference, strict=True)]
                )
            for rec in recs:
                rz = zoo(rec)
                if audio:
                    words = [given[i] or names[i] for i in keep]
                    speech = speech_classes(rz.labels)
                    if speech and not any(w in rz.labels for w in words):
                        cells.append(_speech_cell(gen, layer, rz, source, x[keep], stimuli[keep], speech))
                        continue
                    ref = _word_reference(words, rz, gz, reference[keep])
                    n_classes = len(rz.labels)
                else:
                    ref = reference[keep]
                    n_classes = {"imagenet": 1000, "16-way": 16}.get(space, len(gz.labels))
                none = torch.zeros(0, dtype=torch.long)
                on_metamers = _labels(_logits(rz, x[keep]), space) if keep else none
                on_natural = _labels(_logits(rz, stimuli[keep]), space) if keep else none
                cell = transfer_cell(gen, layer, rec, space, source, on_metamers, on_natural, ref, n_classes)
                cells.append(cell)
    catalog.set_transfer([c.as_dict() for c in cells], replace=True)  # the catalog holds what transfer.csv holds
    csv_path = directory / "transfer.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cells[0].as_dict()) if cells else ["generator"])
        w.writeheader()
        w.writerows(c.as_dict() for c in cells)
    from metamers.report.figures import transfer_curves, transfer_matrix  # the report draws, as a step

    figures = []
    for space in dict.fromkeys(c.label_space for c in cells):
        sel = [c for c in cells if c.label_space == space]
        order = {k: v for g in dict.fromkeys(c.generator for c in sel) for k, v in orders[g].items()}
        figures.append(transfer_curves(sel, order, directory / "figures" / f"transfer_{space}.png"))
        figures.append(transfer_matrix(sel, order, directory / "figures" / f"transfer_matrix_{space}.png"))
    return {"cells": cells, "csv": csv_path, "figures": figures}
