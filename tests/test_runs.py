"""Plans and runs: parsing, the run directory, kill -9 and resume, status, the report."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from metamers.cli import main
from metamers.runs.catalog import Catalog
from metamers.runs.plan import PLAN_REFERENCE, PlanError, load_plan, parse_plan, plan_toml
from metamers.runs.run import RunError, format_status, run_plan, run_status

TINY = """
name = "tiny"
batch = 1
[stimuli]
images = ["chelsea", "coffee"]
[synthesis.image]
preset = "feather2019"
iterations = {iterations}
lr = 0.02
checkpoint_every = 10
[validation]
pairs = 200
[transfer]
recognizers = ["efficientnet-lite0-random"]
spaces = ["imagenet"]
[[model]]
name = "efficientnet-lite0"
layers = ["block_1", "block_2"]
"""


def test_the_reference_plan_parses_to_the_defaults():
    plan = parse_plan(tomllib.loads(PLAN_REFERENCE))
    assert plan.models[0].name == "efficientnet-lite0" and plan.models[0].layers == ("stages",)
    image = plan.settings("image")
    assert (image.iterations, image.stop_rho, image.stop_label) == (3000, 0.99, True)
    assert plan.settings("audio").init == "pink" and plan.settings("audio").stop_rho is None
    assert plan.pairs == 1_000_000 and plan.images == ("chelsea", "coffee", "rocket", "camera")


def test_a_plan_round_trips_through_toml():
    from metamers.demo import demo_plan

    plan = demo_plan()
    assert parse_plan(tomllib.loads(plan_toml(plan))) == plan
    assert demo_plan(iterations=15000, images=6).settings("audio").iterations == 15000
    assert len(demo_plan(images=19).images) == 19 and len(demo_plan(words=61).words) == 61
    assert all(not m.name.startswith("word") for m in demo_plan(audio=False).models)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": [{"name": "m"}], "iterations": 3}, "unknown key(s) iterations in the plan"),
        ({}, "names no models"),
        ({"model": [{"name": "m"}], "stimuli": {"images": ["kitten"]}}, "unknown images kitten"),
        ({"model": [{"name": "m"}], "stimuli": {"images": 999}}, "give 1 to 537"),
        ({"model": [{"name": "m"}], "stimuli": {"speech": "tts"}}, "choose from recorded, espeak-ng, flite"),
        ({"model": [{"name": "m"}], "synthesis": {"image": {"lr": -1}}}, "lr must be positive"),
        ({"model": [{"name": "m"}], "synthesis": {"image": {"step": 1}}}, "unknown key(s) step in [synthesis.image]"),
        ({"model": [{"name": "m"}], "validation": {"source": "jpeg"}}, 'choose "png"'),
        ({"model": [{"name": "m"}], "batch": 0}, "batch = 0"),
        ({"model": [{"name": "m"}], "synthesis": {"audio": {"stop_past_null": 1}}}, "stop_past_null = 1: give"),
    ],
)
def test_a_bad_plan_says_what_is_wrong(data, message):
    with pytest.raises(PlanError) as e:
        parse_plan(data)
    assert message in str(e.value)


def test_a_missing_or_broken_plan_file_is_refused(tmp_path):
    with pytest.raises(PlanError, match="metamers run --example"):
        load_plan(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(tmp_path / "bad.toml")


def test_an_unknown_layer_or_model_is_refused_before_anything_is_written(tmp_path):
    bad = TINY.format(iterations=5).replace('"block_2"]', '"block_99"]')
    (tmp_path / "plan.toml").write_text(bad)
    with pytest.raises(PlanError, match="no stage or layer 'block_99'; its stages: stem, block_1"):
        run_plan(tmp_path / "plan.toml", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "plan.toml").write_text(TINY.format(iterations=5).replace('efficientnet-lite0"', 'efficientnet-lit0"'))
    with pytest.raises(PlanError, match="Did you mean efficientnet-lite0"):
        run_plan(tmp_path / "plan.toml", tmp_path / "run")


def test_cli_run_needs_an_out_and_prints_an_example(tmp_path, capsys):
    assert main(["run", "--example"]) == 0
    assert "[synthesis.image]" in capsys.readouterr().out
    (tmp_path / "p.toml").write_text(TINY.format(iterations=5))
    assert main(["run", str(tmp_path / "p.toml")]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["status", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def _wait_for(condition, timeout: float, proc: subprocess.Popen) -> None:
    t = time.time()
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it could be killed: {proc.stderr.read()}")
        if time.time() - t > timeout:
            proc.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_recomputing(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(TINY.format(iterations=200))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "metamers.cli", "run", str(plan), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    first = out / "results" / "efficientnet-lite0__block_1__b0.safetensors"
    second_ckpt = out / "checkpoints" / "efficientnet-lite0__block_1__b1.pt"
    _wait_for(lambda: first.exists() and second_ckpt.exists(), 180, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = first.stat().st_mtime_ns

    status = run_status(out)
    interrupted = [s for s in status["stages"] if s["interrupted"]]
    assert interrupted and interrupted[0]["stage"] == "block_1"  # the killed job: its process is gone
    assert "resume with: metamers run" in format_status(status)

    summary = run_plan(out, out, progress=False)  # resume from the directory alone
    assert summary["jobs"] == {"done": 4, "failed": 0} and summary["metamers"] == 4
    assert first.stat().st_mtime_ns == before  # the finished job was not recomputed
    log = (out / "run.log").read_text()
    assert log.count("session start") == 2
    assert log.count("start synthesize:efficientnet-lite0:block_1:b0") == 1
    resumed = re.findall(r"start synthesize:efficientnet-lite0:block_1:b1", log)
    assert len(resumed) == 2  # started in the killed session, resumed in the second
    assert not list((out / "checkpoints").glob("*.pt"))  # finished jobs leave no checkpoint

    status = run_status(out)
    assert all(s["done"] == s["batches"] == 2 for s in status["stages"])
    assert status["steps"] == {"validate": "done", "transfer": "done", "report": "done"}
    assert "4/4 jobs done" in format_status(status)

    # a third run has nothing to do
    t = time.time()
    again = run_plan(out, out, progress=False)
    assert again["jobs"]["done"] == 4 and time.time() - t < 30

    # the report: every metamer and original shown from a file that exists, nothing fetched from the network
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len([s for s in sources if s.startswith("media/")]) == 2 * 2 + 2
    assert all((out / s).exists() for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "figures/null_grid_efficientnet-lite0.png" in page and "Transfer" in page
    assert "image metamers ran 200 iterations (the paper: 15,000)" in page

    # a different plan in the same directory is refused, with the field that differs
    plan.write_text(TINY.format(iterations=300))
    with pytest.raises(RunError, match="differs in: synthesis"):
        run_plan(plan, out)


@pytest.mark.slow
def test_an_audio_plan_writes_wavs_cochleagrams_and_a_playable_report(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "words"\n[stimuli]\nwords = ["may"]\nspeech = "espeak-ng"\n'
        "[synthesis.audio]\niterations = 20\nlr = 0.002\n[validation]\npairs = 50\n"
        '[[model]]\nname = "word-standard"\nlayers = ["conv_0"]\n'
        '[[model]]\nname = "word-standard:cochleagram"\nlayers = ["conv_0"]\n'
        '[transfer]\nrecognizers = ["word-standard-random:cochleagram", "word-standard-random"]\n'
    )
    out = tmp_path / "run"
    summary = run_plan(plan, out, progress=False)
    assert summary["jobs"] == {"done": 2, "failed": 0} and summary["metamers"] == 2
    for f in ("original/may.wav", "original/may_cochleagram.png", "conv_0/may.wav", "conv_0/may_cochleagram.png"):
        assert (out / "media" / "word-standard" / f).exists()
    page = (out / "report.html").read_text()
    assert '<audio controls preload="none" src="media/word-standard/conv_0/may.wav">' in page

    # Figure S9's condition: the metamer optimised on the cochleagram, bounded below by 0, shown as an image
    from metamers.synthesis import SynthesisResult

    r = SynthesisResult.load(out / "results" / "word-standard:cochleagram__conv_0__b0.safetensors")
    assert r.metamers.shape == (1, 1, 211, 400) and r.metamers.min() >= 0 and r.settings.bounds == (0.0, 4.0)
    assert (out / "media" / "word-standard:cochleagram" / "conv_0" / "may.png").exists()
    cells = Catalog(out).query("SELECT generator, recognizer, label_space FROM transfer")
    pairs = {(c["generator"], c["recognizer"]) for c in cells if c["label_space"] == "word"}
    # each generator is recognized by the recognizers of its own kind only
    assert ("word-standard:cochleagram", "word-standard-random:cochleagram") in pairs
    assert ("word-standard", "word-standard-random") in pairs
    assert ("word-standard", "word-standard-random:cochleagram") not in pairs
    assert ("word-standard:cochleagram", "word-standard-random") not in pairs


def test_the_cochleagram_view_is_the_network_behind_the_cochleagram():
    import torch

    from metamers.models import load

    full, view = load("word-standard"), load("word-standard:cochleagram")
    assert view.kind == "cochleagram" and view.input_shape == (1, 211, 400) and "cochleagram" not in view.stages
    x = torch.randn(2, 40000) * 0.05
    with torch.no_grad():
        assert torch.allclose(view.module(view.frontend(x)), full.module(x), atol=1e-5)
    with pytest.raises(ValueError, match="only those have a cochleagram view"):
        load("efficientnet-lite0:cochleagram")


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    (tmp_path / "plan.toml").write_text(TINY.format(iterations=5))
    with pytest.raises(RunError, match=r"pip install 'metamers\[ray\]'"):
        run_plan(tmp_path / "plan.toml", tmp_path / "run", executor="ray")
    assert not (tmp_path / "run").exists()


def test_an_auto_batch_is_decided_by_the_device_once_and_kept_on_resume(tmp_path):
    import logging

    from metamers.runs.run import _resolved_batch, job_batch

    plan = parse_plan({"model": [{"name": "efficientnet-lite0", "layers": ["block_2"]}]})
    assert plan.batch is None and 'batch = "auto"' in plan_toml(plan)
    assert parse_plan(tomllib.loads(plan_toml(plan))) == plan
    assert (job_batch(plan, gpu=False), job_batch(plan, gpu=True)) == (4, 32)
    assert job_batch(parse_plan({"model": [{"name": "m", "layers": ["x"]}], "batch": 7}), gpu=True) == 7
    log = logging.getLogger("test")
    assert _resolved_batch(tmp_path, plan, has_gpu=lambda: True, log=log) == 32
    assert _resolved_batch(tmp_path, plan, has_gpu=lambda: False, log=log) == 32  # resumed on a CPU: the same jobs
    assert json.loads((tmp_path / "batch.json").read_text()) == {"batch": 32, "why": "auto, for a GPU"}
    with pytest.raises(PlanError, match='or "auto"'):
        parse_plan({"model": [{"name": "m", "layers": ["x"]}], "batch": 0})


def test_a_plans_fidelity_test_judges_the_file_validation_reads():
    model = [{"name": "efficientnet-lite0", "layers": ["block_2"]}]
    plan = parse_plan({"model": model, "synthesis": {"audio": {"stop_rho": 0.99}}})
    assert [plan.settings(k).stop_on for k in ("image", "audio", "cochleagram")] == ["8-bit", "16-bit", "float"]
    own = parse_plan({"model": model, "synthesis": {"image": {"stop_on": "float"}}})
    assert own.settings("image").stop_on == "float"
    audio = parse_plan({"model": model, "synthesis": {"audio": {"stop_rho": 0.99, "stop_on": "16-bit"}}})
    assert audio.settings("cochleagram").stop_on == "float"  # a WAV's rounding is not a cochleagram's


def test_a_finished_result_is_reused_whatever_rounding_made_its_stimuli():
    """Stimuli made with another thread count differ by ~1e-7: the result stands; another stimulus does not."""
    import torch

    from metamers.runs.jobs import reusable
    from metamers.settings import SynthesisSettings
    from metamers.synthesis import synthesize

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    x = torch.rand(2, 3, 2, 2)
    settings = SynthesisSettings(iterations=2)
    r = synthesize(net, x, "1", settings)
    r.extra.update(stimuli=["a", "b"], weights_id="w")
    assert reusable(r, settings, x + 1e-7, ["a", "b"], "w")
    assert reusable(r, settings, x + 3e-6, ["a", "b"], "w")  # a cochleagram's rounding at another thread count
    assert not reusable(r, settings, x + 1e-4, ["a", "b"], "w")  # a different stimulus
    assert not reusable(r, settings, x[:1], ["a"], "w")
    assert not reusable(r, settings.replace(iterations=3), x, ["a", "b"], "w")
    assert not reusable(r, settings, x, ["a", "b"], "other weights")


def test_a_result_that_stopped_before_its_cap_is_reused_under_another_cap():
    """Raising the cap for a network whose late layers need more iterations keeps the metamers that stopped."""
    import torch

    from metamers.runs.jobs import reusable
    from metamers.settings import SynthesisSettings
    from metamers.synthesis import synthesize

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    x = torch.rand(2, 3, 2, 2)
    settings = SynthesisSettings(iterations=40, lr=0.05, stop_rho=0.5, check_every=5)
    stopped = synthesize(net, x, "1", settings)
    assert max(stopped.stop_iteration) < 40  # the rule stopped both
    stopped.extra.update(stimuli=["a", "b"], weights_id="w")
    assert reusable(stopped, settings.replace(iterations=400), x, ["a", "b"], "w")
    assert not reusable(stopped, settings.replace(iterations=max(stopped.stop_iteration)), x, ["a", "b"], "w")
    assert not reusable(stopped, settings.replace(iterations=400, lr=0.01), x, ["a", "b"], "w")  # another change
    # stopped by the check made at its cap (iteration 3 is no multiple of check_every): not at that point later
    capped = synthesize(net, x, "1", settings.replace(iterations=3))
    capped.extra.update(stimuli=["a", "b"], weights_id="w")
    assert max(capped.stop_iteration) == 3
    assert not reusable(capped, settings.replace(iterations=40), x, ["a", "b"], "w")
    ran_out = synthesize(net, x, "1", settings.replace(iterations=2, stop_rho=1.0))  # more would change it
    ran_out.extra.update(stimuli=["a", "b"], weights_id="w")
    assert ran_out.stop_reason == ["completed", "completed"]
    assert not reusable(ran_out, settings.replace(iterations=40, stop_rho=1.0), x, ["a", "b"], "w")


def test_stop_past_null_stops_each_metamer_past_its_layers_null_which_validation_then_reuses(tmp_path):
    """An untrained network's null is high (0.97-0.99 at its deep layers): a fixed stop_rho can lie inside it."""
    from metamers.synthesis import SynthesisResult

    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "null-stop"\nbatch = 2\n[stimuli]\nwords = ["may", "nine"]\nspeech = "espeak-ng"\n'
        "[synthesis.audio]\niterations = 60\nlr = 0.002\nstop_rho = 0.5\ncheck_every = 10\n"
        "stop_past_null = 0.5\n[validation]\npairs = 200\n"
        '[[model]]\nname = "word-standard-random"\nlayers = ["conv_4", "fc_intermediate"]\n'
    )
    out = tmp_path / "run"
    summary = run_plan(plan, out, progress=False)
    assert summary["jobs"] == {"done": 2, "failed": 0}
    catalog = Catalog(out)
    nulls = list((out / "nulls").glob("*.safetensors"))
    made = {p.name: p.stat().st_mtime_ns for p in nulls}
    for layer in ("conv_4", "fc_intermediate"):
        r = SynthesisResult.load(out / "results" / f"word-standard-random__{layer}__b0.safetensors")
        rows = catalog.query(
            "SELECT v.null_threshold AS t FROM metamers m JOIN validation v ON v.metamer_id = m.id WHERE m.layer = ?",
            (r.layer,),
        )
        t = rows[0]["t"]
        assert {row["t"] for row in rows} == {t}
        # the stop is the validation's own threshold, half-way from it to 1, above the plan's floor of 0.5
        assert r.settings.stop_rho == pytest.approx(max(0.5, t + 0.5 * (1 - t)), abs=1e-12)
        assert r.settings.stop_rho > t
    # validation computed no null of its own: one file per measured layer, those the run made before synthesis
    assert len(nulls) == len(load_zoo("word-standard-random").stages)
    run_plan(plan, out, progress=False)  # resumed: nothing new
    assert {p.name: p.stat().st_mtime_ns for p in (out / "nulls").glob("*.safetensors")} == made


