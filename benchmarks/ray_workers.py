"""The same plan on a local Ray cluster of 1 and of 2 workers (one CPU each): wall time of the synthesis and its ratio.

Work: metamers of 4 photos at two stages of EfficientNet-Lite0 (``block_2``, ``block_4``), one photo per job (8 jobs),
200 Adam iterations each, then validation against a small null.  Each worker runs torch on one thread (a Ray task
takes one CPU).  The synthesis time is from the first job's start to the last job's end in the run's log; the total
includes starting Ray, validation and the report.

Run by hand:  .venv/bin/python benchmarks/ray_workers.py [--iterations 200]
Writes benchmarks/results/ray_workers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

PLAN = """
name = "ray-benchmark"
batch = 1
[stimuli]
images = ["chelsea", "coffee", "rocket", "camera"]
[synthesis.image]
iterations = {iterations}
lr = 0.02
checkpoint_every = 100
[validation]
pairs = 1000
[[model]]
name = "efficientnet-lite0"
layers = ["block_2", "block_4"]
"""


def _synthesis_seconds(log: str) -> float:
    stamps = [
        datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
        for line in log.splitlines()
        if " start synthesize:" in line or " done synthesize:" in line
    ]
    return (max(stamps) - min(stamps)).total_seconds()


def main() -> None:
    from metamers.runs.catalog import Catalog
    from metamers.runs.run import run_plan

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.toml"
        plan.write_text(PLAN.format(iterations=args.iterations))
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            t = time.perf_counter()
            summary = run_plan(plan, out, progress=False, executor="ray", workers=workers)
            total = time.perf_counter() - t
            jobs = Catalog(out).query("SELECT seconds FROM jobs WHERE step='synthesize'")
            rows.append(
                {
                    "workers": workers,
                    "jobs": summary["jobs"]["done"],
                    "synthesis_s": _synthesis_seconds((out / "run.log").read_text()),
                    "job_s_sum": round(sum(j["seconds"] for j in jobs), 1),
                    "total_s": round(total, 1),
                    "accepted": summary["accepted"],
                }
            )
            print(rows[-1], flush=True)
    speedup = rows[0]["synthesis_s"] / rows[1]["synthesis_s"]
    result = {"machine": machine(), "iterations": args.iterations, "rows": rows, "speedup_2_over_1": speedup}
    here = Path(__file__).parent / "results"
    here.mkdir(exist_ok=True)
    (here / "ray_workers.json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    lines = [
        "# The same plan on 1 and 2 local Ray workers",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU {m['gpu']}; torch {m['torch']}, "
        f"Python {m['python']}. Plan: 4 photos x 2 stages of EfficientNet-Lite0, one photo per job (8 jobs), "
        f"{args.iterations} iterations each; one CPU and one torch thread per task.",
        "",
        "| workers | jobs | synthesis wall time (s) | sum of job times (s) | whole run (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['workers']} | {r['jobs']} | {r['synthesis_s']:.0f} | {r['job_s_sum']:.0f} | {r['total_s']:.0f} |"
        for r in rows
    ]
    lines += ["", f"Speed-up of the synthesis with 2 workers over 1: {speedup:.2f}x.", ""]
    (here / "ray_workers.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
