"""How far metamers move when the arithmetic changes as it does between machines.

Two machines run the same code with different float summation orders: another thread count, another vector
instruction set (AVX-512 here, AVX2 on many other CPUs), another BLAS or convolution kernel. This benchmark runs the
same syntheses in fresh processes under such changes on one machine and measures how far the results move from the
default run: the largest pixel (or sample) difference, the share of 8-bit pixels that differ, and the change of
Spearman rho at the generation layer and of the network's label.

    default      this machine as it is
    1 thread     torch.set_num_threads(1) (another reduction order in every convolution)
    AVX2         ONEDNN_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2 (the kernels of a CPU without AVX-512)

Run by hand:  .venv/bin/python benchmarks/across_machines.py [--iterations 300]
It writes benchmarks/results/across_machines.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

PICTURES = ["chelsea", "coffee"]
IMAGE_STAGES = ["block_2", "block_4", "block_7"]
WORDS = ["may", "uniform"]
AUDIO_STAGES = ["conv_1", "fc_intermediate"]
VARIANTS = {
    "default": {},
    "1 thread": {"METAMERS_BENCH_THREADS": "1"},
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def one(iterations: int, out: Path) -> None:
    """Every synthesis of the benchmark in this process; metamers, rho and labels to ``out``."""
    import torch
    from safetensors.torch import save_file

    from metamers import SynthesisSettings, synthesize
    from metamers.audio.clips import word_clips
    from metamers.models import load
    from metamers.stimuli import load_photos

    if os.environ.get("METAMERS_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["METAMERS_BENCH_THREADS"]))
    tensors, labels = {}, {}
    jobs = [("efficientnet-lite0", s, load_photos(PICTURES, size=224)[0], 0.02, "feather2019") for s in IMAGE_STAGES]
    clips = word_clips(WORDS, source="recorded")
    jobs += [("word-standard", s, clips, 0.002, "feather2019_audio") for s in AUDIO_STAGES]
    for name, stage, x, lr, preset in jobs:
        zoo = load(name)
        settings = SynthesisSettings.preset(preset, iterations=iterations, lr=lr)
        r = synthesize(zoo.module, x, zoo.stages[stage], settings, progress=False)
        key = f"{name}/{stage}"
        tensors[key] = r.metamers
        tensors[key + "/rho"] = r.layer_rho
        with torch.no_grad():
            labels[key] = zoo.module(r.metamers).argmax(1).tolist()
    save_file(tensors, str(out))
    out.with_suffix(".json").write_text(json.dumps({"labels": labels, "threads": torch.get_num_threads()}))


def compare(base: dict, other: dict) -> dict:
    """Per synthesis: how far ``other`` moved from ``base``."""
    rows = {}
    for key in base["labels"]:
        a, b = base["tensors"][key], other["tensors"][key]
        diff = (a - b).abs()
        quantum = 255 if key.startswith("efficientnet") else 32767
        rows[key] = {
            "max_abs_diff": float(diff.max()),
            "share_quantized_differ": float(((a * quantum).round() != (b * quantum).round()).float().mean()),
            "max_rho_change": float((base["tensors"][key + "/rho"] - other["tensors"][key + "/rho"]).abs().max()),
            "rho_default": [round(float(v), 4) for v in base["tensors"][key + "/rho"]],
            "labels_same": base["labels"][key] == other["labels"][key],
        }
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args.iterations, args.one)
        return
    from safetensors.torch import load_file

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, env in VARIANTS.items():
            out = Path(tmp) / f"{variant.replace(' ', '_')}.safetensors"
            cmd = [sys.executable, __file__, "--iterations", str(args.iterations), "--one", str(out)]
            subprocess.run(cmd, check=True, env={**os.environ, **env})
            meta = json.loads(out.with_suffix(".json").read_text())
            results[variant] = {"tensors": load_file(str(out)), "labels": meta["labels"], "threads": meta["threads"]}
            print(f"{variant}: done ({meta['threads']} threads)", flush=True)
    base = results["default"]
    table = {v: compare(base, r) for v, r in results.items() if v != "default"}
    here = Path(__file__).parent / "results"
    here.mkdir(exist_ok=True)
    report = {
        "machine": machine(),
        "iterations": args.iterations,
        "pictures": PICTURES,
        "words": WORDS,
        "vs_default": table,
    }
    (here / "across_machines.json").write_text(json.dumps(report, indent=2))
    m = report["machine"]
    lines = [
        "# Across machines: how far results move when the arithmetic changes",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU {m['gpu']}, torch {m['torch']}, "
        f"python {m['python']}.",
        f"Settings: {args.iterations} iterations from the same seed; images {', '.join(PICTURES)} (Adam lr 0.02), "
        f"words {', '.join(WORDS)} (Adam lr 0.002). Command: `python benchmarks/across_machines.py "
        f"--iterations {args.iterations}`.",
        "",
        "| variant vs default | synthesis | largest difference | 8-/16-bit values that differ | largest rho change "
        "| rho (default) | same labels |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, rows in table.items():
        for key, r in rows.items():
            lines.append(
                f"| {variant} | {key} | {r['max_abs_diff']:.2e} | {100 * r['share_quantized_differ']:.2f}% "
                f"| {r['max_rho_change']:.4f} | {', '.join(f'{v:.3f}' for v in r['rho_default'])} | "
                f"{'yes' if r['labels_same'] else 'no'} |"
            )
    (here / "across_machines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
