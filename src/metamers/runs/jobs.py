"""Synthesis jobs and their execution: one model, layer and batch of stimuli each, run in this process or on a Ray
worker, sharing one way of loading models and stimuli, of recording outcomes, and of telling a finished job.

:func:`execute_job` writes a job's result and media; :func:`mark_running` and :func:`record` put its state in the
catalog (the local loop and the Ray executor's driver both call them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from metamers._files import DamagedFile, media_problem, safetensors_problem, set_aside
from metamers.models import ZooModel, load
from metamers.runs.catalog import Catalog
from metamers.runs.media import initial_noise, media_files, natural_stimuli, write_media
from metamers.runs.own import model_spec, register_plan_models
from metamers.runs.plan import Plan, PlanError
from metamers.runs.session import Bar
from metamers.settings import SynthesisSettings
from metamers.synthesis import CheckpointMismatch, SynthesisResult, synthesize

__all__ = [
    "Job",
    "complete",
    "execute_job",
    "fingerprint",
    "load_model",
    "mark_running",
    "record",
    "redo_damaged",
    "remember_inputs",
]


@dataclass(frozen=True)
class Job:
    model: str
    kind: str
    stage: str
    layer: str
    batch: int
    names: tuple[str, ...]
    iterations: int
    stop_rho: float | None = None  # the rho its layer's null asks (a plan's stop_past_null; set by the run)

    @property
    def name(self) -> str:
        return f"synthesize:{self.model}:{self.stage}:b{self.batch}"

    @property
    def stem(self) -> str:
        return f"{self.model}__{self.stage}__b{self.batch}"

    @property
    def result(self) -> str:
        return f"results/{self.stem}.safetensors"


def load_model(name: str) -> ZooModel:
    from metamers.models.user import UserModelError

    try:
        return load(name)
    except UserModelError as e:
        raise PlanError(f"model {name}: {e}") from e
    except KeyError as e:
        raise PlanError(str(e).strip('"')) from e
    except (RuntimeError, FileNotFoundError) as e:
        raise PlanError(f"model {name!r} cannot be loaded here: {e}") from e


def reusable(
    result: SynthesisResult, settings: SynthesisSettings, stimuli: torch.Tensor, names: Sequence[str], weights_id: str
) -> bool:
    """Whether a finished result is the synthesis asked for now, so that it need not run again: the same settings,
    the same stimuli (names and values) and the same weights (a user who changed their model's weights gets new
    metamers; a result from before weights were recorded counts as the same).

    Stimulus values count as the same within :data:`_SAME_STIMULUS` (1e-5): making a stimulus rounds differently
    with another number of threads (a waveform's resampling and level by about 1e-7, a cochleagram's FFTs and
    compression by 2e-6), and a run resumed with another thread count must not redo its finished work. That is 3
    times finer than a 16-bit WAV's step and 400 times finer than an 8-bit PNG's.

    A result made with another cap on the iterations is the same synthesis when every metamer stopped by the
    plan's rule before either cap: the path of an optimisation does not depend on its cap, so raising the cap for
    the metamers that did not stop keeps those that did."""
    return (
        _same_synthesis(result, settings)
        and result.extra.get("stimuli") == list(names)
        and result.stimuli.shape == stimuli.shape
        and torch.allclose(result.stimuli.float(), stimuli.float(), rtol=0.0, atol=_SAME_STIMULUS)
        and result.extra.get("weights_id", weights_id) == weights_id
    )


_SAME_STIMULUS = 1e-5


def _same_synthesis(result: SynthesisResult, settings: SynthesisSettings) -> bool:
    """The same settings, or settings that differ in the cap alone, with every item stopped before both caps."""
    if result.settings == settings:
        return True
    if result.settings.replace(iterations=settings.iterations) != settings:
        return False
    stopped = all(reason != "completed" for reason in result.stop_reason)
    return stopped and max(result.stop_iteration) < min(result.settings.iterations, settings.iterations)


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


_MODELS: dict[str, ZooModel] = {}
_STIMULI: dict[tuple[str, str], torch.Tensor] = {}
"""Per process: models and stimuli already made (a worker runs many jobs of the same models)."""


def remember_inputs(plan: Plan, zoo: ZooModel, stimuli: torch.Tensor) -> None:
    """Keep a model and its natural stimuli for the jobs this process runs (the local loop made them already)."""
    _MODELS[zoo.name] = zoo
    _STIMULI[(_plan_key(plan), zoo.name)] = stimuli


def _plan_key(plan: Plan) -> str:
    return fingerprint(plan.to_dict())


def _job_inputs(job: Job, plan: Plan) -> tuple[ZooModel, torch.Tensor]:
    """The job's model and stimuli, made once per process."""
    if job.model not in _MODELS:
        register_plan_models(plan)  # a Ray worker's process has not seen the plan's own models yet
        _MODELS[job.model] = load_model(job.model)
    zoo = _MODELS[job.model]
    key = (_plan_key(plan), zoo.name)
    if key not in _STIMULI:
        _STIMULI[key] = natural_stimuli(plan, zoo, None)
    order = plan.stimuli(zoo.kind)  # once: with stimulus files, each call reads the folder
    index = [order.index(n) for n in job.names]
    return zoo, _STIMULI[key][index]


