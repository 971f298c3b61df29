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

import hashlib
import json
import logging
import os
import platform
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from metamers.models import ZooModel, load
from metamers.runs.catalog import Catalog
from metamers.runs.plan import ModelPlan, Plan, PlanError, load_plan, plan_toml
from metamers.synthesis import SynthesisResult, synthesize

__all__ = ["RunError", "execute_job", "format_status", "media_path", "plan_of", "run_plan", "run_status"]

_STEP_WEIGHT = {"validate": 0.15, "transfer": 0.05, "report": 0.01}
"""Work of the steps after synthesis, as a fraction of the synthesis iterations (for the progress estimate)."""


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class _Job:
    model: str
    kind: str
    stage: str
    layer: str
    batch: int
    names: tuple[str, ...]
    iterations: int

    @property
    def name(self) -> str:
        return f"synthesize:{self.model}:{self.stage}:b{self.batch}"

    @property
    def stem(self) -> str:
        return f"{self.model}__{self.stage}__b{self.batch}"

    @property
    def result(self) -> str:
        return f"results/{self.stem}.safetensors"


def media_path(model: str, stage: str, stimulus: str, kind: str) -> str:
    """Where a run keeps what a person sees or hears of a metamer (``stage="original"`` for the stimulus).

    Examples
    --------
    >>> media_path("efficientnet-lite0", "block_2", "chelsea", "image")
    'media/efficientnet-lite0/block_2/chelsea.png'

    Sounds are WAV files (with ``<stimulus>_cochleagram.png`` beside them); metamers of a cochleagram view are the
    cochleagram image itself.
    """
    return f"media/{model}/{stage}/{stimulus}.{'wav' if kind == 'audio' else 'png'}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def plan_of(directory: str | os.PathLike) -> Plan:
    """The plan a run directory was started with."""
    directory = Path(directory)
    if (directory / "plan.toml").is_file():
        return load_plan(directory / "plan.toml")
    if (directory / "plan.json").is_file():
        return Plan.from_dict(json.loads((directory / "plan.json").read_text()))
    raise RunError(f"{directory} is not a run directory (no plan.toml); start one with `metamers run PLAN --out DIR`.")


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
    _atomic_write(out / "plan.toml", text if text is not None else plan_toml(plan))
    _atomic_write(saved, json.dumps(now, indent=2))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def _load_model(name: str) -> ZooModel:
    try:
        return load(name)
    except KeyError as e:
        raise PlanError(str(e).strip('"')) from e
    except (RuntimeError, FileNotFoundError) as e:
        raise PlanError(f"model {name!r} cannot be loaded here: {e}") from e


def _stages(zoo: ZooModel, mp: ModelPlan) -> list[tuple[str, str]]:
    """(stage name, layer name) pairs of a model's plan, checked against the model's layers."""
    from metamers.taps import list_layers

    wanted = list(zoo.stages) if mp.layers == ("stages",) else list(mp.layers)
    if not wanted:
        raise PlanError(f"{zoo.name} has no default stages; list its layers (`metamers layers {zoo.name}`).")
    names = {lay.name for lay in list_layers(zoo.module, zoo.example())}
    out = []
    for w in wanted:
        layer = zoo.layer(w)
        if layer not in names:
            raise PlanError(
                f"{zoo.name} has no stage or layer {w!r}; its stages: {', '.join(zoo.stages)} "
                f"(`metamers layers {zoo.name}` lists every layer)."
            )
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
    _atomic_write(saved, json.dumps({"batch": batch, "why": why}))
    log.info("batch: %d stimuli per synthesis job (%s)", batch, why)
    return batch


def _jobs(plan: Plan, zoos: dict[str, ZooModel], batch: int) -> list[_Job]:
    jobs = []
    for mp in plan.models:
        zoo = zoos[mp.name]
        names = plan.stimuli(zoo.kind)
        batches = [names[i : i + batch] for i in range(0, len(names), batch)]
        iterations = plan.settings(zoo.kind).iterations
        for stage, layer in _stages(zoo, mp):
            for k, b in enumerate(batches):
                jobs.append(_Job(zoo.name, zoo.kind, stage, layer, k, tuple(b), iterations))
    return jobs


def _stimuli(plan: Plan, zoo: ZooModel, out: Path | None) -> torch.Tensor:
    """The natural stimuli of a model (all of them, in plan order), written to the run's media as they are shown
    (unless ``out`` is None)."""
    names = plan.stimuli(zoo.kind)
    if zoo.kind == "image":
        from metamers.stimuli import load_photos, save_png

        x, _ = load_photos(names, size=zoo.input_shape[-1])
        for i, n in enumerate(names if out is not None else ()):
            save_png(x[i], out / media_path(zoo.name, "original", n, "image"))
        return x
    from metamers.runs.audio import word_clips

    if zoo.kind == "cochleagram":
        with torch.no_grad():
            x = zoo.frontend(word_clips(names, source=plan.speech, n_samples=zoo.frontend.settings.n_samples))
        if out is not None:
            _write_cochleagrams(zoo, x, names, "original", out, like=x)
        return x
    x = word_clips(names, source=plan.speech, n_samples=zoo.input_shape[-1])
    if out is not None:
        _write_audio(zoo, x, names, "original", out)
    return x


