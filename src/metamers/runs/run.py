"""Carry out a plan in a run directory: synthesis in batches, validation, transfer, the report; resumable at any point.

A run directory is self-contained:

- ``plan.toml`` / ``plan.json``: the plan (a second ``metamers run`` on the directory must name the same plan);
- ``results/<model>__<stage>__b<k>.safetensors``: each synthesis job's metamers at full precision, with stimuli,
  initial noise, settings and loss history (written atomically, so a file that exists is complete);
- ``media/<model>/<stage>/<stimulus>.png`` (images) or ``.wav`` plus ``_cochleagram.png`` (audio): what a person
  sees or hears, the originals under ``media/<model>/original/``;
- ``catalog.sqlite``: a row per metamer (model, layer, stimulus, seed, settings, final loss, rho per layer, verdict,
  paths), the nulls' summaries, the transfer results, and a row per job with its state;
- ``checkpoints/``: the optimisation state of jobs that are running or were interrupted;
- ``nulls/``, ``validation_table.csv``, ``transfer.csv``, ``figures/``, ``report.html``, ``run.log``, ``run.json``
  (provenance: versions, device, threads, time per step).

Killed at any moment (``kill -9`` included), :func:`run_plan` on the same directory skips every finished job,
resumes an interrupted synthesis from its last checkpoint, and redoes only the steps whose inputs changed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from metamers._device import resolve_device
from metamers._files import atomic_write
from metamers.models import ZooModel
from metamers.runs.catalog import Catalog
from metamers.runs.jobs import (
    Job,
    complete,
    execute_job,
    fingerprint,
    load_model,
    mark_running,
    record,
    redo_damaged,
    remember_inputs,
)
from metamers.runs.lock import run_lock
from metamers.runs.media import media_path, natural_stimuli
from metamers.runs.own import register_plan_models
from metamers.runs.plan import ModelPlan, Plan, PlanError, load_plan, plan_toml
from metamers.runs.rundir import RunError, plan_of
from metamers.runs.session import Bar, record_session
from metamers.runs.status import format_status, run_status

__all__ = ["RunError", "execute_job", "format_status", "media_path", "plan_of", "run_plan", "run_status"]

_STEP_WEIGHT = {"validate": 0.15, "transfer": 0.05, "report": 0.01}
"""Work of the steps after synthesis, as a fraction of the synthesis iterations (for the progress estimate)."""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def _fix_plan(out: Path, plan: Plan, text: str | None) -> None:
    """Record the plan in a new run directory, or check that an existing one ran the same plan."""
    saved = out / "plan.json"
    now = plan.to_dict()
    if saved.exists():
        before = json.loads(saved.read_text())
        if before != json.loads(json.dumps(now)):
            keys = sorted(k for k in set(before) | set(now) if before.get(k) != json.loads(json.dumps(now.get(k))))
            raise RunError(
                f"{out} holds a run of a different plan (it differs in: {', '.join(keys)}). Resume it with "
                f"`metamers run {out}`, or give another --out for the new plan."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    own = any(mp.spec for mp in plan.models) or any(
        (plan.image_files, plan.sound_files, plan.null_images, plan.null_sounds)
    )  # the user's text may name paths relative to where it was: write them absolute
    atomic_write(out / "plan.toml", text if text is not None and not own else plan_toml(plan))
    atomic_write(saved, json.dumps(now, indent=2))


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"metamers.run.{out.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    handler = logging.FileHandler(out / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return log


def _stages(zoo: ZooModel, mp: ModelPlan) -> list[tuple[str, str]]:
    """(stage name, layer name) pairs of a model's plan, checked against the model's layers."""
    from metamers.taps import list_layers

    wanted = list(zoo.stages) if mp.layers == ("stages",) else list(mp.layers)
    if not wanted:
        raise PlanError(f"{zoo.name} has no default stages; list its layers (`metamers layers {zoo.name}`).")
    names = {lay.name for lay in list_layers(zoo.module, zoo.example())}
    out, seen = [], {}
    for w in wanted:
        layer = zoo.layer(w)
        if layer not in names:
            raise PlanError(
                f"{zoo.name} has no stage or layer {w!r}; its stages: {', '.join(zoo.stages)} "
                f"(`metamers layers {zoo.name}` lists every layer)."
            )
        if layer in seen:
            raise PlanError(
                f"model {zoo.name} lists the layer {layer} twice ({seen[layer]!r} and {w!r} name the same layer); "
                "keep one of them."
            )
        seen[layer] = w
        out.append((_safe(w), layer))
    return out


AUTO_BATCH = {"cpu": 4, "gpu": 32}
"""Stimuli per synthesis job when a plan says ``batch = "auto"``: on a CPU small jobs (more of them for more
workers; a CPU gains little from batching), on a GPU many stimuli in one optimisation."""


def job_batch(plan: Plan, gpu: bool) -> int:
    """Stimuli per synthesis job: the plan's number, or for ``"auto"`` :data:`AUTO_BATCH` of the device.

    Examples
    --------
    >>> from metamers.runs.plan import parse_plan
    >>> plan = parse_plan({"model": [{"name": "efficientnet-lite0", "layers": ["block_2"]}]})
    >>> job_batch(plan, gpu=False), job_batch(plan, gpu=True)
    (4, 32)
    """
    return plan.batch or AUTO_BATCH["gpu" if gpu else "cpu"]


def _resolved_batch(out: Path, plan: Plan, has_gpu: Callable[[], bool], log: logging.Logger) -> int:
    """The batch of this run: decided once, at its first session, and kept (a run resumed on another device keeps
    its jobs).  ``has_gpu`` is asked only when the plan leaves the batch to the device."""
    saved = out / "batch.json"
    if saved.exists():
        return int(json.loads(saved.read_text())["batch"])
    gpu = plan.batch is None and has_gpu()
    batch = job_batch(plan, gpu)
    why = "the plan's" if plan.batch else f"auto, for a {'GPU' if gpu else 'CPU'}"
    atomic_write(saved, json.dumps({"batch": batch, "why": why}))
    log.info("batch: %d stimuli per synthesis job (%s)", batch, why)
    return batch


def _jobs(plan: Plan, zoos: dict[str, ZooModel], batch: int) -> list[Job]:
    jobs = []
    for mp in plan.models:
        zoo = zoos[mp.name]
        names = plan.stimuli(zoo.kind)
        batches = [names[i : i + batch] for i in range(0, len(names), batch)]
        iterations = plan.settings(zoo.kind, model=mp.name).iterations
        for stage, layer in _stages(zoo, mp):
            for k, b in enumerate(batches):
                jobs.append(Job(zoo.name, zoo.kind, stage, layer, k, tuple(b), iterations))
    return jobs


def run_plan(
    plan: str | os.PathLike | Plan,
    out: str | os.PathLike,
    *,
    progress: bool | None = None,
    device: str | None = None,
    executor: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> dict:
    """Carry out a plan in ``out``; on a directory that already holds the same plan, go on where it stopped.

    Parameters
    ----------
    plan : path or Plan
        A TOML plan file (:mod:`metamers.runs.plan`) or a :class:`~metamers.runs.plan.Plan`.
    out : path
        The run directory (created if missing).
    progress : bool, optional
        One progress bar for the whole run (default: when standard error is a terminal).  The log is always
        written to ``out/run.log``.
    device : str, optional
        Where to synthesize (default: ``cuda`` when present, else ``cpu``); with Ray, each worker decides.
    executor : {"local", "ray"}
        Run the synthesis jobs in this process, or as tasks on a Ray cluster (``pip install metamers[ray]``;
        :mod:`metamers.runs.ray_executor`).  Validation, transfer and the report run here either way.
    address : str, optional
        The Ray cluster to join (e.g. ``"auto"`` or ``"ray://head:10001"``); default: a local one.
    workers : int, optional
        CPUs of the local Ray cluster started when no address is given (default: all); a task takes one.

    Returns
    -------
    dict
        ``{"jobs": {"done": n, "failed": n}, "failed": [messages], "accepted": n, "metamers": n,
        "report": path or None, "seconds": wall time of this session}``.

    Examples
    --------
    >>> summary = run_plan("plan.toml", "runs/first")  # doctest: +SKIP
    >>> summary["report"]  # doctest: +SKIP
    PosixPath('runs/first/report.html')
    """
    t0 = time.time()
    out = Path(out)
    if executor not in ("local", "ray"):
        raise RunError(f"executor {executor!r}: choose local (this process) or ray (a Ray cluster).")
    if executor == "ray":
        from metamers.runs.ray_executor import require_ray

        require_ray()
    text = None
    if not isinstance(plan, Plan):
        path = Path(plan)
        if path.is_dir():
            plan = plan_of(path)
        else:
            text = path.read_text() if path.is_file() else None
            plan = load_plan(path)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file, not a run directory; give another --out.")
    device = str(resolve_device(device if executor == "local" else None))  # Ray: each worker decides
    register_plan_models(plan)
    zoos = {mp.name: load_model(mp.name) for mp in plan.models}
    for mp in plan.models:  # every layer exists, every model's own settings make sense: checked before anything
        _stages(zoos[mp.name], mp)  # is written
        try:
            plan.settings(zoos[mp.name].kind, model=mp.name)
        except (TypeError, ValueError) as e:
            raise PlanError(f"model {mp.name} synthesis: {e}") from e
    _check_recognizers(plan, zoos)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        _fix_plan(out, plan, text)
        return _session(plan, out, zoos, t0, progress, device, executor, address, workers)


def _check_recognizers(plan: Plan, zoos: dict[str, ZooModel]) -> None:
    """Every recognizer loads, and judges some generator of the plan (one of its kind), or the plan is refused."""
    kinds = {z.kind for z in zoos.values()}
    for r in plan.recognizers:
        kind = zoos[r].kind if r in zoos else load_model(r).kind
        if kind not in kinds:
            raise PlanError(
                f"transfer.recognizers: {r} is a{'n' if kind[0] in 'aeiou' else ''} {kind} model, and the plan "
                f"generates no {kind} metamers (its models: {', '.join(zoos)}); recognizers judge generators of "
                "their own kind, so remove it or add a generator of that kind."
            )


def _session(
    plan: Plan,
    out: Path,
    zoos: dict[str, ZooModel],
    t0: float,
    progress: bool | None,
    device: str,
    executor: str,
    address: str | None,
    workers: int | None,
) -> dict:
    """One session of :func:`run_plan` in its locked, checked run directory."""
    log = _logger(out)

    def has_gpu() -> bool:
        if executor == "ray":
            from metamers.runs.ray_executor import cluster_gpus

            return cluster_gpus(address, workers) > 0
        return device.startswith("cuda")

    jobs = _jobs(plan, zoos, _resolved_batch(out, plan, has_gpu, log))
    catalog = Catalog(out, repair=True)
    if catalog.repaired is not None:
        log.warning("the catalog was damaged; set aside as %s, rebuilt from the results", catalog.repaired.name)
    host, pid = socket.gethostname(), os.getpid()
    log.info("session start: pid %d on %s, device %s, %d jobs in the plan %r", pid, host, device, len(jobs), plan.name)
    for job in jobs:
        if not catalog.query("SELECT 1 FROM jobs WHERE name=?", (job.name,)):
            catalog.set_job(
                job.name,
                step="synthesize",
                model=job.model,
                kind=job.kind,
                stage=job.stage,
                batch=job.batch,
                items=len(job.names),
                state="pending",
                output=job.result,
            )
    for step in ("validate", "transfer", "report"):
        if not catalog.query("SELECT 1 FROM jobs WHERE name=?", (step,)):
            catalog.set_job(step, step=step, state="pending")

    redo_damaged(out, jobs, catalog, log)
    synth_total = sum(j.iterations for j in jobs)
    done_before = {
        r["name"] for r in catalog.query("SELECT name FROM jobs WHERE step='synthesize' AND state='done'")
    } & {j.name for j in jobs}
    initial = sum(j.iterations for j in jobs if j.name in done_before and (out / j.result).exists())
    extra = {k: max(1, int(w * synth_total)) for k, w in _STEP_WEIGHT.items()}
    bar = Bar(synth_total + sum(extra.values()), initial, progress)
    failures: list[str] = []
    try:
        todo = []
        for mp in plan.models:  # the originals, as a person sees or hears them; a model whose stimuli fail fails
            zoo = zoos[mp.name]
            try:
                stimuli = natural_stimuli(plan, zoo, out)
            except Exception as e:  # e.g. a speech synthesiser that is not installed
                log.error("stimuli for %s could not be made: %s", zoo.name, e)
                for job in jobs:
                    if job.model == zoo.name:
                        catalog.set_job(job.name, state="failed", error=f"{type(e).__name__}: {e}")
                        failures.append(f"{job.name}: {type(e).__name__}: {e}")
                continue
            remember_inputs(plan, zoo, stimuli)
            todo += [j for j in jobs if j.model == zoo.name and not (j.name in done_before and complete(j, out))]
        todo = _stop_past_null(plan, zoos, todo, out, bar, log)
        if executor == "ray":
            from metamers.runs.ray_executor import run_on_ray

            results_of = run_on_ray(todo, plan, out, catalog, log, bar, address=address, workers=workers)
        else:
            results_of = {}
            for job in todo:
                mark_running(job, catalog, log, bar)
                results_of[job.name] = execute_job(job, plan, out, device, tick=bar.tick())
                record(job, results_of[job.name], catalog, log, bar)
        failures += [f"{n}: {r['error']}" for n, r in results_of.items() if r["state"] == "failed"]
        results = sorted(p.relative_to(out).as_posix() for p in (out / "results").glob("*.safetensors"))
        planned = {j.result for j in jobs}
        results = [r for r in results if r in planned]
        summary = {"jobs": {"done": len(jobs) - len(failures), "failed": len(failures)}, "failed": failures}
        if results:
            _steps(plan, out, results, catalog, bar, log, extra)
        else:
            log.error("no synthesis job finished; nothing to validate")
        bar.close()
    except BaseException as e:
        bar.close()
        log.error("session stopped: %s", type(e).__name__ if isinstance(e, KeyboardInterrupt) else e)
        for r in catalog.query("SELECT name FROM jobs WHERE state='running' AND pid=?", (pid,)):
            catalog.set_job(r["name"], state="interrupted")
        raise
    counts = catalog.query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(v.accepted), 0) AS accepted FROM metamers m "
        "JOIN validation v ON v.metamer_id = m.id"
    )[0]
    seconds = round(time.time() - t0, 1)
    record_session(out, device, t0, seconds, catalog)
    if catalog.query("SELECT 1 FROM jobs WHERE name='report' AND state='done'"):
        from metamers.report.html import write_report

        write_report(out)  # again, with this session's time and provenance
    log.info("session end after %.0f s: %d jobs done, %d failed", seconds, summary["jobs"]["done"], len(failures))
    report = out / "report.html"
    summary.update(
        metamers=counts["n"], accepted=counts["accepted"], seconds=seconds, report=report if report.exists() else None
    )
    return summary


def _validation_inputs(plan: Plan) -> tuple:
    """The plan's acceptance rule and its own null sets per modality: what validation uses, and what a stop past
    the null must use too, so that validation reuses the nulls computed before synthesis."""
    from metamers.validation import AcceptanceRule

    rule = AcceptanceRule(same_label=plan.same_label, null_percentile=plan.percentile)
    return rule, {k: f for k in ("image", "audio") if (f := plan.null_files(k)) is not None}


def _stop_past_null(
    plan: Plan, zoos: dict[str, ZooModel], todo: list[Job], out: Path, bar: Bar, log: logging.Logger
) -> list[Job]:
    """The jobs with each one's ``stop_rho`` set from its layer's null, for the models whose synthesis table has
    ``stop_past_null``: rho must close that fraction of the gap between the null's threshold and 1 (or reach the
    plan's ``stop_rho``, if higher). The nulls are the validation's, computed now and reused by it."""
    import dataclasses

    from metamers.runs.validate import null_thresholds

    rule, own = _validation_inputs(plan)
    stops: dict[tuple[str, str], float] = {}
    for model in dict.fromkeys(j.model for j in todo):
        zoo = zoos[model]
        fraction = plan.stop_past_null(zoo.kind, model)
        if fraction is None:
            continue
        bar.describe(f"nulls of {model}")
        layers = list(dict.fromkeys(j.layer for j in todo if j.model == model))
        try:
            null = null_thresholds(out, zoo, layers, plan.pairs, rule, plan.seed, own)
        except (OSError, ValueError) as e:  # e.g. no speech synthesiser for the built-in speech null
            raise RunError(
                f"stop_past_null needs the null of each of {model}'s generating layers before synthesis, and it could "
                f"not be computed: {e}. Fix that, or stop on stop_rho alone (remove stop_past_null)."
            ) from e
        for layer, t in null.items():
            stops[(model, layer)] = t + fraction * (1 - t)
            stop = plan.settings(zoo.kind, stops[(model, layer)], model).stop_rho
            log.info("%s %s: the null's threshold is %.4f; each metamer stops at rho >= %.4f (stop_past_null %g)",
                     model, layer, t, stop, fraction)  # fmt: skip
    return [dataclasses.replace(j, stop_rho=stops[(j.model, j.layer)]) if (j.model, j.layer) in stops else j
            for j in todo]  # fmt: skip


def _steps(
    plan: Plan, out: Path, results: list[str], catalog: Catalog, bar: Bar, log: logging.Logger, extra: dict
) -> None:
    """Validation, transfer and the report, each skipped when its inputs are unchanged since it last finished."""
    from metamers.report.html import write_report
    from metamers.runs.transfer import transfer_dir
    from metamers.runs.validate import validate_dir

    sizes = [(r, (out / r).stat().st_size, (out / r).stat().st_mtime_ns) for r in results]
    keys = {
        "validate": fingerprint(sizes, plan.pairs, plan.percentile, plan.same_label, plan.source, plan.seed),
    }
    keys["transfer"] = fingerprint(keys["validate"], plan.recognizers, plan.spaces)

    def step(name: str, fn) -> None:
        row = catalog.query("SELECT state, output FROM jobs WHERE name=?", (name,))
        if name in keys and row and row[0]["state"] == "done" and row[0]["output"] == keys[name]:
            bar.add(extra[name])
            return
        bar.describe(name)
        catalog.set_job(
            name, state="running", pid=os.getpid(), host=socket.gethostname(), started=time.time(), error=None
        )
        log.info("start %s", name)
        t = time.time()
        try:
            fn()
        except Exception as e:
            catalog.set_job(name, state="failed", error=f"{type(e).__name__}: {e}", finished=time.time())
            log.exception("failed %s", name)
            raise RunError(f"the {name} step failed: {e} (details in {out / 'run.log'})") from e
        catalog.set_job(
            name, state="done", finished=time.time(), seconds=round(time.time() - t, 1), output=keys.get(name)
        )
        log.info("done %s in %.0f s", name, time.time() - t)
        bar.add(extra[name])

    rule, own_nulls = _validation_inputs(plan)
    step(
        "validate",
        lambda: validate_dir(
            out, n_pairs=plan.pairs, rule=rule, source=plan.source, seed=plan.seed, null_files=own_nulls
        ),
    )
    if plan.recognizers:
        step("transfer", lambda: transfer_dir(out, plan.recognizers, source=plan.source, spaces=plan.spaces))
    else:
        catalog.set_job("transfer", state="skipped", error="the plan names no recognizers")
        bar.add(extra["transfer"])
    step("report", lambda: write_report(out))
