"""The read model of a run directory (runs/rundir.py), on real finished runs (conftest's image_run, audio_run)."""

import pytest

from metamers.runs.rundir import RunDir, RunError, plan_of


def test_a_finished_run_reads_as_its_plan_jobs_and_metamers(image_run):
    run = RunDir(image_run)
    assert run.plan.name == "exp-images" and list(run.plan.images) == ["chelsea", "coffee", "rocket"]
    jobs = run.jobs("synthesize")
    assert [(j["model"], j["stage"], j["state"]) for j in jobs] == [("efficientnet-lite0", "block_1", "done")]
    assert {j["step"] for j in run.jobs()} >= {"synthesize", "validate", "transfer", "report"}
    rows = run.metamers()
    assert [r["stimulus"] for r in rows] == ["chelsea", "coffee", "rocket"]  # job order, then item order
    assert all(r["accepted"] in (0, 1) and r["null_median"] is not None and r["kind"] == "image" for r in rows)
    assert run.validated() == 3
    accepted = [r["stimulus"] for r in rows if r["accepted"]]
    assert [r["stimulus"] for r in run.metamers(accepted_only=True)] == accepted
    assert run.accepted_by_stage()[("efficientnet-lite0", "block_1")]["accepted"] == len(accepted)


def test_media_paths_name_files_that_exist(image_run, audio_run):
    run = RunDir(image_run)
    assert run.media_path("efficientnet-lite0", "block_1", "chelsea", "image") == (
        "media/efficientnet-lite0/block_1/chelsea.png"
    )
    for r in run.metamers():
        assert run.exists(run.media_path(r["model"], r["stage"], r["stimulus"], r["kind"]))
    audio = RunDir(audio_run)
    for r in audio.metamers():
        assert audio.exists(audio.media_path(r["model"], r["stage"], r["stimulus"], r["kind"])), r


def test_stage_names_and_transfer_cells(image_run):
    run = RunDir(image_run)
    layer = run.metamers()[0]["layer"]
    assert run.stage_names() == {("efficientnet-lite0", layer): "block_1"}
    cells = run.transfer()
    assert cells and {c["recognizer"] for c in cells} == {"efficientnet-lite0", "efficientnet-lite0-random"}
    assert {c["source"] for c in run.transfer(source="png")} == {"png"}


def test_a_directory_that_is_no_run_says_how_to_start_one(tmp_path):
    with pytest.raises(RunError, match=r"is not a run directory.*metamers run PLAN --out DIR"):
        plan_of(tmp_path)
    with pytest.raises(RunError):
        _ = RunDir(tmp_path).plan
    assert RunDir(tmp_path).jobs() == [] and RunDir(tmp_path).validated() == 0  # no catalog yet: nothing done
