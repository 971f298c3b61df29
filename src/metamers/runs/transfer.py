"""Transfer over a validated directory: every accepted metamer classified by every recognizing model."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from metamers.models import CATEGORIES, ZooModel, decision_16, load
from metamers.report.figures import transfer_curves, transfer_matrix
from metamers.runs.catalog import Catalog
from metamers.runs.validate import as_displayed
from metamers.stimuli import IMAGES
from metamers.synthesis import SynthesisResult
from metamers.taps import list_layers
from metamers.transfer import TransferCell, transfer_cell

__all__ = ["SPACES", "transfer_dir"]

SPACES = ("imagenet", "16-way")


def _logits(zoo: ZooModel, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The model's logits for images of any size, resized (bilinear, antialiased) to its input."""
    size = zoo.input_shape[-2:]
    out = []
    with torch.no_grad():
        zoo.module.eval()
        for i in range(0, x.shape[0], batch):
            xb = x[i : i + batch]
            if tuple(xb.shape[-2:]) != tuple(size):
                xb = F.interpolate(xb, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
            out.append(zoo.module(xb))
    return torch.cat(out) if out else torch.zeros(0, len(zoo.labels))


def _labels(logits: torch.Tensor, space: str) -> torch.Tensor:
    return logits.argmax(-1) if space == "imagenet" else decision_16(logits)


def transfer_dir(
    directory: str | os.PathLike,
    recognizers: Sequence[str],
    source: str = "png",
    spaces: Sequence[str] = SPACES,
) -> dict:
    """Classify the accepted metamers of a validated directory with each recognizing model.

    The reference label of a stimulus is, in the 1000-way space, the generating model's label for it (the photos
    carry no ImageNet ground truth), and in the 16-way space its known category (``metamers.stimuli.IMAGES``) or
    else the generating model's 16-way decision.  The generating model itself recognizes its accepted metamers by
    construction (proportion 1 in the 1000-way space); it is listed with ``own=True``.

    Returns
    -------
    dict
        ``{"cells": [TransferCell, ...], "csv": path, "figures": [paths]}``; the cells also go to the catalog.
    """
    directory = Path(directory)
    if source not in ("png", "full"):
        raise ValueError(f"source must be 'png' or 'full', got {source!r}.")
    unknown = [s for s in spaces if s not in SPACES]
    if unknown:
        raise ValueError(f"unknown label space(s) {unknown}; choose from {', '.join(SPACES)}.")
    catalog = Catalog(directory)
    rows = catalog.query(
        "SELECT m.result_file, m.item, m.model, m.layer, v.accepted FROM metamers m "
        "JOIN validation v ON v.metamer_id = m.id"
    )
    if not rows:
        raise RuntimeError(f"nothing validated in {directory}: run `metamers validate {directory}` first.")
    accepted: dict[str, list[int]] = {}
    for r in rows:
        accepted.setdefault(r["result_file"], [])
        if r["accepted"]:
            accepted[r["result_file"]].append(r["item"])
    results = {f: SynthesisResult.load(directory / f) for f in accepted}
    zoos: dict[str, ZooModel] = {}

    def zoo(name: str) -> ZooModel:
        if name not in zoos:
            zoos[name] = load(name)
        return zoos[name]

    order: dict[str, int] = {}
    for gen in {r.extra["model"] for r in results.values()}:
        order.update({lay.name: lay.order for lay in list_layers(zoo(gen).module, zoo(gen).example())})
    cells: list[TransferCell] = []
    for f, res in sorted(results.items(), key=lambda fr: (fr[1].extra["model"], order[fr[1].layer])):
        gen = res.extra["model"]
        keep = accepted[f]
        names = res.extra.get("stimuli", [str(i) for i in range(len(res))])
        gen_logits = _logits(zoo(gen), res.stimuli)
        x = as_displayed(res.metamers) if source == "png" else res.metamers
        for space in spaces:
            reference = _labels(gen_logits, space)
            if space == "16-way":
                known = [IMAGES.get(n, (None, None, None))[1] for n in names]
                reference = torch.tensor(
                    [CATEGORIES.index(k) if k else int(d) for k, d in zip(known, reference, strict=True)]
                )
            n_classes = 1000 if space == "imagenet" else 16
            for rec in dict.fromkeys([gen, *recognizers]):
                rz = zoo(rec)
                none = torch.zeros(0, dtype=torch.long)
                on_metamers = _labels(_logits(rz, x[keep]), space) if keep else none
                on_natural = _labels(_logits(rz, res.stimuli[keep]), space) if keep else none
                ref = reference[keep]
                cell = transfer_cell(gen, res.layer, rec, space, source, on_metamers, on_natural, ref, n_classes)
                cells.append(cell)
    catalog.set_transfer([c.as_dict() for c in cells])
    csv_path = directory / "transfer.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cells[0].as_dict()) if cells else ["generator"])
        w.writeheader()
        w.writerows(c.as_dict() for c in cells)
    figures = []
    for space in spaces:
        sel = [c for c in cells if c.label_space == space]
        if sel:
            figures.append(transfer_curves(sel, order, directory / "figures" / f"transfer_{space}.png"))
            figures.append(transfer_matrix(sel, order, directory / "figures" / f"transfer_matrix_{space}.png"))
    return {"cells": cells, "csv": csv_path, "figures": figures}