def test_stop_past_null_without_a_stop_rho_of_its_own_stops_at_the_nulls_rho_alone():
    plan = parse_plan(
        {"model": [{"name": "m", "layers": ["x"]}],
         "synthesis": {"audio": {"stop_past_null": 0.9, "stop_label": True}}}
    )  # fmt: skip
    assert plan.settings("audio").stop_rho == 1.0  # before the run has the null: no metamer stops early
    assert plan.settings("audio", null_stop=0.95).stop_rho == 0.95 and plan.settings("audio").stop_label
    floored = parse_plan(
        {"model": [{"name": "m", "layers": ["x"]}], "synthesis": {"audio": {"stop_past_null": 0.9, "stop_rho": 0.99}}}
    )
    assert floored.settings("audio", null_stop=0.95).stop_rho == 0.99


def test_a_models_own_synthesis_table_changes_its_settings_alone():
    plan = parse_plan(
        {"model": [{"name": "a"}, {"name": "b", "synthesis": {"iterations": 900, "checkpoint_every": 7}}],
         "synthesis": {"audio": {"iterations": 300, "lr": 0.002, "stop_past_null": 0.9}}}
    )  # fmt: skip
    assert plan.settings("audio", model="a").iterations == 300 and plan.checkpoint_every("audio", "a") == 500
    b = plan.settings("audio", null_stop=0.95, model="b")
    assert (b.iterations, b.lr, b.stop_rho) == (900, 0.002, 0.95)  # the rest of the table still applies
    assert plan.checkpoint_every("audio", "b") == 7 and plan.stop_past_null("audio", "b") == 0.9
    assert parse_plan(tomllib.loads(plan_toml(plan))) == plan
    # a model without changes is written as before they existed, so older run directories still resume
    keys = [sorted(m) for m in plan.to_dict()["models"]]
    assert keys == [["layers", "name", "spec"], ["layers", "name", "spec", "synthesis"]]
    with pytest.raises(PlanError, match=r"unknown key\(s\) step in model b synthesis"):
        parse_plan({"model": [{"name": "b", "synthesis": {"step": 1}}]})
    with pytest.raises(PlanError, match="model b synthesis must be a table"):
        parse_plan({"model": [{"name": "b", "synthesis": 5}]})


def test_a_run_synthesizes_with_each_models_own_settings_and_says_so(tmp_path):
    from metamers.synthesis import SynthesisResult

    text = TINY.format(iterations=4).replace('layers = ["block_1", "block_2"]', 'layers = ["block_1"]')
    (tmp_path / "plan.toml").write_text(text + "synthesis = { iterations = 2 }\n")
    out = tmp_path / "run"
    assert run_plan(tmp_path / "plan.toml", out, progress=False)["jobs"] == {"done": 2, "failed": 0}
    r = SynthesisResult.load(out / "results" / "efficientnet-lite0__block_1__b0.safetensors")
    assert r.settings.iterations == 2 and r.settings.lr == 0.02  # its own cap, the rest of the table
    page = (out / "report.html").read_text()
    assert "efficientnet-lite0&#x27;s metamers had their own settings: iterations = 2" in page
    (tmp_path / "bad.toml").write_text(text + "synthesis = { lr = -1 }\n")
    with pytest.raises(PlanError, match="model efficientnet-lite0 synthesis: lr must be positive"):
        run_plan(tmp_path / "bad.toml", tmp_path / "bad")


def load_zoo(name):
    from metamers.models import load

    return load(name)
