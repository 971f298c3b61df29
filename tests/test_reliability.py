"""Reliability (issue 22): every bad input a clear error, broken files repaired, one process per run directory.

CLI cases call ``metamers.cli.main`` and check exit status 2 with one line on standard error; Python cases check the
exception and its message.  docs/reliability_runs.md lists each case with its test here.
"""

import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

from metamers.cli import main
from metamers.runs.catalog import Catalog
from metamers.runs.lock import DirectoryBusy, run_lock
from metamers.runs.plan import PlanError, parse_plan
from metamers.runs.run import run_plan, run_status
from metamers.settings import SynthesisSettings
from metamers.synthesis import SynthesisResult, synthesize

PLAN = """
name = "reliability"
batch = 1
[stimuli]
images = ["chelsea"]
[synthesis.image]
preset = "feather2019"
iterations = 3
lr = 0.02
checkpoint_every = 1
[validation]
pairs = 50
[[model]]
name = "efficientnet-lite0"
layers = ["block_1"]
"""
RESULT = "results/efficientnet-lite0__block_1__b0.safetensors"
MEDIA = "media/efficientnet-lite0/block_1/chelsea.png"


def three_channel_net() -> nn.Module:
    """A model for ``metamers layers test_reliability:three_channel_net`` (it takes 3 channels)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())


def one_error_line(capsys, *needles: str) -> str:
    """Standard error is one ``metamers: error:`` line holding every needle, and no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("metamers: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run (one photo, block_1 of EfficientNet-Lite0, 3 iterations, a null of 50 pairs)."""
    d = tmp_path_factory.mktemp("reliability")
    (d / "plan.toml").write_text(PLAN)
    run_plan(d / "plan.toml", d / "run", progress=False, device="cpu")
    return d / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A private copy of the finished run, to damage."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out, ignore=shutil.ignore_patterns("run.lock"))
    return out


# ---- case 2: 0 is 0 for audio ----


@pytest.mark.parametrize(
    ("flags", "want"), [(["--iterations", "0"], {"iterations": 0}), (["--seed", "0"], {"seed": 0})]
)
def test_audio_synthesis_takes_zero_as_zero(flags, want, monkeypatch, tmp_path, capsys):
    import metamers.runs.audio as audio
    from metamers.audio.speech import SpeechSourceMissing

    seen = {}

    def fake(zoo, words, stages, out, **kw):
        seen.update(kw)
        audio._settings(kw["iterations"], kw["lr"], kw["seed"])  # the real settings check
        raise SpeechSourceMissing("stop here")

    monkeypatch.setattr(audio, "audio_metamers", fake)
    argv = ["synthesize", "word-standard", "--layer", "conv_0", "--words", "may", "--out", str(tmp_path), *flags]
    assert main(argv) == 2
    assert {k: seen[k] for k in want} == want
    one_error_line(capsys, "stop here")
    assert main([*argv, "--lr", "0"]) == 2
    one_error_line(capsys, "--lr 0: give a finite number above 0")


# ---- case 3: damaged results, nulls, catalogs and checkpoints are named, set aside and redone ----


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage(run, which: str) -> str:
    """Damage one file of a run; the file's path relative to the run."""
    if which == "result":
        rel = RESULT
    elif which == "null":
        rel = next(run.glob("nulls/*.safetensors")).relative_to(run).as_posix()
    elif which == "catalog":
        rel = "catalog.sqlite"
        for side in run.glob("catalog.sqlite-*"):
            side.unlink()
    else:  # a checkpoint of an interrupted job: its result is gone, its checkpoint torn
        (run / RESULT).unlink()
        rel = "checkpoints/efficientnet-lite0__block_1__b0.pt"
        (run / rel).parent.mkdir(exist_ok=True)
        (run / rel).write_bytes(b"PK\x03\x04 torn checkpoint")
        return rel
    _truncate(run / rel)
    return rel


@pytest.mark.parametrize("which", ["result", "null", "catalog", "checkpoint"])
def test_a_damaged_file_is_set_aside_and_redone_by_the_next_run(run_copy, which):
    rel = _damage(run_copy, which)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_plan(run_copy, run_copy, progress=False, device="cpu")
    assert summary["jobs"] == {"done": 1, "failed": 0} and summary["metamers"] == 1
    assert (run_copy / (rel + ".corrupt")).exists(), sorted(p.name for p in run_copy.rglob("*"))
    if which != "checkpoint":
        assert (run_copy / rel).exists()
    assert SynthesisResult.load(run_copy / RESULT).settings.iterations == 3
    assert Catalog(run_copy).query("SELECT COUNT(*) AS n FROM validation")[0]["n"] == 1


def test_status_and_validate_name_a_damaged_result(run_copy, capsys):
    _damage(run_copy, "result")
    status = run_status(run_copy)
    assert status["damaged"] and status["damaged"][0][0] == RESULT
    assert status["stages"][0]["done"] == 0 and status["stages"][0]["pending"] == 1
    assert main(["status", str(run_copy)]) == 0
    assert f"damaged {RESULT}" in capsys.readouterr().out
    assert main(["validate", str(run_copy), "--pairs", "50"]) == 2
    one_error_line(capsys, "efficientnet-lite0__block_1__b0.safetensors is damaged", "set aside as", "metamers run")
    assert (run_copy / (RESULT + ".corrupt")).exists()


def test_a_damaged_catalog_is_named_by_status(run_copy, capsys):
    _damage(run_copy, "catalog")
    assert main(["status", str(run_copy)]) == 2
    one_error_line(capsys, "catalog.sqlite is damaged", "metamers run")


def test_synthesize_sets_a_torn_checkpoint_aside_and_starts_afresh(tmp_path):
    net = three_channel_net()
    x = torch.rand(1, 3, 8, 8)
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="c.pt is damaged"):
        r = synthesize(net, x, "1", iterations=2, lr=0.01, checkpoint=ckpt)
    assert r.stop_iteration == [2] and (tmp_path / "c.pt.corrupt").read_bytes() == b"not a checkpoint"


