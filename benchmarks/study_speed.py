"""A study to fidelity: accepted metamers per CPU-hour, ours against plenoptic 2.1.1 and the paper's loop.

Work: metamers of 8 natural pictures at an early, a middle and a late stage (``block_2``, ``block_4``, ``block_7``) of
pretrained EfficientNet-Lite0, 24 items.  An item is accepted when its Spearman rho at the generation layer against its
picture's is at least 0.99 and the network gives it the picture's own top-1 label.

Iterations and time are measured apart.  The iterations each item needs are deterministic (same noise, same
arithmetic), so those runs may share the machine.  The CPU time of one iteration of each contender at each stage is
measured in a separate short run (``--parts timing``, 30 iterations after warm-up, process CPU time of all threads)
on an otherwise idle machine, because threads that wait for a busy core still count CPU time.  A study's CPU time is
then its iterations times their cost.

- ``ours``: ``metamers.synthesize`` with the plans' default step rule (``--rule``, default per-item L-BFGS, the
  ``fidelity`` preset), one batched optimisation per stage, every item stopping on its own (``stop_rho=0.99,
  stop_label=True``, checked every 25 iterations), capped at ``--cap``.
- ``plenoptic``: ``plenoptic.Metamer`` run as its users run it: the network wrapped by ``po.models.DeepNetFeatures``
  (truncated at the layer, normalisation inside), its defaults (MSE, range penalty, Adam at 0.01 with amsgrad), one
  picture at a time.  Each picture runs to ``--cap`` iterations or until it has both reached fidelity (checked every
  25 iterations, not timed) and met plenoptic's own stop criterion (loss change under 1e-4 over 50 iterations).  Two
  ways to use it are reported: (a) with its own stop criterion: each item costs the iterations until the criterion
  fires and is accepted only if it had reached fidelity by then; (b) with one iteration count for the whole study
  that brings every item that gets there to fidelity (the largest of the items' iterations to fidelity), the stop
  criterion off.
- ``paper``: the paper's loop: the whole network every step, one picture at a time, Adam at 0.001 decayed by 0.95
  every 1000 iterations, 15000 iterations whatever happens.  Only its cost per iteration is measured; every item is
  counted as accepted (an upper bound on its rate: it is not run to the end here).

Run by hand (plenoptic installed after the pinned torch: ``.venv/bin/pip install plenoptic==2.1.1``); resumable, every
finished item or stage is kept in the JSON:
    .venv/bin/python benchmarks/study_speed.py --parts ours plenoptic     # iterations (hours; may share the machine)
    .venv/bin/python benchmarks/study_speed.py --parts timing             # cost per iteration (a minute; idle machine)
Writes benchmarks/results/study_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import load_cells, machine
from step_rules import EVERY, PICTURES, RHO, RULES, STAGES

NETWORK = "efficientnet-lite0"
DEFAULT_RULE = "lbfgs-batched"  # the `fidelity` preset of plans and the demo
OUT = Path(__file__).parent / "results" / "study_speed"


def _setup():
    from metamers.models import load
    from metamers.noise import white_noise
    from metamers.stimuli.images import load_photos

    zoo = load(NETWORK)
    zoo.module.requires_grad_(False).eval()
    x = load_photos(PICTURES, size=zoo.input_shape[-1])[0]
    return zoo, x, white_noise(tuple(x.shape), bounds=(0.0, 1.0), spread=0.1, seed=0)


def _fidelity(zoo, layer: str, stim: torch.Tensor):
    from metamers._stopping import Fidelity, stimulus_labels
    from metamers.taps import Taps

    taps = Taps(zoo.module, [layer])
    with torch.no_grad():
        target = taps(stim)[layer]
    return Fidelity(target, lambda v: taps(v)[layer], zoo.module, stimulus_labels(zoo.module, stim, 2), 2)


def _accepted(fid, m: torch.Tensor) -> list[bool]:
    ids = torch.arange(len(m))
    rho, same = fid.rho(m, ids), fid.same_label(m, ids)
    return [bool(r >= RHO) and bool(s) for r, s in zip(rho, same, strict=True)]


def run_ours(rule: str, cap: int, done: dict) -> None:
    from metamers import synthesize

    zoo, x, init = _setup()
    synthesize(zoo.module, x[:2], zoo.stages["block_2"], iterations=2, init=init[:2], progress=False)  # warm-up
    for stage, name in STAGES.items():
        key = f"ours|{rule}|{cap}|{stage}"
        if key in done["cells"]:
            continue
        layer = zoo.stages[name]
        r = synthesize(zoo.module, x, layer, iterations=cap, init=init, stop_rho=RHO, stop_label=True,
                       check_every=EVERY, progress=False, **RULES[rule])  # fmt: skip
        ok = _accepted(_fidelity(zoo, layer, x), r.metamers)
        done["cells"][key] = {"layer": layer, "stop_iteration": r.stop_iteration, "accepted": ok}
        _save(done)
        print(key, f"{sum(ok)}/{len(ok)} accepted, stops {r.stop_iteration}", flush=True)


def run_plenoptic(cap: int, done: dict) -> None:
    import plenoptic as po

    zoo, x, init = _setup()
    net, norm = zoo.module.net, zoo.module.preprocess
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        model = po.models.DeepNetFeatures(net, layer.removeprefix("net."), norm)
        po.remove_grad(model)
        model.eval()
        fid = _fidelity(zoo, layer, x)
        warm = po.Metamer(x[:1], model)  # warm-up, not timed
        warm.setup(initial_image=init[:1].clone())
        warm.synthesize(max_iter=2, stop_criterion=-1.0)
        for i in range(len(x)):
            key = f"plenoptic|{cap}|{stage}|{i}"
            if key in done["cells"]:
                continue
            met = po.Metamer(x[i : i + 1], model)
            met.setup(initial_image=init[i : i + 1].clone())  # its defaults: Adam lr 0.01, amsgrad
            reached, fired, it = None, None, 0
            one = torch.zeros(1, dtype=torch.long)
            while it < cap and (reached is None or fired is None):
                met.synthesize(max_iter=EVERY, stop_criterion=-1.0)  # the criterion is read from the losses below
                it += EVERY
                if reached is None:
                    m = met.metamer.detach()
                    if bool(fid.rho(m, one)[0] >= RHO) and bool(fid.same_label(m, one)[0]):
                        reached = it
                if fired is None:
                    fired = _criterion(met.losses)
            done["cells"][key] = {"layer": layer, "iterations": it, "reached": reached, "fired": fired}
            _save(done)
            print(key, done["cells"][key], flush=True)


def _criterion(losses: torch.Tensor, stop_criterion: float = 1e-4, check: int = 50) -> int | None:
    """The first iteration at which plenoptic's default stop criterion fires, from its loss history."""
    values = losses.tolist()
    for t in range(check, len(values)):
        if abs(values[t - check] - values[t]) < stop_criterion:
            return t + 1
    return None