def _write_cochleagrams(
    zoo: ZooModel, c: torch.Tensor, names: Sequence[str], stage: str, out: Path, like: torch.Tensor
) -> None:
    from metamers.report.figures import cochleagram_image

    top = like.amax(dim=(1, 2, 3))
    for i, n in enumerate(names):
        cochleagram_image(c[i, 0], out / media_path(zoo.name, stage, n, zoo.kind), vmax=float(top[i]))


def _initial(zoo: ZooModel, settings, n: int) -> torch.Tensor | None:
    """The initial noise of a cochleagram view: pink noise at the audio RMS, through the cochleagram; else None."""
    if zoo.kind != "cochleagram":
        return None
    from metamers.noise import pink_noise

    wave = pink_noise((n, zoo.frontend.settings.n_samples), rms_level=settings.init_scale or 0.01, seed=settings.seed)
    with torch.no_grad():
        return zoo.frontend(wave)


def _write_audio(
    zoo: ZooModel, x: torch.Tensor, names: Sequence[str], stage: str, out: Path, like: torch.Tensor | None = None
) -> None:
    """WAV files and cochleagram images; each cochleagram on the colour scale of its stimulus's (``like``)."""
    from metamers.audio.signal import write_wav
    from metamers.report.figures import cochleagram_image

    coch = zoo.module.preprocess
    device = next(coch.buffers()).device
    with torch.no_grad():
        c = coch(x.to(device)).cpu()
        top = coch((x if like is None else like).to(device)).cpu().amax(dim=(1, 2, 3))
    for i, n in enumerate(names):
        wav = out / media_path(zoo.name, stage, n, "audio")
        write_wav(wav, x[i], coch.settings.sr)
        cochleagram_image(c[i, 0], wav.with_name(f"{n}_cochleagram.png"), vmax=float(top[i]))


def _write_media(zoo: ZooModel, result: SynthesisResult, job: _Job, out: Path) -> None:
    if zoo.kind == "image":
        from metamers.stimuli import save_png

        for i, n in enumerate(job.names):
            save_png(result.metamers[i], out / media_path(zoo.name, job.stage, n, "image"))
    elif zoo.kind == "cochleagram":
        _write_cochleagrams(zoo, result.metamers, job.names, job.stage, out, like=result.stimuli)
    else:
        _write_audio(zoo, result.metamers, job.names, job.stage, out, like=result.stimuli)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _provenance(device: str) -> dict:
    import numpy

    from metamers.synthesis import _version

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "metamers": _version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": gpu,
        "host": socket.gethostname(),
    }


