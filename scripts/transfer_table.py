"""The Figure 5 table of a run, as Markdown: recognition of each generator's metamers, stage by stage.

For each generating network and label space, one row per group of recognizers: the other trained networks (the mean
of their proportions, with the mean of their bootstrap SEMs over stimuli), and each random control.  The last
column is the same recognizers on the natural stimuli.  Then the Figure 5 verdict of each generator
(:func:`metamers.transfer.figure5_trend`).

    .venv/bin/python scripts/transfer_table.py runs/image-study
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from metamers.runs.rundir import RunDir
from metamers.transfer import figure5_trend

SPACE = {"imagenet": "1000-way", "16-way": "16-way"}


def _mean(cells: list[dict], key: str) -> float:
    return statistics.fmean(c[key] for c in cells)


def table(run: Path) -> str:
    rundir = RunDir(run)
    cells = [c for c in rundir.transfer() if c["proportion"] is not None]
    stages = rundir.stage_names()
    accepted: dict[tuple[str, str], list[int]] = {}
    for m in rundir.metamers():
        if m["accepted"] is not None:
            count = accepted.setdefault((m["model"], m["layer"]), [0, 0])
            count[0] += bool(m["accepted"])
            count[1] += 1
    out = []
    for gen in dict.fromkeys(c["generator"] for c in cells):
        for space in dict.fromkeys(c["label_space"] for c in cells if c["generator"] == gen):
            sel = [c for c in cells if c["generator"] == gen and c["label_space"] == space]
            layers = list(dict.fromkeys(c["layer"] for c in sel))
            names = [stages.get((gen, lay), lay) for lay in layers]
            out += [
                f"**{gen}**, {SPACE.get(space, space)} labels",
                "",
                "| recognized by | " + " | ".join(names) + " | natural stimuli |",
                "| --- | " + " | ".join("---" for _ in layers) + " | --- |",
                "| accepted metamers | "
                + " | ".join("{}/{}".format(*accepted.get((gen, lay), ("?", "?"))) for lay in layers)
                + " | |",
            ]
            others = [c for c in sel if not c["own"] and not c["recognizer"].endswith("-random")]
            groups = [("other trained networks (mean)", others)]
            groups += [(r, [c for c in sel if c["recognizer"] == r]) for r in
                       dict.fromkeys(c["recognizer"] for c in sel if c["recognizer"].endswith("-random"))]  # fmt: skip
            for label, group in groups:
                if not group:
                    continue
                row = []
                for lay in layers:
                    at = [c for c in group if c["layer"] == lay]
                    row.append(f"{_mean(at, 'proportion'):.0%} (±{_mean(at, 'sem') * 100:.0f})" if at else "-")
                out.append(f"| {label} | " + " | ".join(row) + f" | {_mean(group, 'natural_accuracy'):.0%} |")
            out.append("")
    for t in figure5_trend(cells, stages):
        out.append(f"- {t['text']}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/transfer_table.py RUN_DIRECTORY")
    print(table(Path(sys.argv[1])))
