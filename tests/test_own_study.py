"""The README's worked example, run as written: a study folder with the researcher's own pictures, recordings, null
set and network (in their own Python file), carried out as a plan from synthesis to the report."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from metamers.audio.speech import RECORDINGS, asterisk_dir
from metamers.models.efficientnet import lite_weights_path
from metamers.runs.catalog import Catalog
from metamers.runs.run import run_plan

README = (Path(__file__).parents[1] / "README.md").read_text()


def _block(after: str, lang: str) -> str:
    """The first ```lang block after the text ``after`` in the README."""
    start = README.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    assert match, f"no {lang} block after {after!r} in the README"
    return match.group(1)


def _study(root: Path) -> Path:
    """The README's study folder, as a researcher would have it."""
    root.mkdir()
    (root / "mynet.py").write_text(_block("`mynet.py` (here", "python"))
    shutil.copy(lite_weights_path("efficientnet-lite0"), root / "mynet.pth")  # "our trained checkpoint"
    for rel, name in [("cat/chelsea.jpg", "chelsea"), ("cup/coffee.jpg", "coffee")]:
        (root / "photos" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(getattr(data, name)()).save(root / "photos" / rel, quality=92)
    (root / "null-photos").mkdir()
    for name in ("astronaut", "rocket", "camera", "clock"):
        img = Image.fromarray(getattr(data, name)())
        img.convert("RGB").save(root / "null-photos" / f"{name}.jpg")
    (root / "clips").mkdir()
    with open(root / "clips" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"])
        for word in ("nine", "today"):
            shutil.copy(asterisk_dir() / RECORDINGS[word], root / "clips" / f"{word}.wav")  # 8 kHz telephone prompts
            w.writerow([f"{word}.wav", word])
    (root / "plan.toml").write_text(_block("`plan.toml` (paths", "toml"))
    return root


@pytest.mark.slow
def test_the_readme_study_with_own_files_model_and_null_runs_to_the_report(tmp_path, monkeypatch):
    study = _study(tmp_path / "my-study")
    monkeypatch.chdir(tmp_path)  # paths in the plan are the plan folder's, wherever it is run from
    out = tmp_path / "runs" / "mine"
    summary = run_plan(study / "plan.toml", out, progress=False)
    assert summary["jobs"]["failed"] == 0 and summary["failed"] == []
    assert summary["metamers"] == 2 * 2 + 2  # two photos at two stages of mynet, two clips at conv_1

    catalog = Catalog(out)
    rows = catalog.query("SELECT model, layer, stimulus FROM metamers ORDER BY model, layer, stimulus")
    assert {(r["model"], r["stimulus"]) for r in rows} == {
        ("mynet", "cat-chelsea"),
        ("mynet", "cup-coffee"),
        ("word-standard", "nine"),
        ("word-standard", "today"),
    }
    assert {r["layer"] for r in rows if r["model"] == "mynet"} == {"net._blocks.2", "net._blocks.7"}
    # the network really is the checkpoint: it sees the cat (ImageNet weights through the user's own file)
    plan = json.loads((out / "plan.json").read_text())
    spec = next(m["spec"] for m in plan["models"] if m["name"] == "mynet")
    assert spec["weights"] == str((study / "mynet.pth").resolve()) and spec["labels"] == "imagenet"
    verdicts = catalog.query(
        "SELECT m.model, m.stimulus, v.label_stimulus FROM metamers m JOIN validation v ON v.metamer_id = m.id"
    )
    assert {v["label_stimulus"] for v in verdicts if v["stimulus"] == "cat-chelsea"} == {"Egyptian cat"}
    # the image null came from the null set's files, keyed by their content; the audio one from the built-in clips
    nulls = catalog.query("SELECT model, fields FROM nulls")
    assert any(n["model"] == "mynet" and '"files:' in n["fields"] for n in nulls)
    assert all('"files:' not in n["fields"] for n in nulls if n["model"] == "word-standard")
    # what a person sees and hears, under the files' names
    assert (out / "media" / "mynet" / "original" / "cat-chelsea.png").is_file()
    assert (out / "media" / "word-standard" / "original" / "nine.wav").is_file()
    # transfer: lite1 judged mynet's metamers; the user's labels are the reference where they name a class
    cells = list(csv.DictReader(open(out / "transfer.csv")))
    assert {c["recognizer"] for c in cells if c["generator"] == "mynet"} == {"mynet", "efficientnet-lite1"}
    assert {c["label_space"] for c in cells if c["generator"] == "mynet"} == {"imagenet", "16-way"}
    page = (out / "report.html").read_text()
    assert "mynet" in page and "cat-chelsea" in page and "media/word-standard/original/nine.wav" in page

    # a rerun from the directory alone finds everything again (paths were stored absolute)
    again = run_plan(out, out, progress=False)
    assert again["jobs"] == summary["jobs"] and again["accepted"] == summary["accepted"]

    # a human experiment on it: the participants' answers are the researcher's labels
    from metamers.experiments import build_experiment

    exp = build_experiment(out, tmp_path / "exp", kind="image", participants=2, practice=1, catch=0)
    natural = {s["source"]: s["answer"] for s in exp["stimuli"].values() if s["condition"] == "natural"}
    assert natural == {"cat-chelsea": "cat", "cup-coffee": "cup"}
    assert {"cat", "cup"} <= set(exp["task"]["choices"])
