"""Training speed of the word networks: seconds per step of 32 cochleagrams, forward, backward and Adam.

Four ways to run the same step, for the standard (Table S2) and reduced-aliasing (Table S3) networks at the shipped
width 0.125 and 159 classes (the real-speech corpus):

- ``norm-first``: the input batch norm applied before ``conv_0``, as a plain ``nn.Sequential`` (how it was computed
  before): the first convolution then computes a full-resolution gradient of its input for the norm's two scalars;
- ``norm-moved``: ``conv_0`` takes the norm's scale and shift past the convolution (``WordNet`` now), so it needs
  only its kernel's gradient;
- ``norm-moved, channels-last``: the same in channels-last memory (what ``metamers train`` runs);
- ``norm-moved, channels-last, bf16``: the same under bfloat16 autocast (not used: measured, not faster here).

Run by hand on an idle machine:  .venv/bin/python benchmarks/word_net_training.py [--threads 2] [--steps 5]
Writes benchmarks/results/word_net_training.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

from metamers.audio.word_nets import WordNet

RESULTS = Path(__file__).parent / "results"


class _NormFirst(torch.nn.Module):
    """``conv_0`` computed as before the norm was moved: the input norm, then the plain convolution and ReLU."""

    def __init__(self, conv_0: torch.nn.Sequential) -> None:
        super().__init__()
        self.conv_0 = conv_0

    def forward(self, x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
        return torch.nn.Sequential.forward(self.conv_0, norm(x))


def step_seconds(arch: str, way: str, steps: int) -> float:
    torch.manual_seed(0)
    model = WordNet(159, arch, 0.125)
    if way == "norm-first":
        model.conv_0 = _NormFirst(model.conv_0)
    x, y = torch.randn(32, 1, 211, 400), torch.randint(0, 159, (32,))
    if "channels-last" in way:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in way):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ways = ["norm-first", "norm-moved", "norm-moved, channels-last", "norm-moved, channels-last, bf16"]
    rows = []
    for arch in ("standard", "reduced_aliasing"):
        for way in ways:
            s = step_seconds(arch, way, args.steps)
            rows.append({"architecture": arch, "way": way, "s_per_step": s, "min_per_epoch_16000": s * 500 / 60})
            print(f"{arch:17s} {way:34s} {s:.3f} s/step  {s * 500 / 60:5.1f} min per epoch of 16000", flush=True)
    out = {"machine": machine(), "threads": args.threads, "steps": args.steps, "batch": 32, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "word_net_training.json").write_text(json.dumps(out, indent=2))
    md = [
        f"# Word-network training step ({args.threads} threads, batch 32, {args.steps} timed steps)",
        "",
        f"Machine: {out['machine']['cpu']}, {out['machine']['cores']} cores, torch {out['machine']['torch']}.",
        "Command: `.venv/bin/python benchmarks/word_net_training.py"
        + (f" --threads {args.threads}" if args.threads != 2 else "")
        + (f" --steps {args.steps}" if args.steps != 5 else "")
        + "`",
        "",
        "| architecture | way | s per step | min per epoch of 16000 clips |",
        "| --- | --- | --- | --- |",
    ]
    md += [
        f"| {r['architecture']} | {r['way']} | {r['s_per_step']:.3f} | {r['min_per_epoch_16000']:.1f} |" for r in rows
    ]
    (RESULTS / "word_net_training.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