def run_timing(rule: str, iterations: int, done: dict) -> None:
    """CPU seconds per iteration of each contender at each stage (ours: per item-iteration of the batch of 8)."""
    import plenoptic as po

    from metamers import synthesize

    zoo, x, init = _setup()
    modules = dict(zoo.module.named_modules())
    timing = done.setdefault("timing", {})
    for stage, name in STAGES.items():
        layer = zoo.stages[name]
        synthesize(zoo.module, x, layer, iterations=2, init=init, progress=False, **RULES[rule])  # warm-up
        t = time.process_time()
        synthesize(zoo.module, x, layer, iterations=iterations, init=init, progress=False, **RULES[rule])
        ours = (time.process_time() - t) / (iterations * len(x))

        model = po.models.DeepNetFeatures(zoo.module.net, layer.removeprefix("net."), zoo.module.preprocess)
        po.remove_grad(model)
        model.eval()
        met = po.Metamer(x[:1], model)
        met.setup(initial_image=init[:1].clone())
        met.synthesize(max_iter=2, stop_criterion=-1.0)  # warm-up
        t = time.process_time()
        met.synthesize(max_iter=iterations, stop_criterion=-1.0)
        plen = (time.process_time() - t) / iterations

        grabbed: dict = {}
        handle = modules[layer].register_forward_hook(lambda m, i, o, g=grabbed: g.__setitem__("a", o))
        with torch.no_grad():
            zoo.module(x[:1])
            target = grabbed["a"].clone()
        m = init[:1].clone().requires_grad_(True)
        opt = torch.optim.Adam([m], lr=0.001)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.95 ** (k / 1000))
        for k in range(iterations + 2):  # two untimed warm-up steps
            if k == 2:
                t = time.process_time()
            opt.zero_grad()
            zoo.module(m)  # the whole network, every step
            (grabbed["a"] - target).pow(2).sum().backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                m.clamp_(0, 1)
        paper = (time.process_time() - t) / iterations
        handle.remove()
        timing[stage] = {"layer": layer, "ours": ours, "plenoptic": plen, "paper": paper}
        _save(done)
        print(stage, timing[stage], flush=True)


