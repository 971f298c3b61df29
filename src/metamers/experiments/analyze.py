"""Analyse a recognition experiment: exclusions, proportion correct per condition with SEM across participants, the
figure of human recognition against generation layer beside the networks' transfer curves, and tidy CSVs."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import IO

from metamers.experiments.build import load_experiment
from metamers.experiments.store import Store, default_url
from metamers.runs.rundir import RunDir

__all__ = ["analyze_experiment", "condition_summary", "tidy_trials"]


def tidy_trials(exp: dict, store: Store) -> list[dict]:
    """Every stored response as one row: participant, trial, condition (model, stage), answer, response, RT.

    Examples
    --------
    >>> rows = tidy_trials(load_experiment("experiments/demo-images"), store)  # doctest: +SKIP
    """
    conditions = {c["id"]: c for c in exp["conditions"]}
    people = {p["id"]: p for p in store.all_participants()}
    rows = []
    for r in store.all_responses():
        p = people[r["participant_id"]]
        c = conditions.get(r["condition"], {})
        rows.append(
            {
                "participant": p["external_id"],
                "list": p["list_index"],
                "trial": r["trial"],
                "phase": r["phase"],
                "condition": r["condition"],
                "model": c.get("model") or "",
                "stage": c.get("stage") or r["condition"],
                "source": r["source"],
                "stimulus": r["stimulus"],
                "answer": r["answer"],
                "response": r["response"],
                "correct": int(bool(r["correct"])),
                "rt_ms": r["rt_ms"],
                "received": r["received"],
            }
        )
    return rows


def _exclusions(exp: dict, store: Store, rows: list[dict]) -> dict[str, str]:
    """participant -> why they are left out (absent when they are kept)."""
    rule = exp["exclusion"]
    out: dict[str, str] = {}
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["participant"], []).append(r)
    for p in store.all_participants():
        pid = p["external_id"]
        trials = len(exp["lists"][p["list_index"]])
        mine = by.get(pid, [])
        if rule.get("headphones_min") is not None and p["headphone_passed"] is not None and not p["headphone_passed"]:
            out[pid] = f"failed the headphone check ({p['headphone_correct']} of 6)"
        elif len(mine) < trials:
            out[pid] = f"incomplete ({len(mine)} of {trials} trials)"
        else:
            catches = [r["correct"] for r in mine if r["phase"] == "catch"]
            if catches and rule.get("catch_min") is not None and sum(catches) / len(catches) < rule["catch_min"]:
                out[pid] = f"failed catch trials ({sum(catches)} of {len(catches)})"
    return out


def condition_summary(exp: dict, rows: list[dict], excluded: dict[str, str] | None = None) -> list[dict]:
    """Proportion correct per condition: the mean over kept participants of each one's proportion, with its SEM.

    Examples
    --------
    >>> exp = {"conditions": [{"id": "natural", "model": None, "stage": "natural"}], "task": {"choices": ["a", "b"]}}
    >>> rows = [{"participant": p, "phase": "main", "condition": "natural", "correct": c}
    ...         for p, c in [("x", 1), ("x", 1), ("y", 1), ("y", 0)]]
    >>> s = condition_summary(exp, rows)[0]
    >>> s["proportion"], round(s["sem"], 3), s["participants"], s["chance"]
    (0.75, 0.25, 2, 0.5)
    """
    excluded = excluded or {}
    chance = 1 / len(exp["task"]["choices"])
    out = []
    for c in exp["conditions"]:
        per: dict[str, list[int]] = {}
        for r in rows:
            if r["phase"] == "main" and r["condition"] == c["id"] and r["participant"] not in excluded:
                per.setdefault(r["participant"], []).append(int(r["correct"]))
        props = [sum(v) / len(v) for v in per.values()]
        n = len(props)
        mean = sum(props) / n if n else float("nan")
        sem = math.sqrt(sum((x - mean) ** 2 for x in props) / (n - 1) / n) if n > 1 else float("nan")
        out.append(
            {
                "condition": c["id"],
                "model": c.get("model") or "",
                "stage": c["stage"],
                "layer": c.get("layer") or "",
                "participants": n,
                "trials": sum(len(v) for v in per.values()),
                "proportion": mean,
                "sem": sem,
                "chance": chance,
            }
        )
    return out


def _network_curves(exp: dict) -> list[dict]:
    """The run's transfer results for the generating models of the experiment (empty if the run has none)."""
    run = Path(exp["run"])
    if not (run / "catalog.sqlite").exists():
        return []
    return RunDir(run).transfer(source="png")


def write_csv(f: IO[str], rows: list[dict]) -> None:
    """Write rows (dicts with the same keys) as CSV with a header; nothing for no rows."""
    if rows:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        write_csv(f, rows)


