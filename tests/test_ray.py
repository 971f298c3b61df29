"""The Ray executor: a local Ray cluster started by the test, the same catalog as a local run, a killed worker."""

import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from metamers.runs.catalog import Catalog  # noqa: E402
from metamers.runs.run import run_plan  # noqa: E402

PLAN = """
name = "ray"
batch = 1
[stimuli]
images = ["chelsea", "coffee"]
[synthesis.image]
preset = "feather2019"
iterations = {iterations}
lr = 0.02
checkpoint_every = 10
[validation]
pairs = 100
[[model]]
name = "efficientnet-lite0"
layers = {layers}
"""


def _rows(directory):
    return Catalog(directory).query(
        "SELECT m.model, m.layer, m.stimulus, m.final_loss, v.accepted, v.rho_layer FROM metamers m "
        "JOIN validation v ON v.metamer_id = m.id ORDER BY m.model, m.layer, m.stimulus"
    )


@pytest.mark.slow
def test_a_ray_run_gives_the_catalog_of_a_local_run(tmp_path):
    import torch

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(iterations=20, layers='["block_1", "block_2"]'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task runs, so that both compute the same numbers
    try:
        local = run_plan(plan, tmp_path / "local", progress=False)
    finally:
        torch.set_num_threads(threads)
    distributed = run_plan(plan, tmp_path / "ray", progress=False, executor="ray", workers=2)
    assert local["jobs"] == distributed["jobs"] == {"done": 4, "failed": 0}
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert (x["model"], x["layer"], x["stimulus"], x["accepted"]) == (y["model"], y["layer"], y["stimulus"],
                                                                          y["accepted"])  # fmt: skip
        assert y["final_loss"] == pytest.approx(x["final_loss"], rel=1e-4)
        assert y["rho_layer"] == pytest.approx(x["rho_layer"], abs=1e-4)
    log = (tmp_path / "ray" / "run.log").read_text()
    assert "each task takes {'num_cpus': 1}" in log and log.count("done synthesize:") == 4


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost_or_duplicated(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(iterations=150, layers='["block_1"]'))
    out = tmp_path / "run"
    killed = []

    def kill_a_worker():
        t = time.time()
        while time.time() - t < 240:
            for pidfile in (out / "checkpoints").glob("*.pid") if (out / "checkpoints").exists() else ():
                if pidfile.with_suffix(".pt").exists():  # it has checkpointed: kill it mid-task
                    pid = int(pidfile.read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pidfile.stem, pid))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    summary = run_plan(plan, out, progress=False, executor="ray", workers=2)
    killer.join()
    assert killed, "no worker was killed"
    assert summary["jobs"] == {"done": 2, "failed": 0} and summary["metamers"] == 2
    rows = Catalog(out).query("SELECT result_file, item FROM metamers")
    assert len(rows) == len({(r["result_file"], r["item"]) for r in rows}) == 2
    stem, pid = killed[0]
    log = (out / "run.log").read_text()
    done = [line for line in log.splitlines() if f"done synthesize:efficientnet-lite0:block_1:{stem[-2:]}" in line]
    assert len(done) == 1 and f"(pid {pid})" not in done[0]  # finished once, by another worker
    assert not list((out / "checkpoints").glob("*.pt"))