def _save(done: dict) -> None:
    path = Path(done.get("out", OUT.with_suffix(".json")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(done, indent=1))


def summary(done: dict, rule: str, cap: int, plenoptic_cap: int) -> dict:
    """Per contender: accepted items, CPU hours, accepted per CPU-hour, median CPU seconds to fidelity per item."""
    cells, timing = done["cells"], done.get("timing", {})
    out: dict[str, dict] = {}
    if len(timing) < len(STAGES):
        return out
    ours = {s: cells.get(f"ours|{rule}|{cap}|{s}") for s in STAGES}
    if all(ours.values()):
        acc = sum(sum(c["accepted"]) for c in ours.values())
        cpu = sum(sum(c["stop_iteration"]) * timing[s]["ours"] for s, c in ours.items())
        per_item = [it * timing[s]["ours"] for s, c in ours.items()
                    for it, a in zip(c["stop_iteration"], c["accepted"], strict=True) if a]  # fmt: skip
        out["ours"] = _row(acc, cpu, per_item)
    plen = [cells.get(f"plenoptic|{plenoptic_cap}|{s}|{i}") for s in STAGES for i in range(len(PICTURES))]
    if all(plen):
        per_it = {timing[s]["layer"]: timing[s]["plenoptic"] for s in STAGES}
        crit_acc = sum(1 for c in plen if c["reached"] is not None and c["fired"] is not None and
                       c["reached"] <= c["fired"])  # fmt: skip
        crit_cpu = sum(min(c["fired"] or plenoptic_cap, plenoptic_cap) * per_it[c["layer"]] for c in plen)
        reached = [c["reached"] for c in plen if c["reached"] is not None]
        fixed = max(reached) if reached else plenoptic_cap
        fixed_cpu = sum(fixed * per_it[c["layer"]] for c in plen)
        per_item = [c["reached"] * per_it[c["layer"]] for c in plen if c["reached"] is not None]
        out["plenoptic, its stop criterion"] = _row(crit_acc, crit_cpu, per_item)
        out[f"plenoptic, {fixed} iterations for all"] = _row(len(reached), fixed_cpu, per_item)
    cpu = sum(15000 * timing[s]["paper"] * len(PICTURES) for s in STAGES)
    out["paper's loop, 15000 iterations"] = _row(3 * len(PICTURES), cpu, [15000 * timing[s]["paper"] for s in STAGES])
    return out


def _row(accepted: int, cpu_s: float, per_item: list[float]) -> dict:
    return {
        "accepted": accepted,
        "cpu_h": cpu_s / 3600,
        "per_cpu_hour": accepted / (cpu_s / 3600) if cpu_s else 0.0,
        "median_cpu_s_to_fidelity": statistics.median(per_item) if per_item else None,
    }


def report(done: dict, rule: str, cap: int, plenoptic_cap: int) -> str:
    m = done["machine"]
    rows = summary(done, rule, cap, plenoptic_cap)
    base = next((v for k, v in rows.items() if k.startswith("plenoptic, its")), None)
    out = [
        f"# A study to fidelity: 8 pictures x 3 stages of {NETWORK}, rho >= {RHO} and the same label",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; torch {m['torch']}, "
        f"{m['torch_threads']} threads. Time: iterations times their CPU cost (all threads).",
        f"Commands: `.venv/bin/python benchmarks/study_speed.py --parts ours plenoptic` (iterations; ours: {rule}, "
        f"at most {cap}; plenoptic 2.1.1 with its defaults, at most {plenoptic_cap}; checks every {EVERY}), then "
        "`--parts timing` (CPU seconds per iteration, 2 threads, idle machine).",
        "",
        "| contender | accepted / 24 | CPU hours | accepted per CPU-hour | vs plenoptic (its criterion) | "
        "median CPU s to fidelity per item |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        ratio = f"{r['per_cpu_hour'] / base['per_cpu_hour']:.1f}x" if base and base["per_cpu_hour"] else "-"
        med = "-" if r["median_cpu_s_to_fidelity"] is None else f"{r['median_cpu_s_to_fidelity']:.0f}"
        out.append(f"| {name} | {r['accepted']} | {r['cpu_h']:.3f} | {r['per_cpu_hour']:.0f} | {ratio} | {med} |")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = ["ours", "plenoptic", "timing"]
    p.add_argument("--parts", nargs="+", default=parts, choices=parts)
    p.add_argument("--rule", default=DEFAULT_RULE, choices=list(RULES))
    p.add_argument("--cap", type=int, default=3000, help="ours: iterations at most")
    p.add_argument("--plenoptic-cap", type=int, default=1500, help="plenoptic: iterations at most per picture")
    p.add_argument("--timing-iterations", type=int, default=30)
    p.add_argument("--out", default=str(OUT.with_suffix(".json")), help="result file (default: %(default)s)")
    p.add_argument("--merge", nargs="*", default=[], help="fold cells of other result files (parallel runs) in")
    p.add_argument("--threads", type=int, default=2, help="torch threads (iteration counts do not depend on it)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.out)
    done = load_cells(args.out, args.merge)
    done["machine"], done["out"] = machine(), str(path)
    for part in args.parts:
        if part == "ours":
            run_ours(args.rule, args.cap, done)
        elif part == "plenoptic":
            run_plenoptic(args.plenoptic_cap, done)
        else:
            run_timing(args.rule, args.timing_iterations, done)
    _save(done)
    path.with_suffix(".md").write_text(report(done, args.rule, args.cap, args.plenoptic_cap))
    print(path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