def test_a_checkpoint_of_another_synthesis_is_set_aside_and_the_job_starts_over(run_copy):
    """E.g. stimuli made with another thread count (1e-7 apart): the fingerprint differs; the job must not fail."""
    (run_copy / RESULT).unlink()
    rel = "checkpoints/efficientnet-lite0__block_1__b0.pt"
    (run_copy / rel).parent.mkdir(exist_ok=True)
    synthesize(three_channel_net(), torch.rand(1, 3, 8, 8), "1", iterations=2, lr=0.01, checkpoint=run_copy / rel,
               checkpoint_every=1)  # fmt: skip
    other = (run_copy / rel).read_bytes()
    summary = run_plan(run_copy, run_copy, progress=False, device="cpu")
    assert summary["jobs"] == {"done": 1, "failed": 0}
    assert (run_copy / (rel + ".corrupt")).read_bytes() == other
    assert SynthesisResult.load(run_copy / RESULT).settings.iterations == 3
    assert "set aside as efficientnet-lite0__block_1__b0.pt.corrupt" in (run_copy / "run.log").read_text()


# ---- case 4: missing media are written again ----


def test_missing_media_are_restored_by_the_next_run(run_copy):
    (run_copy / MEDIA).unlink()
    assert run_status(run_copy)["missing_media"] == [MEDIA]
    before = (run_copy / RESULT).stat().st_mtime_ns
    run_plan(run_copy, run_copy, progress=False, device="cpu")
    assert (run_copy / MEDIA).exists() and run_status(run_copy)["missing_media"] == []
    assert (run_copy / RESULT).stat().st_mtime_ns == before  # the metamer was not synthesized again


def test_a_damaged_media_file_is_set_aside_and_written_again_by_the_next_run(run_copy):
    (run_copy / MEDIA).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    before = (run_copy / RESULT).stat().st_mtime_ns
    run_plan(run_copy, run_copy, progress=False, device="cpu")
    from PIL import Image

    with Image.open(run_copy / MEDIA) as im:
        im.verify()  # it reads again
    assert (run_copy / (MEDIA + ".corrupt")).exists()  # the damaged file was kept aside, not deleted
    assert (run_copy / RESULT).stat().st_mtime_ns == before  # the metamer was not synthesized again