def complete(job: Job, out: Path) -> bool:
    """A done job's files are all there and read: its result and every media file. A damaged media file is set
    aside (``.corrupt``); the job then writes it again from its result, without synthesizing again."""
    if not (out / job.result).exists():
        return False
    whole = True
    for m in media_files(job.kind, job.model, job.stage, job.names):
        path = out / m
        if not path.exists():
            whole = False
        elif media_problem(path) is not None:
            set_aside(path)
            whole = False
    return whole


def redo_damaged(out: Path, jobs: list[Job], catalog: Catalog, log: logging.Logger) -> None:
    """Results that cannot be read are set aside (``.corrupt``) and their jobs made pending, to be redone now; a
    damaged null is set aside and the validation made pending (it computes the null again)."""
    for job in jobs:
        path = out / job.result
        why = safetensors_problem(path) if path.exists() else None
        if why is not None:
            moved = set_aside(path)
            catalog.set_job(job.name, state="pending", error=f"damaged result set aside as {moved.name}: {why}")
            log.warning("%s is damaged (%s); set aside as %s, redoing %s", job.result, why, moved.name, job.name)
    for null in sorted((out / "nulls").glob("*.safetensors")):  # a cache of validation: redo the validation
        why = safetensors_problem(null)
        if why is not None:
            moved = set_aside(null)
            catalog.set_job("validate", state="pending", error=f"damaged null set aside as {moved.name}: {why}")
            log.warning("nulls/%s is damaged (%s); set aside as %s, validating again", null.name, why, moved.name)


