"""Synthesis jobs as tasks on a Ray cluster: ``metamers run PLAN --out DIR --executor ray [--address ...]``.

Ray is optional (``pip install 'metamers[ray]'``).  The driver (the process that runs :func:`metamers.runs.run_plan`)
makes the plan's jobs as a local run does, submits the unfinished ones as Ray tasks (one CPU each, or one GPU each
when the cluster has GPUs), records each task's outcome in the run's catalog as it arrives, then validates, transfers
and reports locally.  A task runs :func:`metamers.runs.run.execute_job` in a worker: it writes its result and media
into the run directory, which every worker must see (a local cluster, or a shared filesystem on Slurm and in the
cloud: see ``docs/ray.md``), and it checkpoints as a local job does.  A worker that dies mid-task loses only what it
computed since its last checkpoint: Ray retries the task (up to ``max_retries`` times) and the retry resumes from the
checkpoint.  A killed driver loses nothing either: run the same command again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from metamers.runs.catalog import Catalog
from metamers.runs.jobs import execute_job, mark_running, record
from metamers.runs.rundir import RunError

__all__ = ["require_ray", "run_on_ray"]


def require_ray():
    """The ``ray`` module, or a :class:`~metamers.runs.rundir.RunError` that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RunError(
            "the ray executor needs Ray, which is not installed: pip install 'metamers[ray]' (or run without "
            "--executor ray, in this process)."
        ) from e
    return ray


def _task(job, plan, out: str, threads: int) -> dict:
    """One job in a Ray worker: torch limited to the CPUs Ray gave the task; the GPU when it was given one."""
    import ray
    import torch

    torch.set_num_threads(max(1, threads))
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return execute_job(job, plan, out, device)


_started_here = False
"""Whether this process started (or joined) Ray itself, and so shuts it down when its run ends."""


def connect(address: str | None = None, workers: int | None = None):
    """Join the Ray cluster at ``address`` (or start a local one with ``workers`` CPUs) unless this process already
    has; return the ``ray`` module."""
    global _started_here
    ray = require_ray()
    if not ray.is_initialized():
        _started_here = True
        # Ray runs workers at niceness 15 by default: on a machine with other work (a training, a browser) they
        # starve, 30x slower measured here; our tasks are the work, so they run at normal priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, num_cpus=workers if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)  # fmt: skip
    return ray


def cluster_gpus(address: str | None = None, workers: int | None = None) -> int:
    """How many GPUs the cluster has (joining or starting it)."""
    return int(connect(address, workers).cluster_resources().get("GPU", 0))


def run_on_ray(
    jobs: list,
    plan,
    out: Path,
    catalog: Catalog,
    log: logging.Logger,
    bar,
    address: str | None = None,
    workers: int | None = None,
    max_retries: int = 3,
) -> dict[str, dict]:
    """Run ``jobs`` as Ray tasks; record each outcome as it arrives; ``{job name: execute_job's result}``.

    Parameters
    ----------
    address : str, optional
        The cluster to join (``"auto"``, ``"ray://head:10001"``); default: join the one this process already
        initialized, or start a local one.
    workers : int, optional
        CPUs of a local cluster started here (default: all of them); each task takes one CPU (or one GPU).
    max_retries : int
        Retries of a task whose worker died.
    """
    global _started_here
    ray = connect(address, workers)
    gpus = ray.cluster_resources().get("GPU", 0)
    options = {"num_cpus": 1, "num_gpus": 1} if gpus else {"num_cpus": 1}
    log.info("ray: %s, %s; each task takes %s", ray.get_runtime_context().gcs_address,
             ray.cluster_resources(), options)  # fmt: skip
    remote = ray.remote(max_retries=max_retries, **options)(_task)
    refs = {}
    for job in jobs:
        mark_running(job, catalog, log, bar, host="ray")
        refs[remote.remote(job, plan, str(Path(out).resolve()), options["num_cpus"])] = job
    results: dict[str, dict] = {}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(ready[0])
            try:
                res = ray.get(ready[0])
            except Exception as e:  # the task failed after its retries (e.g. its worker kept dying)
                res = {"state": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}",
                       "seconds": 0.0, "rho": [], "reused": False}  # fmt: skip
            record(job, res, catalog, log, bar)
            results[job.name] = res
    finally:
        for ref in refs:  # the driver is stopping: do not leave tasks running into a directory nobody records
            ray.cancel(ref, force=True)
        if _started_here:
            ray.shutdown()
            _started_here = False
    return results
