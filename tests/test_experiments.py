"""Human recognition experiments: trial lists, building from a real run, the database, the API flow, the analysis."""

import json
import math
import random
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
from starlette.testclient import TestClient

from metamers.cli import main
from metamers.experiments import (
    HUMAN_NAMES,
    DesignError,
    ExperimentError,
    Store,
    analyze_experiment,
    build_experiment,
    condition_summary,
    create_app,
    load_experiment,
    trial_lists,
)
from metamers.experiments.headphones import headphone_trial

# ---- trial lists ----


def test_trial_lists_are_balanced_across_participants_and_never_repeat_a_stimulus():
    pools = {"a": [f"a{i}" for i in range(6)], "b": [f"b{i}" for i in range(6)], "nat": [f"n{i}" for i in range(6)]}
    lists = trial_lists(pools, participants=6, per_condition=2, practice=["p1", "p2"], catch_pool=pools["nat"],
                        catch=2, seed=3)  # fmt: skip
    uses = Counter()
    for trials in lists:
        stimuli = [t.stimulus for t in trials]
        assert len(stimuli) == len(set(stimuli)) == 2 + 3 * 2 + 2  # no stimulus twice for a participant
        assert [t.phase for t in trials[:2]] == ["practice", "practice"] and stimuli[:2] == ["p1", "p2"]
        for _cond, pool in pools.items():
            assert sum(s in pool for s in stimuli if not s.startswith("p")) >= 2
        naturals = {t.stimulus for t in trials if t.phase == "main" and t.stimulus.startswith("n")}
        catches = {t.stimulus for t in trials if t.phase == "catch"}
        assert len(catches) == 2 and not catches & naturals
        uses.update(t.stimulus for t in trials if t.phase == "main")
    # every stimulus of every condition is used equally often (6 participants x 2 trials over 6 stimuli: twice)
    assert set(uses.values()) == {2} and len(uses) == 18
    # the order is randomized per participant
    assert len({tuple(t.stimulus for t in trials[2:]) for trials in lists}) == 6


def test_trial_lists_are_reproducible_from_the_seed():
    pools = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2", "b3"]}
    assert trial_lists(pools, 3, 2, seed=1) == trial_lists(pools, 3, 2, seed=1)
    assert trial_lists(pools, 3, 2, seed=1) != trial_lists(pools, 3, 2, seed=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_condition": 4}, "condition 'a' has 3 stimuli, fewer than the 4 trials per condition"),
        ({"per_condition": 3, "catch": 1, "catch_pool": ["a1", "a2", "a3"]}, "only 0 natural stimuli are left"),
        ({"per_condition": 0}, "at least 1"),
    ],
)
def test_an_impossible_design_says_what_to_ask_for_instead(kwargs, message):
    with pytest.raises(DesignError, match=message):
        trial_lists({"a": ["a1", "a2", "a3"]}, 2, **kwargs)


# ---- the headphone check ----


def test_a_headphone_trial_has_one_quiet_tone_and_one_antiphase_tone(tmp_path):
    answers = []
    for k in range(12):
        answer = headphone_trial(tmp_path / f"{k}.wav", random.Random(k))
        x, sr = sf.read(tmp_path / f"{k}.wav")
        assert x.shape[1] == 2 and sr == 44100
        tones = [x[int(i * 1.5 * sr) : int((i * 1.5 + 1) * sr)] for i in range(3)]
        level = [float(np.sqrt(np.mean(t**2))) for t in tones]
        quiet = int(np.argmin(level))
        assert quiet + 1 == answer
        assert 20 * math.log10(sorted(level)[1] / level[quiet]) == pytest.approx(6, abs=0.1)
        phase = [float(np.corrcoef(t[:, 0], t[:, 1])[0, 1]) for t in tones]
        assert sorted(round(p) for p in phase) == [-1, 1, 1]  # exactly one tone in antiphase between the ears
        answers.append(answer)
    assert set(answers) == {1, 2, 3}


# ---- building from a run ----


