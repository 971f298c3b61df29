"""The cochleagram's gradient: seconds per forward and backward pass, with the two ways of taking the gradient of its
strided anti-aliasing filter.

- ``strided``: the gradient oneDNN gives a strided one-channel convolution (a strided transposed convolution), as
  before;
- ``polyphase``: the filter's ``stride`` phases as the channels of an ordinary transposed convolution, interleaved
  back into time order (``metamers.audio.cochleagram``, now).

Also the same two inside a whole synthesis step of the standard word network (``word-real-standard``, layer
``conv_3``). Batches of 7 two-second clips, as in ``plans/audio-transfer.toml``.

Run by hand on an idle machine:  .venv/bin/python benchmarks/cochleagram_backward.py [--threads 2] [--repeats 5]
Writes benchmarks/results/cochleagram_backward.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

from metamers.audio import cochleagram as coch_module
from metamers.audio.cochleagram import Cochleagram
from metamers.models import load

RESULTS = Path(__file__).parent / "results"


def _strided(x: torch.Tensor, kernel: torch.Tensor, stride: int) -> torch.Tensor:
    return F.conv1d(x, kernel, stride=stride)


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.randn(7, 40000) * 0.05).requires_grad_(True)
    coch = Cochleagram()
    weight = torch.randn(7, 1, 211, 400)
    zoo = load("word-real-standard")
    net = zoo.module
    tap = dict(net.named_modules())[zoo.layer("conv_3")]
    store = {}
    tap.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))

    def coch_step() -> None:
        x.grad = None
        (coch(x) * weight).sum().backward()

    def synthesis_step() -> None:
        x.grad = None
        net(x)
        store["a"].square().mean().backward()

    polyphase = coch_module._StridedFilter.apply
    rows = []
    for way, fn in (("strided", _strided), ("polyphase", polyphase)):
        coch_module._StridedFilter.apply = fn
        try:
            rows.append({
                "way": way,
                "cochleagram_seconds": _median_seconds(coch_step, args.repeats),
                "synthesis_step_seconds": _median_seconds(synthesis_step, args.repeats),
            })  # fmt: skip
        finally:
            coch_module._StridedFilter.apply = polyphase
    out = {"machine": machine(), "batch": 7, "repeats": args.repeats, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cochleagram_backward.json").write_text(json.dumps(out, indent=2))
    m = out["machine"]
    lines = [
        "# The cochleagram's gradient: strided against polyphase",
        "",
        f"`python benchmarks/cochleagram_backward.py --threads {args.threads} --repeats {args.repeats}`, on {m['cpu']} "
        f"({m['cores']} cores, {m['torch_threads']} torch threads, GPU: {m['gpu']}), torch {m['torch']}. Median "
        "seconds of one forward and backward pass of 7 two-second clips.",
        "",
        "| gradient of the anti-aliasing filter | cochleagram | synthesis step, `word-real-standard` at `conv_3` |",
        "| --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['way']} | {r['cochleagram_seconds']:.3f} s | {r['synthesis_step_seconds']:.3f} s |")
    (RESULTS / "cochleagram_backward.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
