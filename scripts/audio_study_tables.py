"""The audio study's tables, as Markdown: how often each network's metamers are heard as their word by the others.

Rows are (generating network, recognizing network) pairs, columns the generation stages in the order of the forward
pass (the first, second and third stage of each generator: ``conv_1`` of a standard network sits where ``pool_1``
of a reduced-aliasing one does), then the recognizer's accuracy on the natural clips.  Each cell is the proportion of
accepted metamers that the recognizer gives the clip's word, with its bootstrap SEM over words and, where not all
were accepted, how many were.  A last table counts the accepted metamers of each generator and stage.

    .venv/bin/python scripts/audio_study_tables.py runs/audio-transfer            # every pair
    .venv/bin/python scripts/audio_study_tables.py runs/audio-transfer --readme   # the README's four tables
    .venv/bin/python scripts/audio_study_tables.py runs/audio-every-stage --others  # every pair but the own ones
    .venv/bin/python scripts/audio_study_tables.py runs/audio-transfer --figure docs/images/audio_study_transfer.png

The figure has one panel per word network (and the other seed's cochleagram view), each generating network's metamers
recognized by it against the stage, the generator's own curve left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metamers.runs.rundir import RunDir

S = "word-real-standard"
RA = "word-real-reduced-aliasing"
SEED1 = "word-real-standard-seed1"
YAMNET = "yamnet"

README_TABLES = {
    "Figure 4 (network side): which networks' metamers the word networks hear as words": [
        (S, RA),
        (RA, S),
        (f"{RA}-random", S),
        (f"{RA}-random", RA),
        (f"{RA}-background", S),
        (f"{RA}-background", RA),
        (f"{RA}-joint", S),
        (f"{RA}-joint", RA),
        (S, SEED1),
        (RA, SEED1),
        (f"{RA}-random", SEED1),
        (f"{RA}-background", SEED1),
        (f"{RA}-joint", SEED1),
    ],
    "Figure 6: another seed, another task, no training, recognized by the standard network": [
        (S, S),
        (SEED1, S),
        (f"{RA}-joint", S),
        (f"{RA}-background", S),
        (f"{RA}-random", S),
    ],
    "Figure S9: optimised on the waveform or on the cochleagram, recognized by the other seed": [
        (S, SEED1),
        (f"{S}:cochleagram", f"{SEED1}:cochleagram"),
    ],
    "An AudioSet network beside the word networks: YAMNet hears their metamers as speech, they hear its metamers as "
    "words": [
        (S, YAMNET),
        (RA, YAMNET),
        (f"{RA}-random", YAMNET),
        (f"{RA}-background", YAMNET),
        (f"{RA}-joint", YAMNET),
        (SEED1, YAMNET),
        (YAMNET, S),
        (YAMNET, RA),
        (YAMNET, SEED1),
    ],
}


def _cells(run: Path) -> tuple[dict, dict, dict]:
    """Each generator's layers in forward order, the transfer cells by (generator, recognizer, layer), and the
    (accepted, validated) count of each (generator, layer), read through :class:`~metamers.runs.rundir.RunDir`."""
    rundir = RunDir(run)
    layers: dict[str, list[str]] = {}
    accepted: dict[tuple[str, str], tuple[int, int]] = {}
    for m in rundir.metamers():  # job order: each generator's layers as the plan listed them
        if m["layer"] not in layers.setdefault(m["model"], []):
            layers[m["model"]].append(m["layer"])
        if m["accepted"] is not None:
            ok, n = accepted.get((m["model"], m["layer"]), (0, 0))
            accepted[(m["model"], m["layer"])] = (ok + int(m["accepted"]), n + 1)
    cells = {(c["generator"], c["recognizer"], c["layer"]): c for c in rundir.transfer() if c["proportion"] is not None}
    return layers, cells, accepted


def _table(rows: list[tuple[str, str]], layers: dict, cells: dict, accepted: dict) -> list[str]:
    width = max((len(layers[g]) for g, _ in rows if g in layers), default=0)  # as wide as its own generators
    head = ["generating network", "recognized by", *(f"stage {i + 1}" for i in range(width)), "natural clips"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for gen, rec in rows:
        if gen not in layers:
            continue
        row = [f"`{gen}`", f"`{rec}`" + (" (own)" if gen == rec else "")]
        natural = None
        for lay in layers[gen]:
            c = cells.get((gen, rec, lay))
            if c is None:
                row.append("-")
                continue
            ok, n = accepted.get((gen, lay), (c["n"], c["n"]))
            note = "" if ok == n else f", {ok}/{n}"
            row.append(f"{c['proportion']:.0%} (±{c['sem'] * 100:.0f}{note}) {lay.replace('net.', '')}")
            natural = c["natural_accuracy"]
        row += ["-"] * (width - len(layers[gen]))
        row.append("-" if natural is None else f"{natural:.0%}")
        out.append("| " + " | ".join(row) + " |")
    return out


def figure(run: Path, path: Path) -> Path:
    """The README's figure: recognition by each word network of the other networks' metamers, stage by stage."""
    from metamers.report.figures import transfer_curves
    from metamers.transfer import TransferCell

    recognizers = (S, RA, SEED1, f"{SEED1}:cochleagram")
    rows = [r for r in RunDir(run).transfer() if r["proportion"] is not None and r["recognizer"] in recognizers]
    cells = [TransferCell(**{**r, "own": bool(r["own"])}) for r in rows]
    cells = [c for c in cells if not c.own and c.generator != YAMNET]  # the word networks' stages only
    cells.sort(key=lambda c: (recognizers.index(c.recognizer), c.generator))
    order = {"conv_1": 0, "pool_1": 0, "conv_3": 1, "fc_intermediate": 2}
    order.update({f"net.{k}": v for k, v in order.items()})
    title = ("Audio metamers recognized as their word by the other word networks (159 labels): dashed = natural "
             "clips, dotted = chance, bars = bootstrap SEM over 14 words")  # fmt: skip
    return transfer_curves(cells, order, path, title=title)


def tables(run: Path, readme: bool = False, others: bool = False) -> str:
    layers, cells, accepted = _cells(run)
    out: list[str] = []
    if readme:
        for title, rows in README_TABLES.items():
            out += [f"**{title}**", "", *_table(rows, layers, cells, accepted), ""]
    else:
        pairs = [p for p in dict.fromkeys((g, r) for g, r, _ in cells) if not (others and p[0] == p[1])]
        out += [*_table(pairs, layers, cells, accepted), ""]
    out += ["**Accepted metamers**", ""]
    width = max((len(v) for v in layers.values()), default=0)
    out += ["| generating network | " + " | ".join(f"stage {i + 1}" for i in range(width)) + " |"]
    out.append("|" + " --- |" * (width + 1))
    for gen, lays in layers.items():
        row = [f"{accepted.get((gen, lay), ('?', '?'))[0]}/{accepted.get((gen, lay), ('?', '?'))[1]} "
               f"{lay.replace('net.', '')}" for lay in lays]  # fmt: skip
        out.append(f"| `{gen}` | " + " | ".join(row + [""] * (width - len(row))) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run directory of plans/audio-transfer.toml (or audio-every-stage)")
    parser.add_argument("--readme", action="store_true", help="the README's four tables instead of every pair")
    parser.add_argument("--others", action="store_true", help="every pair but a network with its own metamers")
    parser.add_argument("--figure", type=Path, help="write the README's figure (PNG) here instead")
    args = parser.parse_args()
    if args.figure:
        print(figure(args.run, args.figure))
    else:
        print(tables(args.run, args.readme, args.others))