def test_an_image_experiment_is_built_from_the_runs_accepted_metamers(image_run, make_experiment):
    from metamers.runs import Catalog

    exp_dir = make_experiment(image_run)
    exp = load_experiment(exp_dir)
    accepted = Catalog(image_run).query(
        "SELECT m.stimulus FROM metamers m JOIN validation v ON v.metamer_id = m.id WHERE v.accepted = 1"
    )
    assert exp["kind"] == "image"
    assert [(c["model"], c["stage"]) for c in exp["conditions"]] == [
        ("efficientnet-lite0", "block_1"),
        (None, "natural"),
    ]
    by_condition = Counter(s["condition"] for s in exp["stimuli"].values())
    assert by_condition["c1"] == len(accepted) and by_condition["natural"] == 3 and by_condition["practice"] == 2
    for sid, s in exp["stimuli"].items():
        assert (exp_dir / s["file"]).is_file()
        assert s["file"] == f"stimuli/{sid}.png" and (s["source"] is None or s["source"] not in sid)  # opaque
        if s["condition"] in ("c1", "natural"):
            assert s["answer"] == HUMAN_NAMES[s["source"]]
    # choices: what the pictures show (not all are in the 16-way task), practice pictures included
    assert set(exp["task"]["choices"]) == {"cat", "coffee cup", "rocket", "astronaut", "clock"}
    assert (
        len(exp["lists"]) == 4 and exp["researcher_token_sha256"] not in (exp_dir / "researcher_token.txt").read_text()
    )


def test_an_audio_experiment_has_the_inverted_cochleagram_condition_and_a_headphone_check(audio_run, make_experiment):
    exp = load_experiment(make_experiment(audio_run))
    assert exp["kind"] == "audio"
    assert [c["stage"] for c in exp["conditions"]] == ["cochleagram", "conv_0", "natural"]
    check = exp["headphone_check"]
    assert len(check["trials"]) == 6 and {exp["stimuli"][t]["answer"] for t in check["trials"]} <= {"1", "2", "3"}
    assert len(exp["task"]["choices"]) == 61 and exp["task"]["presentation_ms"] is None
    practice = [s for s in exp["stimuli"].values() if s["condition"] == "practice"]
    assert len(practice) == 2 and not {p["source"] for p in practice} & {"may", "uniform", "today"}


def test_building_refuses_what_it_cannot_build_and_leaves_nothing_behind(image_run, tmp_path):
    with pytest.raises(ExperimentError, match="not a run directory"):
        build_experiment(tmp_path, tmp_path / "e1")
    with pytest.raises(ExperimentError, match="fewer than the 9 trials per condition"):
        build_experiment(image_run, tmp_path / "e2", trials_per_condition=9)
    assert not (tmp_path / "e2").exists() and not list(tmp_path.glob(".e2*"))
    with pytest.raises(ExperimentError, match="no accepted image metamers from vgg19"):
        build_experiment(image_run, tmp_path / "e3", models=["vgg19"])
    with pytest.raises(ExperimentError, match="kind must be 'image' or 'audio', not 'video'"):
        build_experiment(image_run, tmp_path / "e4", kind="video")
    build_experiment(image_run, tmp_path / "e5", participants=1, practice=0, catch=0)
    with pytest.raises(ExperimentError, match="already holds an experiment"):
        build_experiment(image_run, tmp_path / "e5")


