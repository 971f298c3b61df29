"""Same plan, same seed, same machine: the same metamers, bit for bit, from two separate processes."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from metamers.runs.catalog import Catalog

PLAN = """
name = "twice"
batch = 2
[stimuli]
images = ["chelsea", "coffee"]
words = ["may"]
[synthesis.image]
iterations = 40
[synthesis.audio]
iterations = 20
lr = 0.002
[validation]
pairs = 100
[transfer]
recognizers = ["efficientnet-lite0-random"]
[[model]]
name = "efficientnet-lite0"
layers = ["block_2"]
[[model]]
name = "word-standard"
layers = ["conv_1"]
"""


@pytest.mark.slow
def test_the_same_plan_twice_gives_bit_identical_metamers_and_verdicts(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:  # fresh processes: nothing shared but the machine
        cmd = [sys.executable, "-m", "metamers.cli", "run", str(plan), "--out", str(out), "--quiet"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    files = sorted(p.name for p in (runs[0] / "results").glob("*.safetensors"))
    assert files == sorted(p.name for p in (runs[1] / "results").glob("*.safetensors")) and len(files) == 2
    for name in files:
        a, b = (load_file(out / "results" / name) for out in runs)
        assert a.keys() == b.keys() and "metamers" in a
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs between two runs of the same plan"
    # what a person sees and hears is the same file, and so is every verdict and rho
    for media in sorted((runs[0] / "media").rglob("*.*")):
        assert media.read_bytes() == (runs[1] / media.relative_to(runs[0])).read_bytes(), media
    query = (
        "SELECT m.model, m.layer, m.stimulus, m.final_loss, v.accepted, v.rho_layer, v.rho_logits, v.null_threshold, "
        "s.measured_layer, s.spearman FROM metamers m JOIN validation v ON v.metamer_id = m.id "
        "JOIN layer_similarity s ON s.metamer_id = m.id ORDER BY m.model, m.layer, m.stimulus, s.measured_layer"
    )
    rows = [Catalog(out).query(query) for out in runs]
    assert rows[0] == rows[1] and len({(r["model"], r["stimulus"]) for r in rows[0]}) == 3