class _Bar:
    """One progress bar over the whole run, in units of synthesis iterations (the later steps are estimated)."""

    def __init__(self, total: int, initial: int, show: bool | None) -> None:
        import sys

        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if show is None else show
        self.bar = tqdm(total=total, initial=initial, unit="it", desc="run", disable=not show, dynamic_ncols=True)

    def describe(self, text: str) -> None:
        self.bar.set_description_str(text[:60])

    def add(self, n: int) -> None:
        if n > 0:
            self.bar.update(n)

    def tick(self) -> Callable[[int], None]:
        """A counter for one job: iterations it reports are added, and :meth:`finish` adds the rest."""
        self._job = 0

        def add(n: int) -> None:
            self._job += n
            self.add(n)

        return add

    def finish(self, iterations: int) -> None:
        """A job ended: count whatever of its iterations the bar has not seen (resumed or failed ones)."""
        self.add(iterations - getattr(self, "_job", 0))
        self._job = 0

    def close(self) -> None:
        self.bar.close()


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
    zoos = {mp.name: _load_model(mp.name) for mp in plan.models}
    for mp in plan.models:  # every layer exists: checked before anything is written
        _stages(zoos[mp.name], mp)
    for r in plan.recognizers:
        if r not in zoos:
            _load_model(r)
    _fix_plan(out, plan, text)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    log = _logger(out)

    def has_gpu() -> bool:
        if executor == "ray":
            from metamers.runs.ray_executor import cluster_gpus

            return cluster_gpus(address, workers) > 0
        return device.startswith("cuda")

    jobs = _jobs(plan, zoos, _resolved_batch(out, plan, has_gpu, log))
    catalog = Catalog(out)
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

    synth_total = sum(j.iterations for j in jobs)
    done_before = {
        r["name"] for r in catalog.query("SELECT name FROM jobs WHERE step='synthesize' AND state='done'")
    } & {j.name for j in jobs}
    initial = sum(j.iterations for j in jobs if j.name in done_before and (out / j.result).exists())
    extra = {k: max(1, int(w * synth_total)) for k, w in _STEP_WEIGHT.items()}
    bar = _Bar(synth_total + sum(extra.values()), initial, progress)
    failures: list[str] = []
    try:
        todo = []
        for mp in plan.models:  # the originals, as a person sees or hears them; a model whose stimuli fail fails
            zoo = zoos[mp.name]
            try:
                _STIMULI[(_plan_key(plan), zoo.name)] = _stimuli(plan, zoo, out)
            except Exception as e:  # e.g. a speech synthesiser that is not installed
                log.error("stimuli for %s could not be made: %s", zoo.name, e)
                for job in jobs:
                    if job.model == zoo.name:
                        catalog.set_job(job.name, state="failed", error=f"{type(e).__name__}: {e}")
                        failures.append(f"{job.name}: {type(e).__name__}: {e}")
                continue
            _MODELS[zoo.name] = zoo
            todo += [
                j for j in jobs if j.model == zoo.name and not (j.name in done_before and (out / j.result).exists())
            ]
        if executor == "ray":
            from metamers.runs.ray_executor import run_on_ray

            results_of = run_on_ray(todo, plan, out, catalog, log, bar, address=address, workers=workers)
        else:
            results_of = {}
            for job in todo:
                _mark_running(job, catalog, log, bar)
                results_of[job.name] = execute_job(job, plan, out, device, tick=bar.tick())
                _record(job, results_of[job.name], catalog, log, bar)
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
    _record_session(out, device, t0, seconds, catalog)
    if catalog.query("SELECT 1 FROM jobs WHERE name='report' AND state='done'"):
        from metamers.report.html import write_report

        write_report(out)  # again, with this session's time and provenance
    log.info("session end after %.0f s: %d jobs done, %d failed", seconds, summary["jobs"]["done"], len(failures))
    report = out / "report.html"
    summary.update(
        metamers=counts["n"], accepted=counts["accepted"], seconds=seconds, report=report if report.exists() else None
    )
    return summary


_MODELS: dict[str, ZooModel] = {}
_STIMULI: dict[tuple[str, str], torch.Tensor] = {}
"""Per process: models and stimuli already made (a worker runs many jobs of the same models)."""


def _plan_key(plan: Plan) -> str:
    return _fingerprint(plan.to_dict())


def _job_inputs(job: _Job, plan: Plan) -> tuple[ZooModel, torch.Tensor]:
    """The job's model and stimuli, made once per process."""
    if job.model not in _MODELS:
        _MODELS[job.model] = _load_model(job.model)
    zoo = _MODELS[job.model]
    key = (_plan_key(plan), zoo.name)
    if key not in _STIMULI:
        _STIMULI[key] = _stimuli(plan, zoo, None)
    index = [plan.stimuli(zoo.kind).index(n) for n in job.names]
    return zoo, _STIMULI[key][index]