def test_cli_builds_an_experiment_and_reports_bad_input_in_one_line(image_run, tmp_path, capsys):
    assert main(["experiment", "build", str(image_run), "--out", str(tmp_path / "e"), "--participants", "2"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0" in out and "block_1" in out and "metamers experiment serve" in out
    assert main(["experiment", "analyze", str(tmp_path / "nope")]) == 2
    assert "is not an experiment" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["build", "RUN", "--presentation-ms", "-5"],
        ["build", "RUN", "--presentation-ms", "0"],
        ["build", "RUN", "--presentation-ms", "3600000"],
        ["build", "RUN", "--participants", "0"],
        ["build", "RUN", "--participants", "-3"],
        ["build", "RUN", "--participants", "100000000"],
        ["build", "RUN", "--trials-per-condition", "0"],
        ["build", "RUN", "--practice", "-1"],
        ["build", "RUN", "--catch", "-2"],
        ["build", "RUN", "--seed", "-1"],
        ["serve", "EXP", "--port", "0"],
        ["serve", "EXP", "--port", "-80"],
        ["serve", "EXP", "--port", "65536"],
    ],
    ids=" ".join,
)
def test_nonsense_numbers_are_refused_in_one_line_before_anything_is_written(image_run, tmp_path, capsys, args):
    exp_dir = tmp_path / "e"
    if args[0] == "build":
        args = ["build", str(image_run), "--out", str(exp_dir), *args[2:]]
    else:
        build_experiment(image_run, exp_dir, participants=1, practice=0, catch=0)
        args = ["serve", str(exp_dir), *args[2:]]
    assert main(["experiment", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"metamers: error: {args[-2]} {args[-1]}: ") and err.count("\n") == 1, err
    assert ("must be" in err) and ("from" in err or "or more" in err)
    if args[0] == "build":
        assert not exp_dir.exists() and not list(tmp_path.glob(".e*"))
    else:
        assert not (exp_dir / "responses.sqlite").exists()  # refused before the server opened its database


@pytest.mark.parametrize("which", ["metamer", "original"])
@pytest.mark.parametrize("damage", ["truncated", "not a PNG"])
def test_a_damaged_media_file_is_one_line_naming_it_and_the_fix(image_run, tmp_path, capsys, which, damage):
    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    stage = "block_1" if which == "metamer" else "original"
    png = run / "media" / "efficientnet-lite0" / stage / "coffee.png"
    png.write_bytes(png.read_bytes()[:1000] if damage == "truncated" else b"<html>not found</html>")
    assert main(["experiment", "build", str(run), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"metamers: error: {png} is damaged, not a readable PNG (") and err.count("\n") == 1, err
    assert f"rerun `metamers run {run}` to write it again" in err
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e*"))


def test_pictures_of_different_sizes_are_refused_in_one_line(image_run, tmp_path):
    # as a run of two models with different input sizes: a picture's size would tell which model made it
    from PIL import Image

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    png = run / "media" / "efficientnet-lite0" / "block_1" / "rocket.png"
    Image.open(png).resize((240, 240)).save(png)
    told = r"pictures differ in size .*chelsea.png: 224x224, .*rocket.png: 240x240.*--models"
    with pytest.raises(ExperimentError, match=told):
        build_experiment(run, tmp_path / "e")
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e*"))


# ---- the database ----


def test_the_store_keeps_one_response_per_trial_and_resumes_participants(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}", lists=3)
    a = store.participant("prolific", "prolific:A")
    b = store.participant("prolific", "prolific:B")
    assert (a["list_index"], b["list_index"]) == (0, 1)
    row = dict(phase="main", stimulus="s", condition="c1", source="x", answer="cat", response="cat", correct=True,
               rt_ms=5.0)  # fmt: skip
    assert store.record(a["id"], 0, **row) is True
    assert store.record(a["id"], 0, **{**row, "response": "dog", "correct": False}) is False
    assert store.answered(a["id"]) == {0} and store.response(a["id"], 0)["response"] == "cat"
    again = Store(f"sqlite:///{tmp_path / 'r.sqlite'}", lists=3)  # a restarted server
    assert again.participant("prolific", "prolific:A")["session"] == a["session"]
    assert again.participant("prolific", "prolific:C")["list_index"] == 2


# ---- the participant API ----


def _walk(client, exp, session, stop_after=None):
    """Answer trials through the API with the right answer; return the trial indexes answered."""
    done = []
    while stop_after is None or len(done) < stop_after:
        t = client.post("/api/next", json={"session": session}).json()
        if t["done"]:
            return done, t
        answer = exp["stimuli"][t["media"].rsplit("/", 1)[1]]["answer"]
        r = client.post("/api/response", json={"session": session, "trial": t["trial"], "response": answer,
                                                "rt_ms": 800})  # fmt: skip
        assert r.status_code == 200 and r.json()["recorded"] is True
        assert ("feedback" in r.json()) == (t["phase"] == "practice")
        done.append(t["trial"])
    return done, None


def test_a_participant_who_comes_back_resumes_and_nothing_is_recorded_twice(image_run, make_experiment, tmp_path):
    exp_dir = make_experiment(image_run)
    exp = load_experiment(exp_dir)
    client = TestClient(create_app(exp_dir, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    start = client.post("/api/start", json={"params": {"PROLIFIC_PID": "5f00aa", "STUDY_ID": "s1"}}).json()
    session = start["session"]
    assert client.post("/api/next", json={"session": session}).status_code == 409  # consent first
    client.post("/api/consent", json={"session": session})
    first, _ = _walk(client, exp, session, stop_after=3)
    # the same answer again (a double click, a retry): acknowledged, not stored again
    t0 = first[-1]
    again = client.post("/api/response", json={"session": session, "trial": t0, "response": "cat", "rt_ms": 1})
    assert again.status_code == 200 and again.json()["recorded"] is False
    # the participant comes back through the study link: the same session, where they stopped
    back = client.post("/api/start", json={"params": {"PROLIFIC_PID": "5f00aa"}}).json()
    assert back["session"] == session and back["answered"] == 3 and back["consented"]
    rest, end = _walk(client, exp, session)
    assert first + rest == list(range(start["trials"]))
    assert end["completion_code"] == exp["completion_code"] and end["completion_url"].endswith(exp["completion_code"])
    store = create_app(exp_dir, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}").state.store
    rows = store.all_responses()
    assert [r["trial"] for r in rows] == list(range(start["trials"])) and all(r["correct"] for r in rows)
    assert store.all_participants()[0]["finished"] is not None


def test_audio_participants_pass_the_headphone_check_before_any_trial(audio_run, make_experiment, tmp_path):
    exp_dir = make_experiment(audio_run)
    exp = load_experiment(exp_dir)
    client = TestClient(create_app(exp_dir, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    check = exp["headphone_check"]["trials"]
    people = {}
    for pid, right in (("good", 6), ("speakers", 3)):
        s = client.post("/api/start", json={"params": {"participant": pid}}).json()
        assert s["headphones"] == "todo" and len(s["headphone_check"]["trials"]) == 6
        client.post("/api/consent", json={"session": s["session"]})
        assert client.post("/api/next", json={"session": s["session"]}).status_code == 409
        for k, sid in enumerate(check):
            answer = int(exp["stimuli"][sid]["answer"])
            response = answer if k < right else answer % 3 + 1
            r = client.post("/api/headphones", json={"session": s["session"], "trial": k, "response": response})
        people[pid] = (s["session"], r.json())
    assert people["good"][1] == {"done": True, "passed": True}
    assert people["speakers"][1] == {"done": True, "passed": False}
    assert client.post("/api/next", json={"session": people["speakers"][0]}).json() == {"done": True, "excluded": True}
    done, end = _walk(client, exp, people["good"][0])
    assert len(done) == len(exp["lists"][0]) and "completion_code" in end


# ---- the analysis ----


def test_the_summary_is_the_mean_over_participants_with_its_sem():
    exp = {"conditions": [{"id": "c1", "model": "m", "stage": "s"}], "task": {"choices": list("abcd")}}
    per = {"p1": [1, 1, 0, 0], "p2": [1, 1, 1, 1], "p3": [0, 0, 0, 1], "px": [0, 0, 0, 0]}
    rows = [{"participant": p, "phase": "main", "condition": "c1", "correct": c} for p, cs in per.items() for c in cs]
    rows.append({"participant": "p1", "phase": "practice", "condition": "c1", "correct": 1})  # not counted
    s = condition_summary(exp, rows, excluded={"px": "failed catch trials"})[0]
    props = [0.5, 1.0, 0.25]
    assert s["proportion"] == pytest.approx(np.mean(props)) and s["participants"] == 3 and s["trials"] == 12
    assert s["sem"] == pytest.approx(np.std(props, ddof=1) / np.sqrt(3)) and s["chance"] == 0.25


def test_analysis_excludes_who_the_rules_exclude_and_writes_tidy_csvs(image_run, make_experiment, tmp_path):
    exp_dir = make_experiment(image_run, catch=1)
    exp = load_experiment(exp_dir)
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    client = TestClient(create_app(exp_dir, db_url=url))
    for pid, policy in (("right", "right"), ("wrong-catch", "catch"), ("gone", "leave")):
        s = client.post("/api/start", json={"params": {"participant": pid}}).json()["session"]
        client.post("/api/consent", json={"session": s})
        for k in range(len(exp["lists"][0])):
            t = client.post("/api/next", json={"session": s}).json()
            if t["done"] or (policy == "leave" and k == 3):
                break
            sid = t["media"].rsplit("/", 1)[1]
            answer = exp["stimuli"][sid]["answer"]
            if policy == "catch" and exp["stimuli"][sid]["condition"] == "natural":
                answer = "rocket" if answer != "rocket" else "cat"  # wrong on natural (and so on the catch trial)
            client.post("/api/response", json={"session": s, "trial": t["trial"], "response": answer, "rt_ms": 700})
    result = analyze_experiment(exp_dir, db_url=url, out=tmp_path / "analysis")
    assert result["participants"] == 3 and result["kept"] == 1
    assert result["excluded"]["lab:gone"].startswith("incomplete (3 of")
    assert result["excluded"]["lab:wrong-catch"] == "failed catch trials (0 of 1)"
    by = {s["stage"]: s for s in result["summary"]}
    assert by["natural"]["proportion"] == 1.0 and by["natural"]["participants"] == 1
    lines = (tmp_path / "analysis" / "trials.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:6] == ["participant", "list", "trial", "phase", "condition", "model"] and "excluded" in header
    assert len(lines) - 1 == len(Store(url, lists=4).all_responses())
    assert (tmp_path / "analysis" / "human_vs_networks.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    assert saved["kept"] == 1


def test_responses_go_to_postgresql_by_url(image_run, make_experiment, postgres_url):
    """On a PostgreSQL server the suite starts itself (or the one ``$METAMERS_TEST_POSTGRES`` names)."""
    url = postgres_url
    from metamers.experiments.store import _meta

    store = Store(url, lists=1)
    _meta.drop_all(store.engine)  # a clean database for this test
    exp_dir = make_experiment(image_run)
    exp = load_experiment(exp_dir)
    client = TestClient(create_app(exp_dir, db_url=url))
    session = client.post("/api/start", json={"params": {"participant": "pg"}}).json()["session"]
    client.post("/api/consent", json={"session": session})
    first, _ = _walk(client, exp, session, stop_after=2)
    assert client.post("/api/response", json={"session": session, "trial": first[-1], "response": "cat",
                                              "rt_ms": 1}).json()["recorded"] is False  # fmt: skip
    rest, _end = _walk(client, exp, session)
    rows = Store(url, lists=4).all_responses()
    assert [r["trial"] for r in rows] == first + rest == list(range(len(exp["lists"][0])))
    assert analyze_experiment(exp_dir, db_url=url, out=exp_dir / "analysis")["kept"] == 1


def test_catch_trials_default_to_what_the_natural_stimuli_leave(image_run, tmp_path):
    exp = build_experiment(image_run, tmp_path / "a", participants=2, practice=0, trials_per_condition=1)
    assert exp["catch"] == 2  # 3 natural stimuli: 1 in the natural condition, 2 left for catch trials
    exp = build_experiment(image_run, tmp_path / "b", participants=2, practice=0)  # as many trials as possible
    left = 3 - exp["trials_per_condition"]
    assert exp["catch"] == min(2, left)
    assert all(sum(t["phase"] == "catch" for t in trials) == exp["catch"] for trials in exp["lists"])
    assert (exp["exclusion"]["catch_min"] is None) == (exp["catch"] == 0)


def test_without_the_experiments_extra_the_command_says_what_to_install(monkeypatch, capsys, tmp_path):
    import sys

    for name in [m for m in sys.modules if m.startswith("metamers.experiments")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.split(".")[0] == "starlette"]:  # as if the extra had not been installed
        monkeypatch.setitem(sys.modules, name, None)
    from metamers.cli import main

    assert main(["experiment", "build", str(tmp_path), "--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert "need starlette" in err and "pip install 'metamers[experiments]'" in err and "Traceback" not in err