# ---- case 5: one process per run directory ----


@pytest.fixture
def held_lock(run_copy):
    """Another process holding the run directory's lock, as a running `metamers run` does."""
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        f = open({str(run_copy / "run.lock")!r}, "a+")
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(f"pid {{os.getpid()}} on testhost (metamers run)\\n"); f.flush()
        print("held", flush=True); time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_on_a_busy_directory_is_refused_naming_the_holder(run_copy, held_lock, capsys):
    assert main(["run", str(run_copy)]) == 2
    one_error_line(capsys, f"in use by pid {held_lock.pid} on testhost", "wait for it")
    assert main(["validate", str(run_copy), "--pairs", "50"]) == 2
    one_error_line(capsys, f"pid {held_lock.pid}")
    with pytest.raises(DirectoryBusy):
        run_plan(run_copy, run_copy, progress=False, device="cpu")
    held_lock.kill()  # kill -9 releases the kernel's lock
    held_lock.wait()
    with run_lock(run_copy):
        assert (run_copy / "run.lock").read_text().startswith(f"pid {os.getpid()} ")


def test_two_runs_started_together_do_not_both_synthesize(tmp_path):
    (tmp_path / "plan.toml").write_text(PLAN)
    cmd = [sys.executable, "-m", "metamers.cli", "run", str(tmp_path / "plan.toml"), "--out", str(tmp_path / "run"),
           "--device", "cpu", "--quiet"]  # fmt: skip
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], errs
    refused = next(e for e, p in zip(errs, procs, strict=True) if p.returncode == 2)
    assert "is in use by pid" in refused and "Traceback" not in refused
    starts = (tmp_path / "run" / "run.log").read_text().count("start synthesize:")
    assert starts == 1


# ---- case 6: every plan field is typed ----