def execute_job(
    job: Job, plan: Plan, out: str | os.PathLike, device: str = "cpu", tick: Callable[[int], None] | None = None
) -> dict:
    """Run one synthesis job in this process and write its result and media into the run directory ``out``.

    It writes no catalog: whoever runs it (the local loop, or a Ray worker's driver) records the returned state.
    A finished result with the same settings and stimuli is kept; an interrupted one resumes from its checkpoint;
    ``checkpoints/<job>.pid`` names the process working on it while it runs.

    Returns
    -------
    dict
        ``{"state": "done" or "failed", "error": message or None, "seconds", "rho": [rho at the layer, ...],
        "reused": whether the result was already there, "pid", "host"}``.
    """
    out = Path(out)
    t = time.time()
    info = {"pid": os.getpid(), "host": socket.gethostname(), "reused": False, "rho": [], "error": None}
    try:
        zoo, x = _job_inputs(job, plan)
        settings = plan.settings(job.kind, null_stop=job.stop_rho, model=job.model).replace(seed=plan.seed + job.batch)
        if zoo.kind == "cochleagram":  # a cochleagram is bounded below by 0, not a waveform's [-1, 1]
            settings = settings.replace(bounds=zoo.bounds)
        path = out / job.result
        r = _finished(path)
        if r is not None:
            if reusable(r, settings, x, job.names, zoo.weights_id):
                # it may have been killed between the result and its media
                write_media(zoo, r, job.names, job.stage, out)
                return {**info, "state": "done", "reused": True, "seconds": 0.0, "rho": r.layer_rho.tolist()}
        ckpt = out / "checkpoints" / f"{job.stem}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        pidfile = ckpt.with_suffix(".pid")
        pidfile.write_text(f"{os.getpid()} {socket.gethostname()}\n")
        seen = [0]

        def step(iteration: int, _x: torch.Tensor) -> None:
            if tick is not None:
                tick(iteration - seen[0])
            seen[0] = iteration

        def run() -> SynthesisResult:
            return synthesize(
                zoo.module,
                x.to(device),
                job.layer,
                settings,
                init=initial_noise(zoo, settings, len(job.names)),
                checkpoint=ckpt,
                checkpoint_every=plan.checkpoint_every(job.kind, job.model),
                progress=False,
                callback=step,
            )

        try:
            r = run()
        except CheckpointMismatch:
            # a checkpoint of another synthesis of this job: the plan's settings changed, or its stimuli were made
            # with another thread count (they differ by ~1e-7, and the checkpoint's fingerprint is exact). Start
            # over rather than fail on every resume; the old state is kept aside.
            info["stale_checkpoint"] = set_aside(ckpt).name
            seen[0] = 0
            r = run()
        r.extra.update(
            model=zoo.name,
            stimuli=list(job.names),
            stage=job.stage,
            batch=job.batch,
            kind=job.kind,
            speech=plan.speech if job.kind != "image" and plan.files(job.kind) is None else None,
            labels=[given.get(n) for n in job.names] if (given := plan.stimulus_labels(job.kind)) else None,
            model_spec=_spec_of(plan, job.model),
            weights_id=zoo.weights_id,
        )
        r.save(path)
        write_media(zoo, r, job.names, job.stage, out)
        ckpt.unlink(missing_ok=True)
        pidfile.unlink(missing_ok=True)
    except Exception as e:
        import traceback

        return {**info, "state": "failed", "error": f"{type(e).__name__}: {e}", "seconds": round(time.time() - t, 1),
                "traceback": traceback.format_exc()}  # fmt: skip
    return {**info, "state": "done", "seconds": round(time.time() - t, 1), "rho": r.layer_rho.tolist()}


def _spec_of(plan: Plan, model: str) -> dict | None:
    """The user-model spec a result records (None for a zoo model): the result then names how to build its model."""
    found = plan.model(model)
    spec = found.spec if found else None
    return model_spec(model, spec).to_dict() if spec else None


def _finished(path: Path) -> SynthesisResult | None:
    """The job's finished result, or None: none yet, or a damaged one, which is set aside to be redone."""
    try:
        return SynthesisResult.load(path)
    except FileNotFoundError:
        return None
    except DamagedFile:
        set_aside(path)
        return None


def mark_running(job: Job, catalog: Catalog, log: logging.Logger, bar: Bar, host: str | None = None) -> None:
    bar.describe(f"{job.model} {job.stage} b{job.batch}")
    catalog.set_job(job.name, state="running", pid=os.getpid(), host=host or socket.gethostname(),
                    started=time.time(), error=None)  # fmt: skip
    log.info("start %s (%d stimuli, %d iterations)", job.name, len(job.names), job.iterations)


def record(job: Job, res: dict, catalog: Catalog, log: logging.Logger, bar: Bar) -> None:
    """Write a finished job's state to the catalog and the log; complete its share of the progress bar."""
    bar.finish(job.iterations)
    where = f" on {res.get('host')} (pid {res.get('pid')})" if res.get("pid") != os.getpid() else ""
    if res["state"] == "failed":
        catalog.set_job(job.name, state="failed", error=res["error"], finished=time.time(), seconds=res["seconds"])
        log.error("failed %s%s: %s\n%s", job.name, where, res["error"], res.get("traceback", ""))
        return
    catalog.set_job(job.name, state="done", error=None, finished=time.time(), seconds=res["seconds"])
    if res.get("stale_checkpoint"):
        log.warning("%s: its checkpoint was of another synthesis (settings or stimuli changed); set aside as %s and "
                    "started over", job.name, res["stale_checkpoint"])  # fmt: skip
    rho = ", ".join(f"{v:.3f}" for v in res["rho"])
    if res["reused"]:
        log.info("found finished %s%s: rho at the layer %s", job.name, where, rho)
    else:
        log.info("done %s%s in %.0f s: rho at the layer %s", job.name, where, res["seconds"], rho)
