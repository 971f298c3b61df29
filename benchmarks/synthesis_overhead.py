"""Cost of the synthesis loop over the hardware's floor, and of truncation, on pretrained EfficientNet-Lite0.

For an early, a middle and a late stage, on a batch of natural photos at 224x224, it times:
- ``metamers.synthesize`` per iteration (default settings, progress off), after a warm-up;
- the floor: a bare forward to that layer written by hand (no hooks, no modes), the squared-error loss, and the
  backward pass to the input, on the same batch, on the model as it is;
- the same floor with the model's batch norms folded and its weights channels-last (the arithmetic ours does by
  default, see ``metamers._fastpath``), so that the loop's own overhead shows apart from the fast paths' gain;
- the full model's forward+backward on the same batch, to show what truncation saves.

Run by hand:  .venv/bin/python benchmarks/synthesis_overhead.py [--batch 8] [--iterations 30]
It writes benchmarks/results/synthesis_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

from metamers import synthesize
from metamers._fastpath import channels_last, folded_batchnorm
from metamers.models import load
from metamers.stimuli import PHOTOS, load_photos
from metamers.synthesis import auto_chunk_size

STAGES = {"early": "block_2", "middle": "block_4", "late": "block_7"}


def bare_forward(zoo, block: int, x: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite to the end of ``_blocks[block]``, by hand."""
    net = zoo.module.net
    h = zoo.module.preprocess(x)
    h = net._swish(net._bn0(net._conv_stem(h)))
    for b in net._blocks[: block + 1]:
        h = b(h)
    return h


def floor_pass(forward, x: torch.Tensor, target: torch.Tensor, chunk: int) -> None:
    """One iteration's bare passes: ``forward``, the squared error, the backward pass to the input, ``chunk`` items
    at a time (the same chunks as ours, for the same cache behaviour)."""
    for a in range(0, x.shape[0], chunk):
        xi = x[a : a + chunk].clone().requires_grad_(True)
        loss = (forward(xi) - target[a : a + chunk]).pow(2).flatten(1).sum(1).sum()
        torch.autograd.grad(loss, xi)


def time_loop(fn, n: int) -> float:
    """Seconds per call of ``fn`` over ``n`` back-to-back calls (after one warm-up call)."""
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of early,middle,late")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each is reported")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "synthesis_overhead"))
    args = ap.parse_args()

    zoo = load("efficientnet-lite0")
    zoo.module.requires_grad_(False)
    names = (list(PHOTOS) * args.batch)[: args.batch]
    x, _ = load_photos(names)
    rows = []

    def full_step():
        xi = x.clone().requires_grad_(True)
        out = zoo.module(xi)
        torch.autograd.grad(out.pow(2).sum(), xi)

    chunk = auto_chunk_size("cpu", args.batch)
    t_full = min(time_loop(full_step, args.iterations) for _ in range(args.repeats))
    for stage in args.stages.split(","):
        name = STAGES[stage]
        layer = zoo.stages[name]
        block = int(layer.rsplit(".", 1)[1])
        with torch.no_grad():
            target = bare_forward(zoo, block, x)

        forward = partial(bare_forward, zoo, block)
        n = args.iterations
        synthesize(zoo.module, x, layer, iterations=3, progress=False)  # warm-up
        floors, fast_floors, ours = [], [], []
        for _ in range(args.repeats):  # alternate, so that all three see the same machine state
            floors.append(time_loop(partial(floor_pass, forward, x, target, chunk), n))
            with channels_last(zoo.module), folded_batchnorm(zoo.module, forward, x[:1]):
                xl = x.contiguous(memory_format=torch.channels_last)
                fast_floors.append(time_loop(partial(floor_pass, forward, xl, target, chunk), n))
            ours.append(synthesize(zoo.module, x, layer, iterations=n, progress=False).elapsed_s / n)
        t_floor, t_fast, t_ours = min(floors), min(fast_floors), min(ours)
        rows.append(
            {
                "stage": stage,
                "layer": layer,
                "batch": args.batch,
                "ours_s_per_iter": t_ours,
                "floor_s_per_iter": t_floor,
                "ours_over_floor": t_ours / t_floor,
                "fast_floor_s_per_iter": t_fast,
                "ours_over_fast_floor": t_ours / t_fast,
                "full_fwd_bwd_s": t_full,
                "ours_over_full": t_ours / t_full,
                "metamer_iters_per_s": args.batch / t_ours,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    result = {"machine": machine(), "settings": vars(args), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    lines = [
        "# Synthesis loop against its floor (EfficientNet-Lite0, 224x224)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; "
        f"torch {m['torch']} with {m['torch_threads']} threads; Python {m['python']}.",
        f"Batch {args.batch} photos; {args.iterations} iterations timed back to back, best of {args.repeats} "
        "alternating rounds; default settings (Adam, squared error, check every 100 iterations).",
        "",
        "| stage | layer | ours s/iter | floor s/iter | ours / floor | floor, same arithmetic as ours | "
        "ours / that floor | ours / full fwd+bwd | metamer-iterations/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | `{r['layer']}` | {r['ours_s_per_iter']:.3f} | {r['floor_s_per_iter']:.3f} | "
            f"{r['ours_over_floor']:.2f} | {r['fast_floor_s_per_iter']:.3f} | {r['ours_over_fast_floor']:.2f} | "
            f"{r['ours_over_full']:.2f} | {r['metamer_iters_per_s']:.1f} |"
        )
    lines += [
        "",
        f"Full model forward+backward on the same batch: {t_full:.3f} s.",
        f"Floor: a hand-written forward to the layer (no hooks), the same loss, and the backward pass to the input, "
        f"{chunk} items at a time like ours (the default on a CPU; see `auto_chunk_size`), on the model as it is.",
        "Floor, same arithmetic: the same, with the batch norms folded into their convolutions and channels-last "
        "weights and input, which is what ours runs by default (`fold_batchnorm`, `memory_format`).",
        "Ours / full: the cost of an iteration at that layer as a fraction of a full forward+backward pass of the "
        "whole batch at once.",
        "Ours adds the Adam step, the bound clamp, the hooks that stop the pass, and the loss record.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
