"""The report of a run: one HTML page (offline, no external resources) with metamers, validation, transfer, provenance.

It reads only the run directory (``plan.json``, ``catalog.sqlite``, ``media/``, ``figures/``, ``run.json``), so it
can be rewritten at any time: ``metamers report DIR``.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from metamers._files import atomic_write
from metamers.modality import modality
from metamers.runs.rundir import RunDir
from metamers.transfer import figure5_trend

__all__ = ["PAPER", "write_report"]

PAPER = {"iterations": 15000, "pairs": 1_000_000}
"""The paper's settings, which the report compares a run's with."""

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:24px}header p{margin:2px 0;color:#c9d1e0}
main{max-width:1400px;margin:0 auto;padding:8px 32px 48px}
section{background:#fff;border:1px solid #e3e6eb;border-radius:8px;padding:16px 22px;margin:18px 0}
h2{margin:4px 0 10px;font-size:20px}h3{margin:18px 0 8px;font-size:16px}
nav a{margin-right:14px;color:#2b5cab}
.finding{padding:8px 12px;border-left:4px solid #2b5cab;background:#eef3fb;margin:8px 0;border-radius:3px}
.finding.no{border-color:#b4541d;background:#fbf1ea}
.note{color:#5b6475;font-size:13px}
.grid{border-collapse:collapse}.grid th{font-weight:600;font-size:13px;padding:4px 6px;text-align:center}
.grid td{vertical-align:top;padding:5px;text-align:center}
.grid th.row{text-align:right;vertical-align:middle;white-space:nowrap}
.grid img.image{width:150px;height:150px;object-fit:cover;border-radius:4px;display:block;margin:auto}
.grid img.coch{width:200px;height:106px;border-radius:4px;display:block;margin:auto;image-rendering:auto}
.grid audio{width:200px;height:30px;margin-top:3px}
.cap{font-size:12px;color:#3a4150;max-width:200px;margin:3px auto 0}
.badge{display:inline-block;font-size:11px;padding:0 6px;border-radius:9px;margin-left:3px}
.ok{background:#dff3e4;color:#1c6b33}.bad{background:#fbe3e1;color:#9b2a1f}
table.data{border-collapse:collapse;font-size:13px;margin:6px 0}
table.data th,table.data td{border-bottom:1px solid #e3e6eb;padding:3px 10px;text-align:right}
table.data th:first-child,table.data td:first-child,table.data td.l{text-align:left}
.figs img{max-width:100%;border:1px solid #e3e6eb;border-radius:4px;margin:6px 0}
pre{background:#f3f4f6;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
.scroll{overflow-x:auto}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _rel(directory: Path, path: str) -> str | None:
    return path if (directory / path).exists() else None


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], left: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(title)}</th>" for _, title in columns)
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key, "")
            text = f"{v:.3f}" if isinstance(v, float) else str(v)
            cls = ' class="l"' if key in left else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="data"><tr>{head}</tr>{"".join(body)}</table>'


def _media(kind: str, model: str, stage: str, stimulus: str, lazy: bool = True) -> tuple[str, str]:
    """(the file a person sees or hears, its HTML): a picture, or a sound to play under its cochleagram."""
    m = modality(kind)
    path = m.media_path(model, stage, stimulus)
    load = ' loading="lazy"' if lazy else ""
    if kind == "image":
        return path, f'<img class="image" loading="lazy" src="{_e(path)}" alt="{_e(stimulus)} {_e(stage)}">'
    picture = f'<img class="coch"{load} src="{_e(m.cochleagram_path(model, stage, stimulus))}" alt="cochleagram">'
    if not m.playable:  # optimised on the cochleagram: nothing to play
        return path, picture
    return path, picture + f'<audio controls preload="none" src="{_e(path)}"></audio>'


def _cell(directory: Path, m: dict, kind: str) -> str:
    path, media = _media(kind, m["model"], m["stage"], m["stimulus"])
    if not (directory / path).exists():
        return '<td><span class="note">missing</span></td>'
    if m.get("accepted") is None:
        verdict = '<span class="badge">not validated</span>'
    elif m["accepted"]:
        verdict = '<span class="badge ok">accepted</span>'
    else:
        verdict = f'<span class="badge bad" title="{_e(m["reason"])}">rejected</span>'
    rho = f"rho {m['rho_layer']:.3f}" if m.get("rho_layer") is not None else ""
    label = f" · {_e(str(m['label_metamer'])[:22])}" if m.get("label_metamer") else ""
    return f'<td>{media}<div class="cap">{rho}{label}{verdict}</div></td>'


def _median_iterations(rows: list[dict]) -> int | str:
    """The median of the iterations the metamers ran (each stops on its own with ``stop_rho``)."""
    its = sorted(r["iterations"] for r in rows if r.get("iterations") is not None)
    return its[len(its) // 2] if its else ""


def _model_section(
    directory: Path, model: str, kind: str, rows: list[dict], stages: list[str], names: list[str]
) -> str:
    by = {(r["stage"], r["stimulus"]): r for r in rows}
    head = "<tr><th></th><th>original</th>" + "".join(f"<th>{_e(s)}</th>" for s in stages) + "</tr>"
    body = []
    for n in names:
        label = next((r["label_stimulus"] for r in rows if r["stimulus"] == n and r.get("label_stimulus")), "")
        _, o = _media(kind, model, "original", n, lazy=False)
        cells = "".join(_cell(directory, by[(s, n)], kind) if (s, n) in by else "<td></td>" for s in stages)
        body.append(
            f'<tr><th class="row">{_e(n)}<br><span class="note">{_e(str(label)[:24])}</span></th>'
            f'<td>{o}<div class="cap">the model: {_e(str(label)[:22])}</div></td>{cells}</tr>'
        )
    grid = f'<div class="scroll"><table class="grid">{head}{"".join(body)}</table></div>'
    per_stage = []
    for s in stages:
        rs = [r for r in rows if r["stage"] == s and r.get("accepted") is not None]
        if not rs:
            continue
        rho = sorted(r["rho_layer"] for r in rs)
        per_stage.append(
            {
                "stage": s,
                "layer": rs[0]["layer"],
                "generated": len(rs),
                "accepted": sum(int(r["accepted"]) for r in rs),
                "features": rs[0].get("features", ""),
                "median rho": rho[len(rho) // 2],
                "null median": rs[0]["null_median"] if rs[0].get("null_median") is not None else "",
                "null max": rs[0]["null_max"] if rs[0].get("null_max") is not None else "",
                "median rho at logits": sorted(r["rho_logits"] for r in rs)[len(rs) // 2],
                "median iterations": _median_iterations(rs),
            }
        )
    cols = [
        (k, k)
        for k in (
            "stage",
            "layer",
            "generated",
            "accepted",
            "features",
            "median rho",
            "null median",
            "null max",
            "median rho at logits",
            "median iterations",
        )
    ]
    table = _table(per_stage, cols, left=("stage", "layer")) if per_stage else '<p class="note">not validated yet</p>'
    figs = ""
    null = _rel(directory, f"figures/null_grid_{model}.png")
    if null:
        figs += (
            '<div class="figs"><h3>Metamer rho against the null, every measured layer (Figure S1)</h3>'
            f'<img src="{_e(null)}" alt="null grid"></div>'
        )
    what = modality(kind).perceived
    if kind == "cochleagram":
        what = "hears (optimised on the cochleagram, so only the cochleagram is shown)"
    return (
        f'<section id="{_e(model)}"><h2>{_e(model)}</h2>'
        f'<p class="note">Rows: the natural stimuli; columns: the generation layer. Each metamer shows its Spearman '
        f"rho with the original at the generation layer, the label the model {what} in it, and its verdict (hover a "
        f"rejection for the reason).</p>{grid}<h3>Validation (Table S4/S5 columns)</h3>{table}{figs}</section>"
    )


def write_report(directory: str | os.PathLike) -> Path:
    """Write ``report.html`` for a run directory and return its path.

    Examples
    --------
    >>> write_report("runs/first")  # doctest: +SKIP
    PosixPath('runs/first/report.html')
    """
    run_dir = RunDir(directory)
    directory, plan = run_dir.directory, run_dir.plan
    every_job = run_dir.jobs()
    jobs = [j for j in every_job if j["step"] == "synthesize"]
    rows = run_dir.metamers()
    validated = run_dir.validated()
    kinds = {j["model"]: j["kind"] for j in jobs}
    known = {(r["model"], r["stage"], r["stimulus"]) for r in rows}
    for j in jobs:  # metamers synthesized but not validated yet still appear in the grid
        if j["state"] != "done":
            continue
        for s in plan.stimuli(j["kind"]):
            if (j["model"], j["stage"], s) not in known:
                rows.append({"model": j["model"], "stage": j["stage"], "stimulus": s, "layer": "", "accepted": None})
    run = json.loads((directory / "run.json").read_text()) if (directory / "run.json").exists() else {}
    transfer = run_dir.transfer()

    # findings
    findings = []
    acc = sum(int(r["accepted"] or 0) for r in rows if r.get("accepted") is not None)
    n_val = sum(1 for r in rows if r.get("accepted") is not None)
    findings.append(
        (
            "yes",
            f"{acc} of {n_val} validated metamers pass the paper's rule (the model gives the label of "
            "the original and rho at the generation layer lies above the null).",
        )
    )
    layer_order = {(j["model"], j["stage"]): i for i, j in enumerate(jobs)}
    stage_of = {(r["model"], r["layer"]): r["stage"] for r in rows if r.get("layer")}
    transfer.sort(
        key=lambda c: (c["generator"], layer_order.get((c["generator"], stage_of.get((c["generator"], c["layer"]))), 0))
    )
    trends = figure5_trend(transfer, stage_of)
    for t in trends:
        findings.append(("yes" if t["shown"] else "no", t["text"]))  # "unclear" is not a finding
    if plan.recognizers and not trends and transfer:
        findings.append(
            (
                "no",
                "no trained network other than the generator recognized these metamers, so the "
                "Figure 5 trend cannot be measured here.",
            )
        )
    short = []
    for kind in ("image", "audio"):
        if any(k == kind for k in kinds.values()):
            s = plan.settings(kind)
            past = plan.stop_past_null(kind)
            if past is not None:
                label = " with its stimulus's label" if s.stop_label else ""
                given = plan.synthesis.get(kind, {}).get("stop_rho")
                floor = f" (and at least {given:g})" if given is not None else ""
                short.append(
                    f"each {kind} metamer ran until its rho at the layer had closed {past:.0%} of the gap between "
                    f"its layer's null and 1{floor}{label}, at most {s.iterations:,} iterations (the paper: "
                    f"{PAPER['iterations']:,} whatever happens)"
                )
            elif s.stop_rho is not None:
                label = " with its stimulus's label" if s.stop_label else ""
                short.append(
                    f"each {kind} metamer ran until its rho at the layer reached {s.stop_rho:g}{label}, at most "
                    f"{s.iterations:,} iterations (the paper: {PAPER['iterations']:,} whatever happens)"
                )
            elif s.iterations < PAPER["iterations"]:
                short.append(f"{kind} metamers ran {s.iterations:,} iterations (the paper: {PAPER['iterations']:,})")
    for mp in plan.models:
        if mp.synthesis:
            short.append(f"{mp.name}'s metamers had their own settings: {_own_settings(mp)}")
    if plan.pairs < PAPER["pairs"]:
        short.append(f"each null has {plan.pairs:,} pairs (the paper: {PAPER['pairs']:,})")
    state = {r["name"]: r["state"] for r in every_job}
    unfinished = [n for n, s in state.items() if s not in ("done", "skipped") and n != "report"]

    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(plan.name)}: metamers report</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_CSS}</style></head><body>"
    ]
    prov = run.get("provenance", {})
    seconds = sum(s.get("seconds") or 0 for s in run.get("sessions", []))
    parts.append(
        f"<header><h1>{_e(plan.name)}: model metamers</h1>"
        f"<p>{len(plan.models)} generating model(s) · {n_val} metamers validated of {len(rows)} synthesized · "
        f"{validated and acc} accepted</p><p>{_e(time.strftime('%Y-%m-%d %H:%M'))} · {_e(prov.get('device', '?'))} "
        f"({_e(prov.get('cpu', ''))}) · {seconds / 60:.1f} min over {len(run.get('sessions', []))} session(s)</p>"
        "</header><main>"
    )
    nav = "".join(f'<a href="#{_e(m)}">{_e(m)}</a>' for m in kinds)
    nav += '<a href="#transfer">transfer</a>' if transfer else ""
    parts.append(f'<nav style="margin-top:12px">{nav}<a href="#provenance">settings and provenance</a></nav>')
    items = "".join(f'<div class="finding {"" if ok == "yes" else "no"}">{_e(t)}</div>' for ok, t in findings)
    if short:
        items += f'<p class="note">Reduced settings: {_e("; ".join(short))}. Scale them up in the plan.</p>'
    if unfinished:
        items += (
            f'<p class="note">Not finished: {_e(", ".join(unfinished))}; '
            f"<code>metamers run {_e(directory)}</code> goes on.</p>"
        )
    parts.append(f"<section><h2>Findings</h2>{items}</section>")
    features = {}
    if (directory / "validation_table.csv").exists():
        import csv

        with open(directory / "validation_table.csv", newline="") as fh:
            features = {(r["model"], r["layer"]): r.get("features", "") for r in csv.DictReader(fh)}
    for r in rows:
        r["features"] = features.get((r["model"], r.get("layer")), "")
    for mp in plan.models:
        model = mp.name
        if model not in kinds:
            continue
        stages = list(dict.fromkeys(j["stage"] for j in jobs if j["model"] == model))
        parts.append(
            _model_section(
                directory,
                model,
                kinds[model],
                [r for r in rows if r["model"] == model],
                stages,
                list(plan.stimuli(kinds[model])),
            )
        )
    if transfer:
        spaces = [s for s in ("imagenet", "16-way", "word", "speech") if any(c["label_space"] == s for c in transfer)]
        figs = [f"transfer_{k}{s}.png" for s in spaces for k in ("", "matrix_")]
        figs = [f for f in figs if (directory / "figures" / f).exists()]
        img = "".join(f'<img src="figures/{_e(f)}" alt="{_e(f)}">' for f in figs)
        cols = [
            (k, k)
            for k in (
                "generator",
                "layer",
                "recognizer",
                "label_space",
                "n",
                "proportion",
                "sem",
                "natural_accuracy",
                "chance",
            )
        ]
        shown = [{**c, "recognizer": c["recognizer"] + (" (own)" if c["own"] else "")} for c in transfer]
        parts.append(
            '<section id="transfer"><h2>Transfer: metamers of one network recognized by another (Figures 5, 6)</h2>'
            '<p class="note">The proportion of accepted metamers each recognizing model classifies as the original '
            "stimulus's label, with bootstrap SEM over stimuli; the dashed line is the recognizer's accuracy on the "
            "natural stimuli. The generating model's own recognition is marked (own).</p>"
            f'<div class="figs">{img}</div><details><summary>table</summary>'
            f"{_table(shown, cols, left=('generator', 'layer', 'recognizer', 'label_space'))}</details></section>"
        )
    plan_text = (
        (directory / "plan.toml").read_text()
        if (directory / "plan.toml").exists()
        else json.dumps(plan.to_dict(), indent=2)
    )
    prov_rows = [{"what": k, "value": v} for k, v in prov.items()]
    steps = [{"step": k, "seconds": v} for k, v in run.get("steps", {}).items() if v is not None]
    parts.append(
        '<section id="provenance"><h2>Settings and provenance</h2>'
        f"<h3>The plan</h3><pre>{_e(plan_text)}</pre>"
        f"<h3>Synthesis settings</h3><pre>{_e(_settings_text(plan, kinds))}</pre>"
        f"<h3>Machine and versions</h3>{_table(prov_rows, [('what', ''), ('value', '')], left=('value',))}"
        f"<h3>Time per job (s)</h3><details><summary>{len(steps)} jobs</summary>"
        f"{_table(steps, [('step', 'job'), ('seconds', 's')])}</details>"
        "<p class=note>Files: <a href='catalog.sqlite'>catalog.sqlite</a> · <a href='validation_table.csv'>"
        "validation_table.csv</a> · <a href='transfer.csv'>transfer.csv</a> · <a href='run.log'>run.log</a></p>"
        "</section></main></body></html>"
    )
    return atomic_write(directory / "report.html", "".join(parts))


def _own_settings(mp) -> str:
    """A plan model's own synthesis changes, as ``key = value`` pairs."""
    return ", ".join(f"{k} = {v}" for k, v in mp.synthesis.items())


def _settings_text(plan, kinds: dict) -> str:
    lines = []
    for kind in ("image", "audio"):
        if kind in kinds.values():
            lines.append(f"{kind}: {plan.settings(kind).to_json()}")
    for mp in plan.models:
        if mp.synthesis:
            lines.append(f"{mp.name}: its own {_own_settings(mp)}")
    lines.append(
        f"validation: {plan.pairs:,} pairs per null, rho above the {plan.percentile:g}th percentile"
        f"{', same label' if plan.same_label else ''}, judged on {plan.source}"
    )
    return "\n".join(lines)
