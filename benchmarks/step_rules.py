"""Step rules to fidelity: iterations and seconds until a metamer is accepted, per rule, network and stage.

Work: metamers of 8 natural pictures at an early, a middle and a late stage (``block_2``, ``block_4``, ``block_7``)
of each pretrained image network, from the same initial noise (seed 0), one batched synthesis per rule.  Every item
stops on its own once its Spearman rho at the generation layer is at least 0.99 AND the network gives it the picture's
own top-1 label (``stop_rho=0.99, stop_label=True``, checked every 25 iterations); the cap is ``--cap`` iterations.

Rules (``metamers.synthesize`` settings, the rest its defaults):
- ``adam-<lr>``: Adam at a constant rate (0.01, 0.02, 0.05);
- ``adam-<lr>-decay``: Adam whose rate halves every 250 iterations (``exp_decay``, 0.5 per 250);
- ``l2-<lr>``: the 2023 follow-up's rule: normalised loss, fixed-length steps along the per-item normalised gradient
  (step 1 and 4 in input units), halved every 250 iterations;
- ``lbfgs``: torch's L-BFGS (history 10, strong-Wolfe line search) on one picture at a time, clamped to [0, 1] after
  each step; its iterations are counted as forward+backward evaluations, so they compare with the others';
- ``lbfgs-batched``: ``optimizer="lbfgs"`` of ``synthesize``: L-BFGS per item inside the batched loop (history 10,
  a backtracking line search, one evaluation per iteration, candidates projected into [0, 1]).

Reported per cell: accepted items out of 8, the median and largest stop iteration of the accepted ones, and seconds:
the item-iterations the batch ran (every item until it stopped or the cap) times the cost of one item-iteration at
that network and stage.  That cost is measured apart (``--timing``: 30 iterations of the batch of 8 after warm-up;
L-BFGS: 30 evaluations of one picture) on an otherwise idle machine, because the iteration counts are deterministic
and may be run while the machine does other work, but wall times are not.

Run by hand; resumable (every finished cell is kept in the JSON, rerun to go on):
    .venv/bin/python benchmarks/step_rules.py [--networks efficientnet-lite0 ...] [--rules adam-0.02 ...] [--cap 1000]
    .venv/bin/python benchmarks/step_rules.py --timing     # then the cost per item-iteration, on an idle machine
Writes benchmarks/results/step_rules.{json,md}.
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

NETWORKS = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenet-v2"]
STAGES = {"early": "block_2", "middle": "block_4", "late": "block_7"}
PICTURES = ["chelsea", "coffee", "rocket", "astronaut", "camera", "clock", "china", "flower"]
RHO, EVERY = 0.99, 25
_L2 = {"optimizer": "l2_step", "loss": "normalized", "schedule": "step_halving", "schedule_every": 250}
RULES: dict[str, dict] = {
    "adam-0.01": {"lr": 0.01, "schedule": "constant"},
    "adam-0.02": {"lr": 0.02, "schedule": "constant"},
    "adam-0.05": {"lr": 0.05, "schedule": "constant"},
    "adam-0.02-decay": {"lr": 0.02, "schedule": "exp_decay", "decay_rate": 0.5, "schedule_every": 250},
    "adam-0.05-decay": {"lr": 0.05, "schedule": "exp_decay", "decay_rate": 0.5, "schedule_every": 250},
    "l2-1": {"lr": 1.0, **_L2},
    "l2-4": {"lr": 4.0, **_L2},
    "lbfgs": {},
    "lbfgs-batched": {"optimizer": "lbfgs", "lr": 1.0, "schedule": "constant"},
}
OUT = Path(__file__).parent / "results" / "step_rules"


def _pictures(size: int) -> torch.Tensor:
    from metamers.stimuli.images import load_photos

    return load_photos(PICTURES, size=size)[0]


def run_rule(zoo, layer: str, x: torch.Tensor, rule: str, cap: int) -> dict:
    """One rule on the 8 pictures at one stage: stop iterations, acceptance and wall time."""
    from metamers import synthesize

    if rule == "lbfgs":
        return _lbfgs(zoo, layer, x, cap)
    t0 = time.perf_counter()
    r = synthesize(
        zoo.module, x, layer, iterations=cap, stop_rho=RHO, stop_label=True, check_every=EVERY, **RULES[rule]
    )
    wall = time.perf_counter() - t0
    accepted = [r.stop_reason[i] != "completed" and "stopped" not in r.stop_reason[i] for i in range(len(x))]
    return {
        "accepted": accepted,
        "stop_iteration": r.stop_iteration,
        "rho": [float(v) for v in r.layer_rho],
        "wall_s": wall,
    }


def _lbfgs(zoo, layer: str, x: torch.Tensor, cap: int) -> dict:
    """L-BFGS one picture at a time, checked like the others every 25 evaluations."""
    from metamers._stopping import Fidelity, stimulus_labels
    from metamers.noise import white_noise
    from metamers.taps import Taps, frozen

    accepted, stops, rhos = [], [], []
    t0 = time.perf_counter()
    with frozen(zoo.module) as model:
        taps = Taps(model, [layer], linear_grad=layer)
        x0 = white_noise(tuple(x.shape), bounds=(0.0, 1.0), spread=0.1, seed=0)
        for i in range(len(x)):
            stim = x[i : i + 1]
            with torch.no_grad():
                target = taps(stim)[layer]
            fid = Fidelity(target, lambda v: taps(v)[layer], model, stimulus_labels(model, stim, 1), 1)
            m = x0[i : i + 1].clone().requires_grad_(True)
            opt = torch.optim.LBFGS([m], lr=1, max_iter=EVERY, history_size=10, line_search_fn="strong_wolfe")
            evals = [0]

            def closure(m=m, target=target, evals=evals):
                m.grad = None
                loss = (taps(m)[layer] - target).pow(2).sum()
                loss.backward()
                evals[0] += 1
                return loss

            done, one = False, torch.zeros(1, dtype=torch.long)
            while evals[0] < cap and not done:
                opt.step(closure)
                with torch.no_grad():
                    m.clamp_(0, 1)
                done = bool(fid.rho(m, one)[0] >= RHO) and bool(fid.same_label(m, one)[0])
            accepted.append(done)
            stops.append(evals[0])
            rhos.append(float(fid.rho(m, one)[0]))
    return {"accepted": accepted, "stop_iteration": stops, "rho": rhos, "wall_s": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", default=NETWORKS)
    p.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    p.add_argument("--cap", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2, help="torch threads (iteration counts do not depend on it)")
    p.add_argument("--merge", nargs="*", default=[], help="fold cells of other result files (parallel runs) in")
    p.add_argument("--from-study", help="take the lbfgs-batched cells of Lite0 from benchmarks/study_speed.py's "
                   "result file (the same pictures, noise and rule, capped later: an item stopped by the cap here "
                   "is one that had not stopped by then)")  # fmt: skip
    p.add_argument("--out", default=str(OUT.with_suffix(".json")), help="result file (default: %(default)s)")
    p.add_argument("--timing", action="store_true", help="measure the cost of one item-iteration per network and stage")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from metamers.models import load

    path = Path(args.out)
    done = load_cells(args.out, args.merge)
    if args.from_study:
        done["cells"].update(_from_study(json.loads(Path(args.from_study).read_text()), args.cap))
    done["machine"], done["cap"] = machine(), args.cap
    if args.timing:
        _timing(args.networks, args.stages, done, path)
        args.networks = []
    for net in args.networks:
        zoo = load(net)
        x = _pictures(zoo.input_shape[-1])
        for stage in args.stages:
            layer = zoo.stages[STAGES[stage]]
            for rule in args.rules:
                key = f"{net}|{stage}|{rule}"
                if key in done["cells"] and done["cells"][key].get("cap") == args.cap:
                    continue
                cell = run_rule(zoo, layer, x, rule, args.cap)
                cell.update(cap=args.cap, layer=layer)
                done["cells"][key] = cell
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(done, indent=1))
                print(key, _line(cell), flush=True)
    path.write_text(json.dumps(done, indent=1))
    path.with_suffix(".md").write_text(report(done))


def _timing(networks: list[str], stages: list[str], done: dict, path: Path, iterations: int = 30) -> None:
    from metamers import synthesize
    from metamers.models import load

    timing = done.setdefault("timing", {})
    for net in networks:
        zoo = load(net)
        x = _pictures(zoo.input_shape[-1])
        for stage in stages:
            layer = zoo.stages[STAGES[stage]]
            synthesize(zoo.module, x, layer, iterations=2, progress=False)  # warm-up
            t = time.perf_counter()
            synthesize(zoo.module, x, layer, iterations=iterations, progress=False)
            batched = (time.perf_counter() - t) / (iterations * len(x))
            t = time.perf_counter()
            synthesize(zoo.module, x, layer, iterations=iterations, progress=False, **RULES["lbfgs-batched"])
            quasi = (time.perf_counter() - t) / (iterations * len(x))
            t = time.perf_counter()
            _lbfgs(zoo, layer, x[:1], iterations)
            one = (time.perf_counter() - t) / iterations
            cost = {"item_iteration_s": batched, "lbfgs_batched_s": quasi, "lbfgs_evaluation_s": one}
            timing[f"{net}|{stage}"] = cost
            path.write_text(json.dumps(done, indent=1))
            print(net, stage, timing[f"{net}|{stage}"], flush=True)


def _from_study(study: dict, cap: int) -> dict:
    """lbfgs-batched cells of Lite0 from a study_speed.py run of the same rule with a larger cap."""
    out = {}
    for key, cell in study["cells"].items():
        part, rule, study_cap, stage = (key.split("|") + [""] * 4)[:4]
        if part != "ours" or rule != "lbfgs-batched" or int(study_cap) < cap:
            continue
        stops = [min(it, cap) for it in cell["stop_iteration"]]
        ok = [a and it <= cap for a, it in zip(cell["accepted"], cell["stop_iteration"], strict=True)]
        out[f"efficientnet-lite0|{stage}|lbfgs-batched"] = {
            "accepted": ok, "stop_iteration": stops, "rho": None, "wall_s": None, "cap": cap, "layer": cell["layer"],
            "from": f"study_speed.py, cap {study_cap}",
        }  # fmt: skip
    return out


def _seconds(done: dict, key: str, cell: dict) -> float | None:
    """Item-iterations of the cell times their measured cost (None before ``--timing``)."""
    net, stage, rule = key.split("|")
    t = done.get("timing", {}).get(f"{net}|{stage}")
    if t is None:
        return None
    key = {"lbfgs": "lbfgs_evaluation_s", "lbfgs-batched": "lbfgs_batched_s"}.get(rule, "item_iteration_s")
    return sum(cell["stop_iteration"]) * t[key]


def _line(cell: dict) -> str:
    ok = [s for s, a in zip(cell["stop_iteration"], cell["accepted"], strict=True) if a]
    med = f"{statistics.median(ok):.0f}" if ok else "-"
    per = f"{cell['wall_s'] / len(ok):.1f}" if ok else "-"
    n, wall = len(cell["accepted"]), cell["wall_s"]
    return f"{len(ok)}/{n} accepted, median stop {med}, wall {wall:.0f} s, {per} s/metamer"


def summary(done: dict) -> list[dict]:
    """One row per (network, stage, rule)."""
    rows = []
    for key, cell in sorted(done["cells"].items(), key=lambda kc: _stage_order(kc[0])):
        net, stage, rule = key.split("|")
        ok = [s for s, a in zip(cell["stop_iteration"], cell["accepted"], strict=True) if a]
        rows.append({
            "network": net, "stage": stage, "rule": rule, "accepted": len(ok), "n": len(cell["accepted"]),
            "median_stop": statistics.median(ok) if ok else None, "max_stop": max(ok) if ok else None,
            "s": _seconds(done, key, cell), "wall_s": cell["wall_s"],
            "median_rho": statistics.median(cell["rho"]) if cell["rho"] else None,
        })  # fmt: skip
    return rows


def _stage_order(key: str) -> tuple[str, int]:
    net, stage, _ = key.split("|")
    return net, list(STAGES).index(stage)


def report(done: dict) -> str:
    m = done["machine"]
    rows = summary(done)
    f = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    out = [
        "# Step rules to fidelity (8 pictures, rho >= 0.99 at the generation layer and the picture's label)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}; torch {m['torch']}.",
        f"Commands: `.venv/bin/python benchmarks/step_rules.py` (iterations; cap {done['cap']}, checked every "
        f"{EVERY}), then `.venv/bin/python benchmarks/step_rules.py --timing` (cost per item-iteration, idle machine).",
        "Seconds: the item-iterations a rule ran (each item until it stopped or the cap) times their measured cost.",
        "",
        "## Per stage: accepted of 8 (median stop iteration of the accepted), seconds per accepted metamer",
        "",
    ]
    for net in dict.fromkeys(r["network"] for r in rows):
        out += [f"**{net}**", "", "| rule | " + " | ".join(STAGES) + " |", "| --- |" + " --- |" * len(STAGES)]
        for rule in RULES:
            mine = {r["stage"]: r for r in rows if r["rule"] == rule and r["network"] == net}
            if not mine:
                continue
            cells = []
            for stage in STAGES:
                r = mine.get(stage)
                if r is None:
                    cells.append("not run")
                    continue
                per = f", {r['s'] / r['accepted']:.0f} s" if r["s"] is not None and r["accepted"] else ""
                cells.append(f"{r['accepted']}/{r['n']} ({f(r['median_stop'])}{per})")
            out.append(f"| {rule} | " + " | ".join(cells) + " |")
        out.append("")
    head = "| network | stage | rule | accepted | median stop | largest stop | seconds | s per accepted | median rho |"
    out += ["", "## Every cell", "", head, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        per = r["s"] / r["accepted"] if r["s"] is not None and r["accepted"] else None
        out.append(
            f"| {r['network']} | {r['stage']} | {r['rule']} | {r['accepted']}/{r['n']} | {f(r['median_stop'])} | "
            f"{f(r['max_stop'])} | {f(r['s'])} | {f(per, 1)} | {f(r['median_rho'], 4)} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
