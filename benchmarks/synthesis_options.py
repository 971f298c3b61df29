"""What each speed option of ``metamers.synthesize`` buys, one at a time, and what lower precision costs in fidelity.

Work: metamers of 8 natural pictures (224x224) at an early, a middle and a late stage of pretrained
EfficientNet-Lite0, from the same initial noise, Adam at lr 0.01.

Speed (seconds per iteration of the whole batch, best of ``--repeats`` alternating rounds of ``--iterations``):
- ``baseline``: batch-norm folding off, contiguous memory, float32;
- ``+ channels-last``: the model's weights and the metamers in NHWC memory;
- ``+ batch-norm folding``: the default (``metamers.synthesize`` as shipped);
- chunk sizes: the default with 1, 2, 4 and 8 items per forward/backward pass (the default is 2 on a CPU, the whole
  batch on a GPU);
- ``bfloat16`` (and ``float16`` on a GPU): the default with the forward pass under autocast;
- ``torch.compile``: the bare truncated pass (hand-written, folded, channels-last) compiled by inductor, timed
  after its compilation (which is reported apart); not an option of ``synthesize``, measured to decide whether to
  make it one.

Fidelity (``--fidelity-iterations``, default 150): median Spearman rho at the generation layer of the final metamers,
for float32 and each lower precision, from the same start.

Run by hand:  .venv/bin/python benchmarks/synthesis_options.py [--device cuda] [--no-compile]
It writes benchmarks/results/synthesis_options.{json,md} (``synthesis_options_cuda`` on a GPU).
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
from synthesis_overhead import bare_forward, floor_pass

from metamers import synthesize, white_noise
from metamers._fastpath import channels_last, folded_batchnorm
from metamers.models import load
from metamers.stimuli import load_photos
from metamers.synthesis import auto_chunk_size

STAGES = {"early": "block_2", "middle": "block_4", "late": "block_7"}
PICTURES = ["chelsea", "coffee", "rocket", "astronaut", "camera", "clock", "china", "flower"]
LR = 0.01


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fidelity-iterations", type=int, default=150)
    ap.add_argument("--batch", type=int, default=8, help="pictures (the 8 photos repeated as needed)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (minutes on a CPU)")
    args = ap.parse_args()
    dev = args.device
    gpu = dev.startswith("cuda")

    zoo = load("efficientnet-lite0")
    zoo.module.requires_grad_(False).eval().to(dev)
    x, _ = load_photos((PICTURES * args.batch)[: args.batch], size=224)
    x = x.to(dev)
    init = white_noise(tuple(x.shape), seed=0).to(dev)
    n = args.batch
    default_chunk = auto_chunk_size(dev, n)
    precisions = ["bfloat16", "float16"] if gpu else ["bfloat16"]

    options: dict[str, dict] = {
        "baseline (no folding, contiguous, float32)": {"fold_batchnorm": False, "memory_format": "contiguous"},
        "+ channels-last": {"fold_batchnorm": False},
        "+ batch-norm folding (the default)": {},
    }
    for c in sorted({1, 2, 4, 8, n}):
        if c <= n and c != default_chunk:
            options[f"default, {c} per pass"] = {"chunk_size": c}
    for p in precisions:
        options[f"default, {p}"] = {"precision": p}

    rows, fidelity = [], []
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        block = int(layer.rsplit(".", 1)[1])

        def run(kw: dict, iterations: int, layer: str = layer):
            return synthesize(zoo.module, x, layer, iterations=iterations, lr=LR, init=init, progress=False,
                              schedule="constant", **kw)  # fmt: skip

        for kw in options.values():  # warm-up
            run(kw, 2)
        best = {k: float("inf") for k in options}
        for r in range(args.repeats):
            for label in options if r % 2 == 0 else list(options)[::-1]:
                _sync(dev)
                res = run(options[label], args.iterations)
                best[label] = min(best[label], res.elapsed_s / args.iterations)
        base = best[next(iter(options))]
        for label, s in best.items():
            rows.append({"stage": stage, "layer": layer, "option": label, "s_per_iter": s,
                         "metamer_iters_per_s": n / s, "vs_baseline": base / s})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)

        if not args.no_compile:
            rows.append(_compiled(zoo, block, x, layer, stage, dev, default_chunk, args, base))
            print(json.dumps(rows[-1]), flush=True)

        for p in ["float32", *precisions]:
            res = run({"precision": p}, args.fidelity_iterations)
            fidelity.append({"stage": stage, "layer": layer, "precision": p,
                             "median_rho": float(res.layer_rho.median()), "min_rho": float(res.layer_rho.min()),
                             "median_loss": float(res.final_loss.median())})  # fmt: skip
            print(json.dumps(fidelity[-1]), flush=True)

    result = {"machine": machine(), "settings": vars(args), "rows": rows, "fidelity": fidelity}
    out = Path(__file__).parent / "results" / ("synthesis_options" + ("_cuda" if gpu else ""))
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    lines = [
        f"# What each speed option buys (EfficientNet-Lite0, 224x224, {n} pictures, {dev})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; torch {m['torch']}, "
        f"{m['torch_threads']} threads.",
        f"Adam at lr {LR}; {args.iterations} iterations timed, best of {args.repeats} alternating rounds. "
        f"Default chunk on this device: {default_chunk} per pass.",
        "",
        "| stage | option | s/iteration | metamer-iterations/s | vs baseline |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['stage']} (`{r['layer']}`) | {r['option']} | {r['s_per_iter']:.4f} | "
                     f"{r['metamer_iters_per_s']:.1f} | {r['vs_baseline']:.2f}x |")  # fmt: skip
    lines += [
        "",
        f"Fidelity after {args.fidelity_iterations} iterations from the same start (default options otherwise):",
        "",
        "| stage | precision | median rho at the layer | lowest rho | median loss |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in fidelity:
        lines.append(f"| {f['stage']} | {f['precision']} | {f['median_rho']:.4f} | {f['min_rho']:.4f} | "
                     f"{f['median_loss']:.4g} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _compiled(zoo, block: int, x: torch.Tensor, layer: str, stage: str, dev: str, chunk: int, args, base: float):
    """The bare truncated pass (folded, channels-last) compiled by inductor: compile time and seconds per iteration."""
    forward = partial(bare_forward, zoo, block)
    with channels_last(zoo.module), folded_batchnorm(zoo.module, forward, x[:1]):
        xl = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            target = forward(xl)
        compiled = torch.compile(forward)

        def step() -> None:
            floor_pass(compiled, xl, target, chunk)
            _sync(dev)

        t = time.perf_counter()
        step()
        compile_s = time.perf_counter() - t
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(args.iterations):
                step()
            best = min(best, (time.perf_counter() - t) / args.iterations)
    return {"stage": stage, "layer": layer, "option": f"torch.compile, bare pass (compiling took {compile_s:.0f} s)",
            "s_per_iter": best, "metamer_iters_per_s": x.shape[0] / best, "vs_baseline": base / best}  # fmt: skip


if __name__ == "__main__":
    main()
