"""metamers against its peers: plenoptic 2.1.1 and a plain reference loop, on pretrained EfficientNet-Lite0 and on
the shipped word network.

Work (``--modality image``): metamers of 8 natural pictures (224x224) at an early, a middle and a late stage, from the
same initial noise, with Adam at the same learning rate for the same number of iterations.  ``--modality audio``: the
same for 8 spoken words (2-second clips of espeak-ng's voice at 20 kHz, through the cochleagram) and
``word-standard`` at ``conv_1``, ``conv_3`` and ``fc_intermediate``, from pink noise, waveforms bounded to [-1, 1];
plenoptic's model is the network truncated at the layer by a forward hook (its ``DeepNetFeatures`` is for
torchvision image networks) and its range penalty allows [-1, 1].

- ``ours``: ``metamers.synthesize`` with its defaults except learning rate and iteration count: one batched
  optimisation of the 8 pictures, the pass truncated at the layer.
- ``plenoptic``: ``plenoptic.Metamer`` as its documentation reproduces Feather et al. (2023): the network wrapped by
  ``po.models.DeepNetFeatures`` (torchvision's feature extractor, truncated at the layer, normalisation inside), default
  loss (MSE) and range penalty, Adam without amsgrad, one picture per object (a batch would couple the pictures through
  one mean loss and one stopping rule).  In float32 like the others (the documentation uses float64, slower still).
- ``reference``: the authors' scripts' shape: one picture at a time, the whole network every step, the layer read by
  a hook, Adam, clamp to [0, 1].

Each contender runs in its own process (peak memory is its own), with two untimed warm-up iterations per stage.
Fidelity: Spearman rho at the generation layer of the final metamers, and the iterations until rho >= 0.95 (from
snapshots every ``--every`` iterations, not timed).

On a GPU (``--device cuda``) ours batches ``--batch`` stimuli (the 8 repeated, each copy from its own noise) while
the others still make the 8 one at a time (their per-stimulus rate does not depend on how many), and the ratios are
of metamer-iterations per second; peak memory is the GPU's.

Run by hand (plenoptic installed after the pinned torch: ``.venv/bin/pip install plenoptic==2.1.1``):
    .venv/bin/python benchmarks/peers.py [--iterations 150]
    .venv/bin/python benchmarks/peers.py --modality audio [--iterations 100]
    .venv/bin/python benchmarks/peers.py --device cuda --batch 128
Writes benchmarks/results/peers.{json,md} (images) or peers_audio.{json,md}, with ``_cuda`` on a GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

MODALITIES = {
    "image": {"stages": {"early": "block_2", "middle": "block_4", "late": "block_7"}, "lr": 0.01, "bounds": (0.0, 1.0)},
    "audio": {"stages": {"early": "conv_1", "middle": "conv_3", "late": "fc_intermediate"}, "lr": 0.002,
              "bounds": (-1.0, 1.0)},
}  # fmt: skip
PICTURES = ["chelsea", "coffee", "rocket", "astronaut", "camera", "clock", "china", "flower"]
WORDS = ["may", "uniform", "today", "lima", "seven", "monday", "hotel", "april"]
MODALITY = "image"
STAGES = MODALITIES[MODALITY]["stages"]
LR = MODALITIES[MODALITY]["lr"]


DEVICE = "cpu"


def _use(modality: str, device: str = "cpu") -> None:
    global MODALITY, STAGES, LR, DEVICE
    MODALITY, STAGES, LR = modality, MODALITIES[modality]["stages"], MODALITIES[modality]["lr"]
    DEVICE = device


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gib() -> float:
    if DEVICE.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _more(x: torch.Tensor, init: torch.Tensor, batch: int, noise) -> tuple[torch.Tensor, torch.Tensor]:
    """The stimuli repeated to ``batch``, each further copy of the 8 from its own noise (seeds 1, 2, ...)."""
    reps = -(-batch // x.shape[0])
    inits = [init] + [noise(k) for k in range(1, reps)]
    return torch.cat([x] * reps)[:batch], torch.cat(inits)[:batch]


def _setup(batch: int = 8):
    zoo, x, init, noise = _stimuli()
    zoo.module.to(DEVICE)
    if batch > x.shape[0]:
        x, init = _more(x, init, batch, noise)
    return zoo, x.to(DEVICE), init.to(DEVICE)


def _stimuli():
    from metamers import pink_noise, white_noise
    from metamers.models import load

    torch.manual_seed(0)
    if MODALITY == "audio":
        from metamers.audio.clips import word_clips

        zoo = load("word-standard")
        zoo.module.requires_grad_(False).eval()
        x = word_clips(WORDS, source="espeak-ng")
        noise = lambda k: pink_noise(tuple(x.shape), rms_level=0.01, seed=k)  # noqa: E731
        return zoo, x, noise(0), noise
    from metamers.stimuli import load_photos

    zoo = load("efficientnet-lite0")
    zoo.module.requires_grad_(False).eval()
    x, _ = load_photos(PICTURES, size=224)
    noise = lambda k: white_noise(tuple(x.shape), seed=k)  # noqa: E731
    return zoo, x, noise(0), noise


def _fidelity(zoo, layer: str, x: torch.Tensor, snapshots: list[tuple[int, torch.Tensor]]) -> dict:
    """Median rho of the final metamers, and iterations until each reaches rho >= 0.95."""
    from metamers import capture, spearman

    target = capture(zoo.module, x, [layer])[layer]
    reached = [None] * x.shape[0]
    final = None
    for it, snap in snapshots:
        rho = spearman(capture(zoo.module, snap, [layer])[layer], target)
        for i, r in enumerate(rho.tolist()):
            if reached[i] is None and r >= 0.95:
                reached[i] = it
        final = rho
    done = sorted(r for r in reached if r is not None)
    return {
        "median_rho": float(final.median()),
        "min_rho": float(final.min()),
        "reached_095": f"{len(done)}/{len(reached)}",
        "median_iters_to_095": done[len(done) // 2] if len(done) * 2 > len(reached) else None,
    }


def run_ours(iterations: int, every: int, batch: int = 8) -> dict:
    from metamers import synthesize

    zoo, x, init = _setup(batch)
    out = {}
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        snaps: list[tuple[int, torch.Tensor]] = []

        def keep(it: int, m: torch.Tensor, snaps=snaps) -> None:
            if it % every == 0:
                snaps.append((it, m.detach().clone()))

        bounds = MODALITIES[MODALITY]["bounds"]
        synthesize(zoo.module, x, layer, iterations=2, lr=LR, init=init, bounds=bounds, progress=False)  # warm-up
        _sync()
        t = time.perf_counter()
        synthesize(zoo.module, x, layer, iterations=iterations, lr=LR, schedule="constant", init=init, callback=keep,
                   bounds=bounds, progress=False)  # fmt: skip
        _sync()
        wall = time.perf_counter() - t
        out[stage] = {"layer": layer, "wall_s": wall, **_fidelity(zoo, layer, x, snaps)}
    return out


def run_plenoptic(iterations: int, every: int) -> dict:
    import plenoptic as po

    zoo, x, init = _setup()
    net, norm = zoo.module.net, zoo.module.preprocess
    kw = {}
    if MODALITY == "audio":
        from plenoptic import regularize

        kw["penalty_function"] = lambda m: regularize.penalize_range(m, allowed_range=(-1.0, 1.0))
    out = {}
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        if MODALITY == "audio":
            model = _Truncated(zoo.module, layer)
        else:
            model = po.models.DeepNetFeatures(net, layer.removeprefix("net."), norm)
        po.remove_grad(model)
        model.eval()
        finals, saved = [], []
        warm = po.Metamer(x[:1], model, **kw)  # warm-up, not timed
        warm.setup(initial_image=init[:1].clone(), optimizer_kwargs={"lr": LR, "amsgrad": False})
        warm.synthesize(max_iter=2, stop_criterion=-1.0)
        _sync()
        t = time.perf_counter()
        for i in range(x.shape[0]):
            met = po.Metamer(x[i : i + 1], model, **kw)
            met.setup(initial_image=init[i : i + 1].clone(), optimizer_kwargs={"lr": LR, "amsgrad": False})
            met.synthesize(max_iter=iterations, store_progress=every, stop_criterion=-1.0,
                           stop_iters_to_check=iterations)  # fmt: skip
            finals.append(met.metamer.detach())
            saved.append(met.saved_metamer.detach())
        _sync()
        wall = time.perf_counter() - t
        # saved_metamer[k] is the metamer after k * every iterations (k = 0 is the initial image)
        stack = torch.stack(saved)  # (stimuli, snapshots, 1, ...)
        snaps = [(k * every, stack[:, k, 0]) for k in range(1, stack.shape[1])]
        if not snaps or snaps[-1][0] != iterations:
            snaps.append((iterations, torch.cat(finals)))
        out[stage] = {"layer": layer, "wall_s": wall, **_fidelity(zoo, layer, x, snaps)}
    return out


class _Stop(Exception):
    pass


class _Truncated(torch.nn.Module):
    """A network up to one layer: its forward stops there (a hook raises once the layer's output exists)."""

    def __init__(self, model: torch.nn.Module, layer: str) -> None:
        super().__init__()
        self.model, self.layer = model, dict(model.named_modules())[layer]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        got = {}

        def hook(m, i, o) -> None:
            got["a"] = o
            raise _Stop

        handle = self.layer.register_forward_hook(hook)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        return got["a"]


def run_reference(iterations: int, every: int) -> dict:
    zoo, x, init = _setup()
    modules = dict(zoo.module.named_modules())
    out = {}
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        grabbed = {}
        handle = modules[layer].register_forward_hook(lambda m, i, o, g=grabbed: g.__setitem__("a", o))
        finals, snaps_per = [], []
        warm = init[:1].clone().requires_grad_(True)  # warm-up, not timed
        for _ in range(2):
            zoo.module(warm)
            grabbed["a"].sum().backward()
        _sync()
        t = time.perf_counter()
        for i in range(x.shape[0]):
            with torch.no_grad():
                zoo.module(x[i : i + 1])
                target = grabbed["a"].clone()
            m = init[i : i + 1].clone().requires_grad_(True)
            opt = torch.optim.Adam([m], lr=LR)
            mine = []
            for it in range(1, iterations + 1):
                opt.zero_grad()
                zoo.module(m)  # the whole network, every step
                loss = (grabbed["a"] - target).pow(2).sum()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    m.clamp_(*MODALITIES[MODALITY]["bounds"])
                if it % every == 0:
                    mine.append((it, m.detach().clone()))
            finals.append(m.detach())
            snaps_per.append(mine)
        _sync()
        wall = time.perf_counter() - t
        handle.remove()
        snaps = [(snaps_per[0][k][0], torch.cat([s[k][1] for s in snaps_per])) for k in range(len(snaps_per[0]))]
        out[stage] = {"layer": layer, "wall_s": wall, **_fidelity(zoo, layer, x, snaps)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--contender", choices=["ours", "plenoptic", "reference"])
    ap.add_argument("--modality", choices=list(MODALITIES), default="image")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch", type=int, default=8, help="stimuli ours optimises at once (the others make 8)")
    args = ap.parse_args()
    _use(args.modality, args.device)
    runs = {"ours": run_ours, "plenoptic": run_plenoptic, "reference": run_reference}
    if args.contender:
        if args.contender == "ours":
            res = run_ours(args.iterations, args.every, args.batch)
        else:
            res = runs[args.contender](args.iterations, args.every)
        res["peak_rss_gib"] = _peak_gib()
        res["stimuli_n"] = args.batch if args.contender == "ours" else 8
        print(json.dumps(res))
        return
    # Timing on a shared virtual machine is noisy: run every contender --rounds times, alternating the order, and
    # keep each one's fastest round per stage (fidelity is the same in every round: the runs are deterministic).
    results: dict[str, dict] = {}
    order = list(runs)
    for k in range(args.rounds):
        for name in order if k % 2 == 0 else order[::-1]:
            cmd = [sys.executable, __file__, "--contender", name, "--iterations", str(args.iterations),
                   "--every", str(args.every), "--modality", args.modality, "--device", args.device,
                   "--batch", str(args.batch)]  # fmt: skip
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
            got = json.loads(done.stdout.splitlines()[-1])
            print(name, f"round {k}", json.dumps(got), flush=True)
            if name not in results:
                results[name] = got
            else:
                for stage in STAGES:
                    if got[stage]["wall_s"] < results[name][stage]["wall_s"]:
                        results[name][stage] = got[stage]
                results[name]["peak_rss_gib"] = max(results[name]["peak_rss_gib"], got["peak_rss_gib"])
    import plenoptic

    stimuli = PICTURES if args.modality == "image" else WORDS
    gpu = args.device.startswith("cuda")
    res = {"machine": machine(), "plenoptic": plenoptic.__version__, "modality": args.modality, "device": args.device,
           "iterations": args.iterations, "lr": LR, "stimuli": stimuli, "results": results}  # fmt: skip
    name = ("peers" if args.modality == "image" else "peers_audio") + ("_cuda" if gpu else "")
    out = Path(__file__).parent / "results" / name
    what = ("EfficientNet-Lite0, 224x224, 8 pictures" if args.modality == "image"
            else "word-standard, 2-second clips through the cochleagram, 8 spoken words")  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    m = res["machine"]
    lines = [
        f"# metamers against plenoptic and a reference loop ({what})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; torch {m['torch']}, "
        f"{m['torch_threads']} threads; plenoptic {plenoptic.__version__}.",
        f"Same initial noise, Adam at lr {LR}, {args.iterations} iterations for every contender; fidelity from "
        f"snapshots every {args.every} iterations; wall time is each contender's best of {args.rounds} rounds.",
        f"Device: {args.device}; ours optimises {results['ours']['stimuli_n']} stimuli at once, the others 8 one at a "
        "time; ratios are of metamer-iterations per second." + (" Peak memory: the GPU's." if gpu else ""),
        "",
        "| stage | contender | wall (s) | metamer-iterations/s | vs plenoptic | vs reference | median rho | "
        "rho>=0.95 | iterations to 0.95 | peak memory (GiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stage in STAGES:
        for name in runs:
            r = results[name][stage]
            speed = _speed(results, name, stage, args.iterations)
            vs_p = speed / _speed(results, "plenoptic", stage, args.iterations)
            vs_r = speed / _speed(results, "reference", stage, args.iterations)
            lines.append(
                f"| {stage} (`{r['layer']}`) | {name} | {r['wall_s']:.1f} | {speed:.1f} | {vs_p:.2f}x | {vs_r:.2f}x | "
                f"{r['median_rho']:.4f} | {r['reached_095']} | {r['median_iters_to_095'] or '-'} | "
                f"{results[name]['peak_rss_gib']:.2f} |"
            )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _speed(results: dict, name: str, stage: str, iterations: int) -> float:
    """Metamer-iterations per second of one contender at one stage."""
    return results[name].get("stimuli_n", 8) * iterations / results[name][stage]["wall_s"]


if __name__ == "__main__":
    main()