def _figure(exp: dict, summary: list[dict], networks: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(c["model"] for c in exp["conditions"] if c["model"]))
    natural = next(s for s in summary if s["condition"] == "natural")
    fig, axes = plt.subplots(1, len(models), figsize=(max(6.5, 4.2 * len(models)), 3.8), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models, strict=True):
        sel = [s for s in summary if s["model"] == model]
        xs = list(range(len(sel)))
        ax.errorbar(xs, [s["proportion"] for s in sel], yerr=[0 if math.isnan(s["sem"]) else s["sem"] for s in sel],
                    marker="o", lw=2.2, capsize=3, color="black", label="humans")  # fmt: skip
        layer_x = {s["layer"]: x for x, s in zip(xs, sel, strict=True)}
        recs = [n for n in networks if n["generator"] == model and n["layer"] in layer_x]
        if exp["kind"] == "image":  # the 16-way space where the run has it: the nearer to the people's task
            recs = [n for n in recs if n["label_space"] == "16-way"] or recs
        for k, rec in enumerate(dict.fromkeys(n["recognizer"] for n in recs)):
            pts = sorted((layer_x[n["layer"]], n["proportion"]) for n in recs if n["recognizer"] == rec)
            own = " (own)" if rec == model else ""
            space = next(n["label_space"] for n in recs if n["recognizer"] == rec)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls="--", marker=".", lw=1, color=f"C{k}",
                    label=f"{rec}{own}, {space}")  # fmt: skip
        if not math.isnan(natural["proportion"]):
            ax.axhline(natural["proportion"], color="black", ls="--", lw=1, alpha=0.6)
        ax.axhline(natural["chance"], color="grey", ls=":", lw=1)
        ax.set_xticks(xs)
        ax.set_xticklabels([s["stage"] for s in sel], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"metamers of {model}", fontsize=9)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("generation layer", fontsize=8)
        ax.legend(fontsize=6, loc="best")
    axes[0][0].set_ylabel("proportion recognized", fontsize=8)
    n = natural["participants"]
    who = f"{n} participant{'s' if n != 1 else ''}"
    fig.suptitle(f"Human recognition ({who}; SEM across participants) beside the networks' (dashed)\n"
                 "black dashed line: humans on the natural stimuli; dotted: chance", fontsize=8)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


def analyze_experiment(
    directory: str | os.PathLike, db_url: str | None = None, out: str | os.PathLike | None = None
) -> dict:
    """Analyse an experiment's responses and write ``trials.csv``, ``summary.csv``, ``exclusions.csv`` and
    ``human_vs_networks.png`` (under ``out``, default ``DIR/analysis``).

    Examples
    --------
    >>> result = analyze_experiment("experiments/demo-images")  # doctest: +SKIP
    >>> result["summary"][0]["proportion"]  # doctest: +SKIP
    0.93
    """
    exp = load_experiment(directory)
    store = Store(db_url or default_url(exp["directory"]), lists=len(exp["lists"]))
    out = Path(out) if out is not None else Path(exp["directory"]) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    rows = tidy_trials(exp, store)
    excluded = _exclusions(exp, store, rows)
    for r in rows:
        r["excluded"] = excluded.get(r["participant"], "")
    summary = condition_summary(exp, rows, excluded)
    _write_csv(out / "trials.csv", rows)
    _write_csv(out / "summary.csv", summary)
    people = store.all_participants()
    _write_csv(
        out / "exclusions.csv",
        [{"participant": p["external_id"], "excluded": excluded.get(p["external_id"], "")} for p in people],
    )
    networks = _network_curves(exp)
    figure = _figure(exp, summary, networks, out / "human_vs_networks.png") if rows else None
    result = {
        "participants": len(people),
        "kept": len(people) - len(excluded),
        "excluded": excluded,
        "summary": summary,
        "figure": str(figure) if figure else None,
        "directory": str(out),
    }
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def format_summary(result: dict) -> str:
    """The analysis as a terminal table."""
    lines = [f"{result['kept']} of {result['participants']} participants kept"]
    for pid, why in result["excluded"].items():
        lines.append(f"  excluded {pid}: {why}")
    lines.append(f"{'model':28} {'stage':18} {'n':>3} {'correct':>8} {'SEM':>6}")
    for s in result["summary"]:
        sem = "" if math.isnan(s["sem"]) else f"{s['sem']:.2f}"
        prop = "" if math.isnan(s["proportion"]) else f"{s['proportion']:.2f}"
        lines.append(f"{s['model'] or '(natural)':28} {s['stage']:18} {s['participants']:>3} {prop:>8} {sem:>6}")
    lines.append(f"chance {result['summary'][0]['chance']:.3f}" if result["summary"] else "")
    if result["figure"]:
        lines.append(f"figure: {result['figure']}")
    return "\n".join(lines)