MODEL = [{"name": "efficientnet-lite0", "layers": ["block_1"]}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"validation": {"same_label": "no"}}, "validation.same_label must be true or false"),
        ({"synthesis": {"image": {"checkpoint_every": 0}}}, "checkpoint_every = 0: give 1 or more"),
        ({"stimuli": {"images": []}}, "stimuli.images = []: list at least one name"),
        ({"synthesis": {"image": {"iterations": "50"}}}, "iterations must be a whole number, got '50' (a string)"),
        ({"transfer": {"recognizers": "x"}}, "transfer.recognizers must be a list of names"),
        ({"synthesis": {"image": {"lr": math.inf}}}, "lr must be a finite number"),
        ({"validation": {"pairs": 5}}, "validation.pairs = 5: give 10 or more"),
        ({"validation": {"percentile": "99"}}, "validation.percentile = '99'"),
        ({"batch": "4"}, "batch = '4'"),
        ({"stimuli": 3}, "[stimuli] must be a table"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"model": MODEL + MODEL}, "names the model efficientnet-lite0 twice"),
        ({"model": [{"name": "efficientnet-lite0", "layers": [2]}]}, "layers must be a list of names"),
    ],
)
def test_a_plan_field_of_the_wrong_type_or_range_is_refused(changes, message):
    with pytest.raises(PlanError) as e:
        parse_plan({"model": MODEL, **changes})
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (PLAN.replace('["block_1"]', '["block_2", "net._blocks.2"]'), "lists the layer net._blocks.2 twice"),
        (PLAN + '[transfer]\nrecognizers = ["word-standard"]\n', "word-standard is an audio model"),
    ],
)
def test_a_plan_is_refused_before_anything_is_written(plan, message, tmp_path, capsys):
    (tmp_path / "plan.toml").write_text(plan)
    assert main(["run", str(tmp_path / "plan.toml"), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, message)
    assert not (tmp_path / "run").exists()


# ---- case 7: transfer ----


def test_transfer_refuses_a_recognizer_of_the_other_modality(run_copy, capsys):
    assert main(["transfer", str(run_copy), "--recognizers", "word-standard"]) == 2
    one_error_line(capsys, "word-standard is an audio model", "image metamers")
    assert not (run_copy / "transfer.csv").exists()


def test_the_catalog_holds_what_transfer_csv_holds(run_copy, capsys):
    import csv

    for recognizers in ("efficientnet-lite0-random", "efficientnet-lite0"):
        assert main(["transfer", str(run_copy), "--recognizers", recognizers, "--spaces", "imagenet"]) == 0
        with open(run_copy / "transfer.csv") as f:
            in_csv = sorted(r["recognizer"] for r in csv.DictReader(f))
        in_catalog = sorted(r["recognizer"] for r in Catalog(run_copy).query("SELECT recognizer FROM transfer"))
        assert in_csv == in_catalog
    assert in_catalog == ["efficientnet-lite0"]  # the first call's random recognizer is gone from both


# ---- case 8: common mistakes are one line, not a traceback ----

SYN = ["synthesize", "efficientnet-lite0", "--layer", "block_1", "--iterations", "1"]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ([*SYN, "--device", "tpu"], ["unknown device 'tpu'"]),
        ([*SYN, "--device", "cuda:7"], ["cuda:7"]),
        ([*SYN, "--checkpoint-every", "0"], ["--checkpoint-every 0: give 1 or more"]),
        ([*SYN, "--lr", "inf"], ["--lr inf: give a finite number above 0"]),
        ([*SYN, "--iterations", "-1"], ["--iterations -1: give 0 or more"]),
        ([*SYN, "--stop-label"], ["stop_label adds a condition to stop_rho or stop_loss"]),
        ([*SYN, "--stop-rho", "2"], ["stop_rho is a Spearman rho: between -1 and 1"]),
        ([*SYN, "--photos", ""], ["--photos is empty"]),
        (["synthesize", "word-standard", "--layer", "conv_0", "--words", ""], ["--words is empty"]),
        (["validate", "{tmp}", "--pairs", "0"], ["--pairs 0: a null needs at least 10 pairs"]),
        (["validate", "{tmp}", "--pairs", "-5"], ["--pairs -5"]),
        (["validate", "{tmp}"], ["no synthesis results"]),
        (["validate", "{tmp}/nowhere"], ["no directory"]),
        (["transfer", "{tmp}", "--recognizers", "efficientnet-lite0"], ["nothing validated", "metamers validate"]),
        (["transfer", "{tmp}", "--recognizers", ""], ["--recognizers is empty"]),
        ([*SYN, "--out", "{tmp}/file"], ["--out", "is a file"]),
        (["run", "{tmp}/plan.toml", "--out", "{tmp}/file"], ["is a file"]),
        (["layers", "efficientnet-lite0", "--weights", "{tmp}/random.bin"], ["cannot load the weights", "random.bin"]),
        (["layers", "efficientnet-lite0", "--weights", "{tmp}/text.pt"], ["cannot load the weights", "text.pt"]),
        (["layers", "efficientnet-lite0", "--weights", "{tmp}/none.pt"], ["no weights file"]),
        (
            ["layers", "test_reliability:three_channel_net", "--input-shape", "1,16,16"],
            ["refuses an input of shape (1, 1, 16, 16)", "Give --input-shape"],
        ),
        (["layers", "test_reliability:three_channel_net", "--input-shape", "a,b"], ["--input-shape 'a,b'"]),
    ],
)
def test_a_common_mistake_is_one_line_with_exit_status_2(argv, needles, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "plan.toml").write_text(PLAN)
    (tmp_path / "random.bin").write_bytes(os.urandom(4096))
    (tmp_path / "text.pt").write_text("these are not weights\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    one_error_line(capsys, *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_one_line(capsys):
    assert main([*SYN, "--device", "cuda"]) == 2
    one_error_line(capsys, "no CUDA GPU", "use cpu")


def test_metamers_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("METAMERS_DEBUG", "1")
    with pytest.raises(Exception, match="unknown device 'tpu'"):
        main([*SYN, "--device", "tpu"])


@pytest.fixture
def as_another_user(run_copy):
    """The run directory made read-only for the caller (as root: act as nobody, whom root's files refuse)."""
    for p in [run_copy, *run_copy.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    parents = [q for q in run_copy.parents if str(q).startswith("/tmp/")]
    modes = {q: q.stat().st_mode for q in parents}
    for q in parents:
        q.chmod(modes[q] | 0o055)
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)
    try:
        yield run_copy
    finally:
        if root:
            os.seteuid(0)
        for q, m in modes.items():
            q.chmod(m)
        for p in [run_copy, *run_copy.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_run_directory(as_another_user, capsys):
    assert main(["status", str(as_another_user)]) == 0
    assert "1/1 jobs done" in capsys.readouterr().out
    assert main(["run", str(as_another_user)]) == 2
    one_error_line(capsys, "cannot write in", "must be writable")


def test_a_missing_or_garbled_sound_file_is_named(tmp_path):
    from metamers.audio.signal import read_wav

    with pytest.raises(FileNotFoundError, match=r"no sound file .*nope\.wav"):
        read_wav(tmp_path / "nope.wav", 20000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(ValueError, match=r"cannot read the sound file .*bad\.wav"):
        read_wav(tmp_path / "bad.wav", 20000)


# ---- cases 8 and 9 from Python: one input check at the top of synthesize, typed settings ----


@pytest.mark.parametrize(
    ("make", "kw", "error", "message"),
    [
        (lambda x: x[0], {}, ValueError, "(N, 3, H, W), batch first; got 3-d input: x[None] adds the batch dimension"),
        (lambda x: torch.cat([x, x[:, :1]], 1), {}, ValueError, "drop the alpha channel"),
        (lambda x: x[:, :1], {}, ValueError, "these have 1 channels (grey images"),
        (lambda x: x[:0], {}, ValueError, "the batch of stimuli is empty"),
        (lambda x: x.double(), {}, TypeError, "stimuli are float64 but the model computes in float32"),
        (lambda x: x.half(), {}, TypeError, "pass precision='bfloat16'"),
        (lambda x: x, {"lr": "0.01"}, TypeError, "lr must be a number, got '0.01' (a string)"),
        (lambda x: x, {"lr": math.inf}, ValueError, "lr must be a finite number"),
        (lambda x: x, {"iterations": 2.5}, TypeError, "iterations must be a whole number"),
        (lambda x: x, {"checkpoint_every": 0}, ValueError, "checkpoint_every must be a whole number"),
        (lambda x: x, {"device": "tpu"}, ValueError, "unknown device 'tpu'"),
    ],
)
def test_synthesize_names_a_bad_input(lite0, make, kw, error, message):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(error) as e:
        synthesize(lite0.module, make(x), lite0.layer("block_1"), **{"iterations": 1, **kw})
    assert message in str(e.value)


def test_a_model_that_cannot_take_the_stimuli_is_said_in_their_terms():
    with pytest.raises(ValueError, match=r"cannot take stimuli of shape \(1, 4, 8, 8\)"):
        synthesize(three_channel_net(), torch.rand(1, 4, 8, 8), "1", iterations=1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lr": -math.inf}, "lr must be a finite number"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"decay_rate": math.nan}, "decay_rate must be a finite number"),
        ({"bounds": (0.0, math.inf)}, "finite numbers with low < high"),
        ({"linear_grad_relu": "no"}, "linear_grad_relu must be true or false"),
        ({"seed": "1"}, "seed must be a whole number"),
    ],
)
def test_settings_refuse_nonsense(kw, message):
    with pytest.raises((TypeError, ValueError)) as e:
        SynthesisSettings(**kw)
    assert message in str(e.value)


def test_validate_dir_refuses_too_few_pairs(run_copy):
    from metamers.runs import validate_dir

    with pytest.raises(ValueError, match="at least 10 pairs"):
        validate_dir(run_copy, n_pairs=-5)
