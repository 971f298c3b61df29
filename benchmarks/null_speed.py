"""Null distributions: rank-Gram in tiles against a plain loop over scipy.stats.spearmanr.

Layer: EfficientNet-Lite0 ``net._blocks.1._swish@0`` (96 x 112 x 112 = 1,204,224 features), on augmented views of the
scikit-image pictures.  Each contender runs in its own process so that its peak memory (max RSS) is its own:

- ``ours``: activations in batches, each row ranked and standardized once (float32), then every pair across sources
  by tiles of the Gram matrix (:func:`metamers.nulls.compute_nulls`, RAM budget 2 GiB);
- ``scipy``: the same activations held in RAM, then ``scipy.stats.spearmanr`` pair by pair (timed on a sample).

Run by hand:  .venv/bin/python benchmarks/null_speed.py [--stimuli 400] [--device cuda]
Writes benchmarks/results/null_speed.{json,md} (``null_speed_cuda`` on a GPU, where ranking and tiles run there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

LAYER = "net._blocks.1._swish@0"
DEVICE = "cpu"


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def _batches(n: int, seed: int = 0):
    from metamers.stimuli import NULL_IMAGES, augmented_batches, full_images

    images = full_images(NULL_IMAGES)
    per = -(-n // len(images))
    produced = 0
    for x, src in augmented_batches(images, per, 224, seed=seed, batch_size=16):
        take = min(x.shape[0], n - produced)
        if take <= 0:
            return
        produced += take
        yield x[:take], src[:take]


def run_ours(n: int) -> dict:
    from metamers.models import load
    from metamers.nulls import compute_nulls

    zoo = load("efficientnet-lite0")
    zoo.module.to(DEVICE)
    t = time.perf_counter()
    rho = compute_nulls(zoo.module, [LAYER], _batches(n), n_pairs=None, total=n, max_bytes=2 * 2**30)[LAYER]
    _sync()
    wall = time.perf_counter() - t
    return {"pairs": int(rho.numel()), "wall_s": wall}


def run_ours_parts(n: int) -> dict:
    """The same, timed in parts: activations, ranking, Gram tiles."""
    from metamers.models import load
    from metamers.nulls import null_rho, standardized_ranks
    from metamers.validation import activations

    zoo = load("efficientnet-lite0")
    zoo.module.to(DEVICE)
    xs, srcs = zip(*_batches(n), strict=True)
    x, src = torch.cat(xs), torch.cat(srcs)
    t0 = time.perf_counter()
    acts = activations(zoo.module, x, [LAYER], batch_size=16)[LAYER]
    _sync()
    t1 = time.perf_counter()
    z = torch.cat([standardized_ranks(acts[i : i + 32].to(DEVICE)) for i in range(0, n, 32)])
    _sync()
    t2 = time.perf_counter()
    rho = null_rho(z, groups=src, max_bytes=2 * 2**30, device=DEVICE)
    _sync()
    t3 = time.perf_counter()
    return {"features": acts.shape[1], "pairs": int(rho.numel()), "activations_s": t1 - t0, "rank_s": t2 - t1,
            "gram_s": t3 - t2}  # fmt: skip


def run_scipy(n: int, sample: int) -> dict:
    from scipy.stats import spearmanr

    from metamers.models import load
    from metamers.validation import activations

    zoo = load("efficientnet-lite0")
    xs, srcs = zip(*_batches(n), strict=True)
    x, src = torch.cat(xs), torch.cat(srcs)
    acts = activations(zoo.module, x, [LAYER], batch_size=16)[LAYER].numpy()
    g = torch.Generator().manual_seed(0)
    pairs = []
    while len(pairs) < sample:
        i, j = torch.randint(0, n, (2,), generator=g).tolist()
        if src[i] != src[j]:
            pairs.append((i, j))
    t = time.perf_counter()
    for i, j in pairs:
        spearmanr(acts[i], acts[j])
    per_pair = (time.perf_counter() - t) / sample
    return {"pairs_timed": sample, "s_per_pair": per_pair}


def child(args: list[str]) -> dict:
    """Run one contender in a fresh process, so that its peak RSS is its own."""
    out = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stimuli", type=int, default=400)
    ap.add_argument("--scipy-pairs", type=int, default=30)
    ap.add_argument("--contender", choices=["ours", "parts", "scipy"])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (ours only; scipy runs on the CPU)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(os.cpu_count() or 1)
    runs = {"ours": lambda: run_ours(args.stimuli), "parts": lambda: run_ours_parts(args.stimuli),
            "scipy": lambda: run_scipy(args.stimuli, args.scipy_pairs)}  # fmt: skip
    if args.contender:
        print(json.dumps({**runs[args.contender](), "peak_rss_gib": _peak()}))
        return

    ours = child(["--contender", "ours", "--stimuli", str(args.stimuli), "--device", args.device])
    parts = child(["--contender", "parts", "--stimuli", str(args.stimuli), "--device", args.device])
    sp = child(["--contender", "scipy", "--stimuli", str(args.stimuli), "--scipy-pairs", str(args.scipy_pairs)])
    ours_rss, sp_rss = ours["peak_rss_gib"], sp["peak_rss_gib"]
    n, f, pairs = args.stimuli, parts["features"], parts["pairs"]
    null_s = parts["rank_s"] + parts["gram_s"]
    # a million pairs needs ~1415 stimuli: ranking grows with N, the Gram product with N^2
    n_m = 1415
    million_s = parts["rank_s"] * n_m / n + parts["gram_s"] * (n_m / n) ** 2
    res = {
        "machine": machine(),
        "layer": LAYER,
        "features": f,
        "stimuli": n,
        "ours": {**parts, "pairs_per_s": pairs / null_s, "end_to_end_wall_s": ours["wall_s"], "peak_rss_gib": ours_rss},
        "scipy": {**sp, "pairs_per_s": 1 / sp["s_per_pair"], "peak_rss_gib": sp_rss},
        "million_pairs_estimate_s": {"ours": million_s, "scipy": 1_000_000 * sp["s_per_pair"]},
    }
    out = Path(__file__).parent / "results" / ("null_speed" + ("_cuda" if args.device.startswith("cuda") else ""))
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    m = res["machine"]
    o, s = res["ours"], res["scipy"]
    lines = [
        "# Null distribution: rank-Gram in tiles against a scipy.stats.spearmanr loop",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; torch {m['torch']}, "
        f"{m['torch_threads']} threads.",
        f"Layer `{LAYER}` of EfficientNet-Lite0: {f:,} features; {n} augmented views of the scikit-image pictures; "
        f"all {pairs:,} pairs across sources.",
        "",
        "| contender | pairs/s (null only) | peak RSS (GiB) | 1,000,000 pairs |",
        "| --- | --- | --- | --- |",
        f"| rank-Gram (ours) | {o['pairs_per_s']:,.0f} | {o['peak_rss_gib']:.1f} | "
        f"{million_s / 60:.1f} min (estimate) |",
        f"| scipy loop | {s['pairs_per_s']:.2f} | {s['peak_rss_gib']:.1f} | "
        f"{res['million_pairs_estimate_s']['scipy'] / 3600:.0f} h (estimate) |",
        "",
        f"Ours, in parts: activations {o['activations_s']:.1f} s (the same for both contenders, not counted above), "
        f"ranking {o['rank_s']:.1f} s, Gram tiles {o['gram_s']:.1f} s; end to end {o['end_to_end_wall_s']:.1f} s. "
        f"Speed-up over scipy: {o['pairs_per_s'] / s['pairs_per_s']:,.0f}x.",
        f"scipy timed on {s['pairs_timed']} random pairs. The million-pair estimate for ours scales ranking with the "
        "number of stimuli (1415 give a million pairs) and the Gram product with its square.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
