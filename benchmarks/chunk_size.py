"""Items per forward/backward pass on a CPU: each chunk size in fresh processes, rounds alternating.

The passes of one batch run a few items at a time on a CPU (``auto_chunk_size``).  In-process alternation flattered
some sizes (allocator and cache state carry over between configurations), so each measurement here is a new process:
EfficientNet-Lite0, 8 photos at 224x224, the default fast paths, 40 iterations per stage after a 3-iteration
warm-up; the median over ``--rounds`` rounds is reported.

Run by hand:  .venv/bin/python benchmarks/chunk_size.py [--rounds 3]
It writes benchmarks/results/chunk_size.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

STAGES = {"early": "block_2", "middle": "block_4", "late": "block_7"}
PICTURES = ["chelsea", "coffee", "rocket", "astronaut", "camera", "clock", "china", "flower"]


def one(chunk: int, iterations: int) -> dict:
    from metamers import synthesize, white_noise
    from metamers.models import load
    from metamers.stimuli import load_photos

    zoo = load("efficientnet-lite0")
    x, _ = load_photos(PICTURES, size=224)
    init = white_noise(tuple(x.shape), seed=0)
    out = {}
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        synthesize(zoo.module, x, layer, iterations=3, lr=0.01, init=init, progress=False, chunk_size=chunk)
        r = synthesize(zoo.module, x, layer, iterations=iterations, lr=0.01, init=init, progress=False,
                       chunk_size=chunk)  # fmt: skip
        out[stage] = r.elapsed_s / iterations / x.shape[0] * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--chunks", default="1,2,4,8")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.iterations)))
        return
    chunks = [int(c) for c in args.chunks.split(",")]
    runs: dict[int, list[dict]] = {c: [] for c in chunks}
    for k in range(args.rounds):
        for c in chunks if k % 2 == 0 else chunks[::-1]:
            cmd = [sys.executable, __file__, "--one", str(c), "--iterations", str(args.iterations)]
            got = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
            runs[c].append(got)
            print(c, json.dumps(got), flush=True)
    med = {c: {s: statistics.median(r[s] for r in runs[c]) for s in STAGES} for c in chunks}
    res = {"machine": machine(), "settings": vars(args), "runs": runs, "median_ms_per_item_iteration": med}
    out = Path(__file__).parent / "results" / "chunk_size"
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    m = res["machine"]
    lines = [
        "# Items per pass on a CPU (EfficientNet-Lite0, 224x224, 8 photos, default fast paths)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; torch {m['torch']}, {m['torch_threads']} threads.",
        f"Each chunk size in a fresh process, {args.rounds} alternating rounds of {args.iterations} iterations; "
        "median milliseconds per item-iteration (and the spread over rounds).",
        "",
        "| items per pass | " + " | ".join(STAGES) + " |",
        "| --- |" + " --- |" * len(STAGES),
    ]
    for c in chunks:
        cells = [f"{med[c][s]:.1f} ({min(r[s] for r in runs[c]):.1f}-{max(r[s] for r in runs[c]):.1f})" for s in STAGES]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
