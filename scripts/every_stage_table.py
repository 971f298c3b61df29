"""Which metamers of every stage pass the paper's rule, as a Markdown table: one row per generating network, one
column per stage in forward order.

Each cell is ``accepted/validated``, then in brackets the median rho at the generation layer against the layer's null
maximum, and the median iterations the metamers ran (each stops on its own; at the plan's cap otherwise).

    .venv/bin/python scripts/every_stage_table.py runs/audio-every-stage
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from metamers.models import load
from metamers.runs.rundir import RunDir


def table(run: Path) -> str:
    by: dict[str, dict[str, list[dict]]] = {}
    for m in RunDir(run).metamers():  # job order: each model's stages as the plan's "stages" lists them
        if m["accepted"] is None:
            continue
        by.setdefault(m["model"], {}).setdefault(m["stage"], []).append(m)
    if not by:
        sys.exit(f"{run} has no validated metamers yet: run the plan first (`metamers run PLAN --out {run}`).")
    # columns are the models' stage lists (`metamers layers` order), so a model that skips a stage leaves it blank
    full = {model: list(load(model).stages) for model in by}
    width = max(len(f) for f in full.values())
    heads = [" / ".join(dict.fromkeys(f[i] for f in full.values() if len(f) > i)) for i in range(width)]
    out = [
        "| generating network | " + " | ".join(f"`{h}`" for h in heads) + " |",
        "| --- | " + " | ".join("---" for _ in range(width)) + " |",
    ]
    for model, stages in by.items():
        cells = ["" for _ in range(width)]
        for stage, ms in stages.items():
            ok = sum(bool(m["accepted"]) for m in ms)
            rho = statistics.median(m["rho_layer"] for m in ms)
            its = statistics.median(m["iterations"] for m in ms)
            cells[full[model].index(stage)] = f"{ok}/{len(ms)} ({rho:.4f} vs {ms[0]['null_max']:.4f}; {its:.0f})"
        out.append(f"| `{model}` | " + " | ".join(cells) + " |")
    total = sum(len(ms) for stages in by.values() for ms in stages.values())
    ok = sum(bool(m["accepted"]) for stages in by.values() for ms in stages.values() for m in ms)
    out += ["", f"{ok} of {total} metamers pass (same label, rho above the null maximum)."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/every_stage_table.py RUN_DIRECTORY")
    print(table(Path(sys.argv[1])), end="")
