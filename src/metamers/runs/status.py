"""What a run has done, read from its catalog without writing anything (so it works in a read-only directory)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from metamers._files import safetensors_problem
from metamers.modality import modality
from metamers.runs.rundir import RunDir

__all__ = ["format_status", "run_status"]


def _alive(pid: int | None, host: str | None) -> bool:
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_files(directory: Path, plan, rows: list[dict]) -> tuple[list[tuple[str, str]], list[str]]:
    """Done synthesis jobs whose result is missing or damaged (reported, and counted as pending: the next run redoes
    them), and the media files missing from done jobs (the next run writes them again)."""
    batch_file = directory / "batch.json"
    batch = int(json.loads(batch_file.read_text())["batch"]) if batch_file.exists() else None
    damaged, missing = [], []
    stimuli: dict[str, tuple[str, ...]] = {}
    for r in rows:
        if r["step"] != "synthesize" or r["state"] != "done":
            continue
        path = directory / r["output"]
        why = "missing" if not path.exists() else safetensors_problem(path)
        if why is not None:
            damaged.append((r["output"], why))
            r["state"] = "pending"
            continue
        if batch is not None:
            if r["kind"] not in stimuli:  # once per kind: with stimulus files, each call reads the folder
                stimuli[r["kind"]] = plan.stimuli(r["kind"])
            names = stimuli[r["kind"]][r["batch"] * batch : (r["batch"] + 1) * batch]
            files = [f for n in names for f in modality(r["kind"]).media_files(r["model"], r["stage"], n)]
            missing += [f for f in files if not (directory / f).exists()]
    return damaged, missing


def run_status(directory: str | os.PathLike) -> dict:
    """What a run has done: each job's state, counts per model and stage, accepted metamers.

    A job marked running whose process is gone (killed) is reported as ``interrupted``: the next ``metamers run``
    on the directory resumes it from its checkpoint.  A done job whose result is missing or damaged counts as
    pending (listed under ``damaged``), and media files missing from done jobs are listed (``missing_media``): the
    next run redoes or rewrites them.  Nothing is written, so it works in a read-only directory.

    Returns
    -------
    dict
        ``{"plan": name, "stages": [{"model", "stage", "done", "running", "failed", "pending", "interrupted",
        "batches", "metamers", "accepted"}], "steps": {name: state}, "failed": [(job, error)], "log": path}``.
    """
    run = RunDir(directory, readonly=True)
    directory, plan = run.directory, run.plan
    rows = run.jobs()
    for r in rows:
        if r["state"] == "running" and not _alive(r["pid"], r["host"]):
            r["state"] = "interrupted"
    damaged, missing = _check_files(directory, plan, rows)
    accepted = run.accepted_by_stage()
    stages: dict[tuple[str, str], dict] = {}
    for r in rows:
        if r["step"] != "synthesize":
            continue
        s = stages.setdefault(
            (r["model"], r["stage"]),
            {
                "model": r["model"],
                "stage": r["stage"],
                "batches": 0,
                "done": 0,
                "running": 0,
                "failed": 0,
                "pending": 0,
                "interrupted": 0,
            },
        )
        s["batches"] += 1
        s[r["state"]] = s.get(r["state"], 0) + 1
    for key, s in stages.items():
        a = accepted.get(key, {"n": 0, "accepted": 0})
        s["metamers"], s["accepted"] = a["n"], a["accepted"]
    return {
        "plan": plan.name,
        "directory": str(directory),
        "stages": list(stages.values()),
        "steps": {r["name"]: r["state"] for r in rows if r["step"] != "synthesize"},
        "failed": [(r["name"], r["error"]) for r in rows if r["state"] == "failed"],
        "damaged": damaged,
        "missing_media": missing,
        "log": str(directory / "run.log"),
        "report": str(directory / "report.html") if (directory / "report.html").exists() else None,
    }


def format_status(status: dict) -> str:
    """:func:`run_status` as a terminal table."""
    lines = [f"run {status['directory']} (plan {status['plan']!r})"]
    lines.append(
        f"{'model':28s} {'stage':18s} {'batches':>7s} {'done':>5s} {'running':>7s} {'interrupted':>11s} "
        f"{'failed':>6s} {'pending':>7s} {'accepted':>9s}"
    )
    for s in status["stages"]:
        acc = f"{s['accepted']}/{s['metamers']}" if s["metamers"] else "-"
        lines.append(
            f"{s['model'][:28]:28s} {s['stage'][:18]:18s} {s['batches']:7d} {s['done']:5d} {s['running']:7d} "
            f"{s['interrupted']:11d} {s['failed']:6d} {s['pending']:7d} {acc:>9s}"
        )
    total = {k: sum(s[k] for s in status["stages"]) for k in ("batches", "done", "running", "interrupted", "failed")}
    lines.append(
        f"synthesis: {total['done']}/{total['batches']} jobs done, {total['running']} running, "
        f"{total['interrupted']} interrupted, {total['failed']} failed"
    )
    lines.append("steps: " + ", ".join(f"{k} {v}" for k, v in status["steps"].items()))
    for name, err in status["failed"]:
        lines.append(f"failed {name}: {err}")
    for path, why in status.get("damaged", []):
        lines.append(f"damaged {path}: {why}; the next run sets it aside and redoes its job")
    if status.get("missing_media"):
        lines.append(f"missing media: {len(status['missing_media'])} file(s), e.g. {status['missing_media'][0]}; "
                     "the next run writes them again")  # fmt: skip
    steps = status["steps"].values()
    if total["interrupted"] or status.get("damaged") or status.get("missing_media") or "pending" in steps:
        lines.append(f"resume with: metamers run {status['directory']}")
    lines.append(f"log: {status['log']}")
    if status["report"]:
        lines.append(f"report: {status['report']}")
    return "\n".join(lines)