def execute_job(
    job: _Job, plan: Plan, out: str | os.PathLike, device: str = "cpu", tick: Callable[[int], None] | None = None
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
        settings = plan.settings(job.kind).replace(seed=plan.seed + job.batch)
        if zoo.kind == "cochleagram":  # a cochleagram is bounded below by 0, not a waveform's [-1, 1]
            settings = settings.replace(bounds=zoo.bounds)
        path = out / job.result
        if path.exists():
            r = SynthesisResult.load(path)
            if r.settings == settings and r.extra.get("stimuli") == list(job.names) and torch.equal(r.stimuli, x):
                _write_media(zoo, r, job, out)  # it may have been killed between the result and its media
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

        r = synthesize(
            zoo.module,
            x.to(device),
            job.layer,
            settings,
            init=_initial(zoo, settings, len(job.names)),
            checkpoint=ckpt,
            checkpoint_every=plan.checkpoint_every(job.kind),
            progress=False,
            callback=step,
        )
        r.extra.update(
            model=zoo.name,
            stimuli=list(job.names),
            stage=job.stage,
            batch=job.batch,
            kind=job.kind,
            speech=plan.speech if job.kind != "image" else None,
        )
        r.save(path)
        _write_media(zoo, r, job, out)
        ckpt.unlink(missing_ok=True)
        pidfile.unlink(missing_ok=True)
    except Exception as e:
        import traceback

        return {**info, "state": "failed", "error": f"{type(e).__name__}: {e}", "seconds": round(time.time() - t, 1),
                "traceback": traceback.format_exc()}  # fmt: skip
    return {**info, "state": "done", "seconds": round(time.time() - t, 1), "rho": r.layer_rho.tolist()}


def _mark_running(job: _Job, catalog: Catalog, log: logging.Logger, bar: _Bar, host: str | None = None) -> None:
    bar.describe(f"{job.model} {job.stage} b{job.batch}")
    catalog.set_job(job.name, state="running", pid=os.getpid(), host=host or socket.gethostname(),
                    started=time.time(), error=None)  # fmt: skip
    log.info("start %s (%d stimuli, %d iterations)", job.name, len(job.names), job.iterations)


def _record(job: _Job, res: dict, catalog: Catalog, log: logging.Logger, bar: _Bar) -> None:
    """Write a finished job's state to the catalog and the log; complete its share of the progress bar."""
    bar.finish(job.iterations)
    where = f" on {res.get('host')} (pid {res.get('pid')})" if res.get("pid") != os.getpid() else ""
    if res["state"] == "failed":
        catalog.set_job(job.name, state="failed", error=res["error"], finished=time.time(), seconds=res["seconds"])
        log.error("failed %s%s: %s\n%s", job.name, where, res["error"], res.get("traceback", ""))
        return
    catalog.set_job(job.name, state="done", error=None, finished=time.time(), seconds=res["seconds"])
    rho = ", ".join(f"{v:.3f}" for v in res["rho"])
    if res["reused"]:
        log.info("found finished %s%s: rho at the layer %s", job.name, where, rho)
    else:
        log.info("done %s%s in %.0f s: rho at the layer %s", job.name, where, res["seconds"], rho)


def _steps(
    plan: Plan, out: Path, results: list[str], catalog: Catalog, bar: _Bar, log: logging.Logger, extra: dict
) -> None:
    """Validation, transfer and the report, each skipped when its inputs are unchanged since it last finished."""
    from metamers.report.html import write_report
    from metamers.runs.transfer import transfer_dir
    from metamers.runs.validate import validate_dir
    from metamers.validation import AcceptanceRule

    sizes = [(r, (out / r).stat().st_size, (out / r).stat().st_mtime_ns) for r in results]
    keys = {
        "validate": _fingerprint(sizes, plan.pairs, plan.percentile, plan.same_label, plan.source, plan.seed),
    }
    keys["transfer"] = _fingerprint(keys["validate"], plan.recognizers, plan.spaces)

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

    rule = AcceptanceRule(same_label=plan.same_label, null_percentile=plan.percentile)
    step("validate", lambda: validate_dir(out, n_pairs=plan.pairs, rule=rule, source=plan.source, seed=plan.seed))
    if plan.recognizers:
        step("transfer", lambda: transfer_dir(out, plan.recognizers, source=plan.source, spaces=plan.spaces))
    else:
        catalog.set_job("transfer", state="skipped", error="the plan names no recognizers")
        bar.add(extra["transfer"])
    step("report", lambda: write_report(out))


def _record_session(out: Path, device: str, t0: float, seconds: float, catalog: Catalog) -> None:
    path = out / "run.json"
    info = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    info["provenance"] = _provenance(device)
    info["sessions"].append({"started": t0, "seconds": seconds, "pid": os.getpid(), "host": socket.gethostname()})
    info["steps"] = {r["name"]: r["seconds"] for r in catalog.query("SELECT name, seconds FROM jobs")}
    _atomic_write(path, json.dumps(info, indent=2))


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


def run_status(directory: str | os.PathLike) -> dict:
    """What a run has done: each job's state, counts per model and stage, accepted metamers.

    A job marked running whose process is gone (killed) is reported as ``interrupted``: the next ``metamers run``
    on the directory resumes it from its checkpoint.

    Returns
    -------
    dict
        ``{"plan": name, "stages": [{"model", "stage", "done", "running", "failed", "pending", "interrupted",
        "batches", "metamers", "accepted"}], "steps": {name: state}, "failed": [(job, error)], "log": path}``.
    """
    directory = Path(directory)
    plan = plan_of(directory)
    catalog = Catalog(directory)
    rows = catalog.query("SELECT * FROM jobs ORDER BY rowid")
    for r in rows:
        if r["state"] == "running" and not _alive(r["pid"], r["host"]):
            r["state"] = "interrupted"
    accepted = {
        (a["model"], a["stage"]): a
        for a in catalog.query(
            "SELECT j.model, j.stage, COUNT(v.metamer_id) AS n, COALESCE(SUM(v.accepted), 0) AS accepted FROM jobs j "
            "JOIN metamers m ON m.result_file = j.output JOIN validation v ON v.metamer_id = m.id "
            "WHERE j.step='synthesize' GROUP BY j.model, j.stage"
        )
    }
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
    if total["interrupted"] or any(v in ("interrupted", "pending") for v in status["steps"].values()):
        lines.append(f"resume with: metamers run {status['directory']}")
    lines.append(f"log: {status['log']}")
    if status["report"]:
        lines.append(f"report: {status['report']}")
    return "\n".join(lines)
