"""Security of the experiment server (metamers.experiments.server), as a participant's browser meets it.

- Nothing a participant receives (page, script, JSON, media bytes and headers) names a model, stage, layer,
  condition, stimulus source, headphone-check answer or the answer of a main or catch trial; only a practice
  trial's feedback names that trial's answer, once it is answered.
- Researcher pages need the experiment's token.
- Malformed, oversized and out-of-range requests get 4xx, never 500, and leave the database as it was.
- A response is stored once however often it is sent, and trials are answered in order.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from metamers.experiments import MAX_BODY, build_experiment, create_app, load_experiment

with warnings.catch_warnings():  # "install httpx2": the TestClient works as it is
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

POST_ROUTES = ("/api/start", "/api/consent", "/api/headphones", "/api/next", "/api/response")
RESEARCHER_ROUTES = ("/researcher", "/researcher/progress.json", "/researcher/trials.csv")
# What /api/start may tell a participant; /api/next of a trial has exactly NEXT_KEYS.
STATE_KEYS = {"session", "kind", "prompt", "choices", "timing", "mask", "consented", "trials", "practice", "answered"}
STATE_KEYS |= {"headphones", "headphone_check", "completion_code", "completion_url"}
NEXT_KEYS = {"done", "trial", "of", "phase", "media"}
# Keys that would tie a trial to its condition or answer (only a practice trial's feedback has correct/answer).
BANNED_KEYS = {"answer", "correct", "condition", "source", "model", "stage", "layer", "stimulus", "file", "catch"}
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{16}")


# ---- experiments and clients ------------------------------------------------------------------------------------
def _build(run, out):
    # as the conftest's make_experiment, but once per module: the fuzzing below makes a few hundred requests
    build_experiment(run, out, participants=4, practice=2, catch=1)
    return out


@pytest.fixture(scope="module")
def image_exp(image_run, tmp_path_factory):
    return _build(image_run, tmp_path_factory.mktemp("sec-image") / "exp")


@pytest.fixture(scope="module")
def audio_exp(audio_run, tmp_path_factory):
    return _build(audio_run, tmp_path_factory.mktemp("sec-audio") / "exp")


class Served:
    """An experiment's app behind a TestClient (server exceptions come back as 500s, as a browser sees them)."""

    def __init__(self, directory, db) -> None:
        self.exp = load_experiment(directory)
        self.dir = directory
        self.app = create_app(directory, db_url=f"sqlite:///{db}")
        self.store = self.app.state.store
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.token = (directory / "researcher_token.txt").read_text().strip()

    def participant(self, who: str, consent: bool = True) -> str:
        r = self.client.post("/api/start", json={"params": {"participant": who}})
        assert r.status_code == 200, r.text
        session = r.json()["session"]
        if consent:
            assert self.client.post("/api/consent", json={"session": session}).status_code == 200
        return session

    def trials(self, session: str) -> list[dict]:
        return self.exp["lists"][self.store.by_session(session)["list_index"]]

    def answer(self, session: str, trial: int) -> str:
        return self.exp["stimuli"][self.trials(session)[trial]["stimulus"]]["answer"]

    def rows(self, session: str) -> list[dict]:
        pid = self.store.by_session(session)["id"]
        return [r for r in self.store.all_responses() if r["participant_id"] == pid]


@pytest.fixture(scope="module")
def image_app(image_exp, tmp_path_factory):
    return Served(image_exp, tmp_path_factory.mktemp("sec-db") / "image.sqlite")


@pytest.fixture(scope="module")
def audio_app(audio_exp, tmp_path_factory):
    return Served(audio_exp, tmp_path_factory.mktemp("sec-db") / "audio.sqlite")


# ---- what a participant receives ----------------------------------------------------------------------------------
def _walk(served: Served, who: str, headphone_answers: list[int] | None = None) -> dict:
    """A whole participant session, as app.js walks it, recording every response the participant receives."""
    c, log = served.client, []

    def get(url: str):
        r = c.get("/" + url.lstrip("/"))
        assert r.status_code == 200, (url, r.status_code)
        log.append(("GET", url, r))
        return r

    def post(url: str, body: dict) -> dict:
        r = c.post(url, json=body)
        assert r.status_code == 200, (url, r.status_code, r.text)
        log.append(("POST", url, r))
        return r.json()

    for page in ("/", "/static/app.js", "/static/style.css"):
        get(page)
    state = post("/api/start", {"params": {"participant": who}, "user_agent": "pytest"})
    session = state["session"]
    if state["mask"]:
        get(state["mask"])
    post("/api/consent", {"session": session})
    headphones = []
    if served.exp["headphone_check"]:
        check = post("/api/start", {"session": session})["headphone_check"]
        get(check["calibration"])
        for i, media in enumerate(check["trials"]):
            get(media)
            headphones.append(
                post("/api/headphones", {"session": session, "trial": i, "response": headphone_answers[i]})
            )
    trials, choices = [], served.exp["task"]["choices"]
    while True:
        t = post("/api/next", {"session": session})
        if t["done"]:
            break
        get(t["media"])
        truth = served.answer(session, t["trial"])
        response = truth if t["trial"] % 2 else next(x for x in choices if x != truth)  # right and wrong answers
        body = {"session": session, "trial": t["trial"], "response": response, "rt_ms": 640.5, "client_time": 1.7e12}
        r = post("/api/response", body)
        trials.append({"next": t, "reply": r, "trial": served.trials(session)[t["trial"]], "truth": truth})
        if len(trials) == 1:
            post("/api/start", {"session": session})  # a reload in the middle
    return {"log": log, "state": state, "session": session, "headphones": headphones, "trials": trials, "end": t}


def _forbidden(exp: dict, token: str) -> set[str]:
    """Words no participant may receive: conditions, models, stages, layers, sources that are no answer, secrets."""
    words = {v for c in exp["conditions"] for v in (c["id"], c["model"], c["stage"], c["layer"]) if v}
    labels = [x.lower() for x in exp["task"]["choices"]]
    sources = {s["source"] for s in exp["stimuli"].values() if s["source"]}
    words |= {s for s in sources if not any(s.lower() in label for label in labels)}  # "chelsea" (a cat)
    words |= {exp["run"], exp["directory"], token, exp["researcher_token_sha256"], "experiment.json"}
    return words


def _word(word: str) -> re.Pattern:
    # ids and sessions are runs of [A-Za-z0-9_-], so bounding by those never finds "c1" inside a random id
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)


def _png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, out = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append(data[i + 4 : i + 8].decode("latin-1"))
        i += 12 + n
    assert i == len(data) and out[-1] == "IEND", "bytes after the image"
    return out


def _wav_chunks(data: bytes) -> list[str]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    i, out = 12, []
    while i < len(data):
        (n,) = struct.unpack("<I", data[i + 4 : i + 8])
        out.append(data[i : i + 4].decode("latin-1"))
        i += 8 + n + (n & 1)
    assert i == len(data), "bytes after the sound"
    return out


def _strings(obj, path=()):
    """("key" or "value", path, string) of every key and string value in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield "key", (*path, k), k
            yield from _strings(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _strings(v, (*path, i))
    elif isinstance(obj, str):
        yield "value", path, obj


def _check_no_leak(served: Served, walk: dict) -> None:
    exp, log = served.exp, walk["log"]
    patterns = {w: _word(w) for w in _forbidden(exp, served.token)}
    labels = {x.lower() for x in exp["task"]["choices"]}
    code = exp["completion_code"].encode()
    last_answer = max((i for i, (_, url, _) in enumerate(log) if url == "/api/response"), default=len(log))
    media_headers = []
    for i, (method, url, r) in enumerate(log):
        kind = r.headers["content-type"]
        text = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        if kind.startswith(("text/", "application/json")):
            text += "\n" + r.text
        else:
            assert url.startswith("media/"), url
            assert "content-disposition" not in r.headers
            chunks = _png_chunks(r.content) if kind == "image/png" else _wav_chunks(r.content)
            assert set(chunks) <= {"IHDR", "PLTE", "IDAT", "IEND", "fmt ", "data"}, (url, chunks)  # no tEXt, LIST...
            media_headers.append(r.headers)
        for word, pattern in patterns.items():
            assert not pattern.search(text), f"{method} {url} names {word!r}"
        if i < last_answer:
            assert code not in r.content and code.decode() not in text, f"{url} tells the completion code early"
        if not kind.startswith("application/json"):
            continue
        body = r.json()
        feedback = url == "/api/response" and "feedback" in body  # checked to be a practice trial's by the caller
        for what, path, s in _strings(body):
            if what == "key":
                assert s not in BANNED_KEYS or (feedback and path in (("feedback", "correct"), ("feedback", "answer")))
            elif s.lower() in labels:  # a label: only in the list of choices and in practice feedback
                assert path[0] == "choices" or (feedback and path == ("feedback", "answer")), (url, path, s)
        if url == "/api/start":
            assert set(body) <= STATE_KEYS and body["choices"] == exp["task"]["choices"]
    # media go out under opaque ids, with no time of their own (the build wrote them condition by condition)
    assert len({h["last-modified"] for h in media_headers}) == 1
    for _, url, _ in log:
        if url.startswith("media/"):
            sid = url.split("/", 1)[1]
            assert MEDIA_ID.fullmatch(sid) and sid in exp["stimuli"]


def _check_trials(served: Served, walk: dict) -> None:
    trials = walk["trials"]
    assert [t["next"]["trial"] for t in trials] == list(range(len(served.trials(walk["session"]))))
    phases = {t["trial"]["phase"] for t in trials}
    assert phases == {"practice", "main", "catch"}, "the walk covers every kind of trial"
    for t in trials:
        assert set(t["next"]) == NEXT_KEYS
        assert t["next"]["phase"] == ("practice" if t["trial"]["phase"] == "practice" else "main")  # catch is main
        if t["trial"]["phase"] == "practice":  # _walk answers odd trials right, even ones wrong
            feedback = {"correct": bool(t["next"]["trial"] % 2), "answer": t["truth"]}
            assert t["reply"] == {"recorded": True, "feedback": feedback}
        else:  # right or wrong, a main or catch trial's reply is the same
            assert t["reply"] == {"recorded": True}
    assert set(walk["end"]) <= {"done", "completion_code", "completion_url"}
    assert walk["end"]["completion_code"] == served.exp["completion_code"]


def test_image_session_leaks_nothing(image_app):
    walk = _walk(image_app, "leak-image")
    _check_trials(image_app, walk)
    _check_no_leak(image_app, walk)
    # a media file's own time does not reach the participant
    media = walk["trials"][-1]["next"]["media"]
    before = image_app.client.get("/" + media).headers
    os.utime(image_app.dir / image_app.exp["stimuli"][media.split("/")[1]]["file"], (1e9, 1e9))
    assert image_app.client.get("/" + media).headers == before


def test_audio_session_and_headphone_check_leak_nothing(audio_app):
    check = audio_app.exp["headphone_check"]["trials"]
    right = [int(audio_app.exp["stimuli"][h]["answer"]) for h in check]
    passed = _walk(audio_app, "leak-audio-1", headphone_answers=right)
    _check_trials(audio_app, passed)
    _check_no_leak(audio_app, passed)
    assert passed["headphones"][:-1] == [{"done": False}] * (len(check) - 1)
    assert passed["headphones"][-1] == {"done": True, "passed": True}
    # a listener who gets every tone wrong hears exactly the same replies until the check is over
    failed = _walk(audio_app, "leak-audio-2", headphone_answers=[a % 3 + 1 for a in right])
    assert failed["headphones"][:-1] == passed["headphones"][:-1]
    assert failed["headphones"][-1] == {"done": True, "passed": False}
    assert failed["trials"] == [] and failed["end"] == {"done": True, "excluded": True}
    _check_no_leak(audio_app, failed)  # nor the completion code, to one who is excluded


def test_media_ids_are_random_not_derived(image_run, image_app, make_experiment):
    again = load_experiment(make_experiment(image_run, seed=0))  # same run, same seed: only the ids' randomness differs
    first = image_app.exp
    assert not set(first["stimuli"]) & set(again["stimuli"])
    names = {w.lower() for s in first["stimuli"].values() for w in (s["source"], s["answer"]) if w and len(w) >= 4}
    names |= {c["model"] for c in first["conditions"] if c["model"]}
    for sid, s in first["stimuli"].items():
        assert MEDIA_ID.fullmatch(sid) and not any(n in sid.lower() for n in names)
        assert s["file"] == f"stimuli/{sid}.png"


def _served_media(served: Served) -> dict[str, bytes]:
    """Every stimulus of the experiment as the server sends it."""
    out = {}
    for sid in served.exp["stimuli"]:
        r = served.client.get(f"/media/{sid}")
        assert r.status_code == 200
        out[sid] = r.content
    return out


def _run_file(exp: dict, s: dict) -> Path | None:
    """The run's media file a stimulus was made from; None for practice, the mask and the headphone check."""
    from metamers.runs.run import media_path

    conditions = {c["id"]: c for c in exp["conditions"]}
    if s["condition"] not in conditions:
        return None
    c = conditions["c1" if s["condition"] == "natural" else s["condition"]]  # one model: its originals are natural
    stage = "original" if s["condition"] == "natural" else c["stage"]
    return Path(exp["run"]) / media_path(c["model"], stage, s["source"], exp["kind"])


def test_every_picture_has_one_byte_size_and_shows_its_stimulus(image_app):
    # compressed, a natural photo (47-92 KB) told itself apart from a metamer (141-148 KB) by its size alone
    exp, media = image_app.exp, _served_media(image_app)
    assert {s["condition"] for s in exp["stimuli"].values()} == {"c1", "natural", "practice", "mask"}
    assert len({len(data) for data in media.values()}) == 1
    for sid, data in media.items():
        shown = np.asarray(Image.open(io.BytesIO(data)))
        assert shown.shape == (224, 224, 3)
        src = _run_file(exp, exp["stimuli"][sid])
        if src is not None:
            assert np.array_equal(shown, np.asarray(Image.open(src).convert("RGB"))), sid
    assert len({exp["stimuli"][sid]["condition"] for sid in media if _run_file(exp, exp["stimuli"][sid])}) == 2


def test_every_sound_of_a_kind_has_one_byte_size_and_plays_its_stimulus(audio_app):
    exp, media = audio_app.exp, _served_media(audio_app)
    trials = {sid for sid, s in exp["stimuli"].items() if s["condition"] not in ("headphones", "calibration")}
    assert len({len(media[sid]) for sid in trials}) == 1  # what a trial plays: practice, natural, metamers
    assert len({len(media[sid]) for sid in exp["headphone_check"]["trials"]}) == 1  # whatever the right answer
    for sid in trials:
        played, sr = sf.read(io.BytesIO(media[sid]), dtype="int16")
        assert sr == 20000 and played.shape == (40000,)
        src = _run_file(exp, exp["stimuli"][sid])
        if src is not None:
            assert np.array_equal(played, sf.read(str(src), dtype="int16")[0]), sid


# ---- who is a participant ---------------------------------------------------------------------------------------
def test_a_visitor_without_an_id_is_stored_only_once_they_consent(image_app):
    c, store = image_app.client, image_app.store
    before = len(store.all_participants())
    visits = [c.post("/api/start", json={"params": {}, "user_agent": "crawler"}).json() for _ in range(30)]
    assert len(store.all_participants()) == before  # 30 page views: no participant, no trial list taken
    sessions = {v["session"] for v in visits}
    assert len(sessions) == 30 and not any(v["consented"] for v in visits)
    s = visits[0]["session"]
    assert c.post("/api/next", json={"session": s}).status_code == 409  # consent first, as for anyone
    reload = c.post("/api/start", json={"session": s}).json()
    assert reload["session"] == s and not reload["consented"]
    assert len(store.all_participants()) == before
    for _ in range(2):  # a double click
        assert c.post("/api/consent", json={"session": s}).status_code == 200
    assert len(store.all_participants()) == before + 1
    p = store.by_session(s)
    assert p["source"] == "anonymous" and p["external_id"].startswith("anonymous:") and p["consented"] is not None
    assert c.post("/api/next", json={"session": s}).json()["trial"] == 0
    # its session is signed, not remembered: it still works after a restart (a new app on the same database)
    again = TestClient(create_app(image_app.dir, db_url=str(store.engine.url)), raise_server_exceptions=False)
    late = visits[1]["session"]
    assert again.post("/api/consent", json={"session": late}).status_code == 200
    assert store.by_session(late)["list_index"] == (before + 1) % len(image_app.exp["lists"])


@pytest.mark.parametrize("how", ["signature changed", "signature of another", "named participant's length"])
def test_a_forged_visitor_session_is_refused_and_stores_nothing(image_app, how):
    c, store = image_app.client, image_app.store
    a, b = (c.post("/api/start", json={"params": {}}).json()["session"] for _ in range(2))
    forged = {
        "signature changed": a[:-1] + ("A" if a[-1] != "A" else "B"),
        "signature of another": a[:24] + b[24:],
        "named participant's length": a[:32],
    }[how]
    before = store.all_participants()
    for route in ("/api/start", "/api/consent", "/api/next"):
        r = c.post(route, json={"session": forged})
        assert r.status_code == 401 and set(r.json()) == {"error"}, route
    assert store.all_participants() == before


# ---- researcher pages -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", RESEARCHER_ROUTES)
@pytest.mark.parametrize(
    "how",
    ["none", "wrong bearer", "wrong query", "empty query", "basic", "bearer of the hash", "participant session"],
)
def test_researcher_pages_refuse_without_the_token(image_app, route, how):
    c, exp = image_app.client, image_app.exp
    headers, params = {}, {}
    if how == "wrong bearer":
        headers["Authorization"] = "Bearer " + image_app.token[:-1] + ("y" if image_app.token.endswith("x") else "x")
    elif how == "wrong query":
        params["token"] = image_app.token[1:] + image_app.token[0] + "0"
    elif how == "empty query":
        params["token"] = ""
    elif how == "basic":
        headers["Authorization"] = "Basic " + image_app.token
    elif how == "bearer of the hash":
        headers["Authorization"] = "Bearer " + exp["researcher_token_sha256"]
    elif how == "participant session":
        headers["Authorization"] = "Bearer " + image_app.participant("researcher-probe", consent=False)
    r = c.get(route, headers=headers, params=params)
    assert r.status_code == 401
    assert set(r.json()) == {"error"}


@pytest.mark.parametrize("route", RESEARCHER_ROUTES)
@pytest.mark.parametrize("how", ["bearer", "query"])
def test_researcher_pages_accept_the_token(image_app, route, how):
    image_app.participant("researcher-seen")
    if how == "bearer":
        r = image_app.client.get(route, headers={"Authorization": f"Bearer {image_app.token}"})
    else:
        r = image_app.client.get(route, params={"token": image_app.token})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    if route.endswith(".json"):
        assert "lab:researcher-seen" in {p["external_id"] for p in r.json()["participants"]}
    elif route == "/researcher":
        assert "lab:researcher-seen" in r.text
    else:
        assert r.headers["content-type"].startswith("text/csv")


# ---- malformed requests -------------------------------------------------------------------------------------------
def _valid(route: str, session: str, choice: str) -> dict:
    """The body the page sends to each route ("/api/start#resume": a reload, which sends the session)."""
    return {
        "/api/start": {"params": {"participant": "fuzz-never-created"}, "user_agent": "pytest"},
        "/api/start#resume": {"session": session},
        "/api/consent": {"session": session},
        "/api/headphones": {"session": session, "trial": 0, "response": 1},
        "/api/next": {"session": session},
        "/api/response": {"session": session, "trial": 0, "response": choice, "rt_ms": 512.5, "client_time": 1.7e12},
    }[route]


class Raw(str):
    """Written into the body as it is, unquoted: NaN, Infinity, 1e999 (not JSON, or no float)."""


HUGE = 10**1000  # 1001 digits: an int Python parses, and no float holds
NAN, INF = Raw("NaN"), Raw("Infinity")
# Whole bodies, as bytes or made from the valid one.
BODIES = {
    "no body": b"",
    "not JSON": b"hello",
    "truncated JSON": b'{"session": ',
    "invalid UTF-8": b'{"session": "\xff\xfe\xfd"}',
    "JSON array": b"[]",
    "JSON string": b'"session"',
    "JSON number": b"1",
    "JSON true": b"true",
    "JSON null": b"null",
    "NaN": b"NaN",
    "deep nesting": b"[" * 2000 + b"]" * 2000,
    "deep object": b'{"a":' * 600 + b"1" + b"}" * 600,
    "body in a list": lambda v: [v],
    "unknown field": lambda v: {**v, "admin": True},
    "__proto__": lambda v: {**v, "__proto__": {"admin": True}},
    "5 KB body": lambda v: {**v, "pad": "x" * 5000},
    "1 MB body": lambda v: {**v, "pad": "x" * 2**20},
    "long string field": lambda v: {k: "x" * 3000 if isinstance(x, str) else x for k, x in v.items()},
}
# Bad values of each field (every one is wrong for that field, whatever the participant's state).
ANY_TYPE = {"nested object": {"a": {"b": {"c": [1]}}}, "list": ["x"], "bool": True}
BAD = {
    "session": {
        **ANY_TYPE,
        "number": 12345678901234567,
        "null": None,
        "empty": "",
        "unknown": "A" * 32,
        "forged visitor session": "A" * 40,
        "traversal": "../../../../etc/passwd",
        "SQL": "x' OR '1'='1' -- xxxxxxxx",
        "markup": "<script>alert(1)</script>",
        "non-ASCII": "é" * 24,
        "newline after a real one": "{session}\n",
        "a real one upper-cased": "{SESSION}",
        "too long": "y" * 200,
        "lone surrogate": "\ud800" * 20,
        "NUL": "a\x00" * 10,
    },
    "trial": {
        **ANY_TYPE,
        "string": "0",
        "float": 0.5,
        "null": None,
        "negative": -1,
        "past the end": 10_000,
        "int64 overflow": 2**64,
        "huge": HUGE,
        "NaN": NAN,
        "Infinity": INF,
    },
    "response": {
        **ANY_TYPE,
        "number": 1,
        "null": None,
        "empty": "",
        "not a choice": "not a choice",
        "upper-cased choice": "{CHOICE}",
        "choice and a space": "{choice} ",
        "choice and a NUL": "{choice}\x00",
        "lone surrogate": "\udfff",
        "too long": "z" * 300,
    },
    "rt_ms": {
        **ANY_TYPE,
        "string": "512",
        "null": None,
        "negative": -1,
        "a little negative": -0.001,
        "more than an hour": 3.6e6 + 1,
        "1e300": 1e300,
        "1e999 (inf)": Raw("1e999"),
        "huge int": HUGE,
        "NaN": NAN,
        "Infinity": INF,
        "-Infinity": Raw("-Infinity"),
    },
    "client_time": {**ANY_TYPE, "string": "now", "NaN": NAN, "Infinity": INF, "1e999": Raw("1e999"), "huge int": HUGE},
    "user_agent": {**ANY_TYPE, "number": 5, "NUL": "Mozilla\x00", "lone surrogate": "\ud83d", "too long": "M" * 2000},
    "params": {
        **ANY_TYPE,
        "string": "participant=x",
        "number": 7,
        "id a number": {"participant": 1},
        "id an object": {"participant": {"a": "b"}},
        "id a list": {"participant": ["a"]},
        "id with a space": {"participant": "a b"},
        "id with a newline": {"participant": "fuzz\n"},
        "id with a slash": {"participant": "../fuzz"},
        "id too long": {"participant": "p" * 129},
        "id with a surrogate": {"PROLIFIC_PID": "\ud800"},
        "study with a surrogate": {"PROLIFIC_PID": "fuzz-prolific", "STUDY_ID": "\ud800"},
        "study with a NUL": {"workerId": "fuzz-mturk", "hitId": "a\x00"},
        "21 parameters": {f"k{i}": "v" for i in range(20)} | {"participant": "fuzz-many"},
    },
}
# headphones: its own ranges
BAD_HEADPHONES = {
    "trial": {**BAD["trial"], "past the end": 6},
    "response": {
        **ANY_TYPE,
        "string": "1",
        "null": None,
        "zero": 0,
        "four": 4,
        "negative": -1,
        "huge": HUGE,
        "float": 1.0,
    },
}


def _fields(route: str) -> list[str]:
    return list(_valid(route, "s", "c"))


def _bad(route: str, field: str) -> dict:
    if route == "/api/start#resume":  # the session is optional there: without one, a new participant comes
        return {k: v for k, v in BAD[field].items() if k not in ("null", "empty")}
    return (BAD_HEADPHONES if route == "/api/headphones" and field in BAD_HEADPHONES else BAD)[field]


FUZZED = (*POST_ROUTES, "/api/start#resume")
CASES = [(route, name) for route in FUZZED for name in BODIES]
CASES += [(route, f"{field}: {name}") for route in FUZZED for field in _fields(route) for name in _bad(route, field)]
CASES += [(route, f"content-length: {v}") for route in ("/api/next", "/api/response") for v in ("99999", "abc", "-1")]
CASES += [(route, f"chunked: {v}") for route in ("/api/next", "/api/start") for v in ("1 MB", "not JSON")]


def _body(route: str, case: str, served: Served, session: str) -> tuple[bytes, dict]:
    choice = served.answer(session, 0) if route == "/api/response" else ""
    valid = _valid(route, session, choice)
    headers = {"content-type": "application/json"}
    if case in BODIES:
        b = BODIES[case]
        return (b if isinstance(b, bytes) else json.dumps(b(valid)).encode()), headers
    if case.startswith("content-length: "):
        return json.dumps(valid).encode(), {**headers, "content-length": case.split(": ")[1]}
    if case.startswith("chunked: "):
        part = b"x" * 2**16 if case.endswith("1 MB") else b"{not json"
        return (part for _ in range(16 if case.endswith("1 MB") else 1)), headers
    field, name = case.split(": ", 1)
    value = _bad(route, field)[name]
    if isinstance(value, Raw):
        return json.dumps({**valid, field: "RAW"}).replace('"RAW"', value).encode(), headers
    if isinstance(value, str):
        value = value.format(session=session, SESSION=session.upper(), choice=choice, CHOICE=choice.upper())
    return json.dumps({**valid, field: value}).encode(), headers


@pytest.fixture(scope="module")
def fuzzed(image_app, audio_app):
    """Participants at the point where every field is checked: one at the trials, one at the headphone check."""
    image = (image_app, image_app.participant("fuzz-image"))
    audio = (audio_app, audio_app.participant("fuzz-audio"))
    return {"image": image, "audio": audio}


@pytest.mark.parametrize(("route", "case"), CASES, ids=[f"{r[5:]} {c}" for r, c in CASES])
def test_malformed_requests_get_4xx_and_change_nothing(fuzzed, route, case):
    if route == "/api/headphones":
        served, session = fuzzed["audio"]
    else:
        served, session = fuzzed["image"]
    pid = served.store.by_session(session)["id"]
    before = (served.store.all_participants(), served.rows(session), served.store.headphone_answers(pid))
    body, headers = _body(route, case, served, session)
    r = served.client.post(route.split("#")[0], content=body, headers=headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    assert set(r.json()) == {"error"}
    assert not any(_word(w).search(r.text) for w in _forbidden(served.exp, served.token))
    assert (served.store.all_participants(), served.rows(session), served.store.headphone_answers(pid)) == before


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_post_routes_get_405(image_app, route, method):
    assert image_app.client.request(method, route).status_code == 405


@pytest.mark.parametrize(
    "url",
    [
        "/media/AAAAAAAAAAAAAAAA",
        "/media/experiment.json",
        "/media/researcher_token.txt",
        "/media/..%2f..%2fexperiment.json",
        "/media/%2e%2e%2fresearcher_token.txt",
        "/media/..%5cexperiment.json",
        "/media/%00",
        "/static/../experiment.json",
        "/static/..%2fexperiment.json",
        "/static/%2e%2e/%2e%2e/researcher_token.txt",
        "/static/index.html%00.js",
        "/static/experiment.json",
        "/static/researcher_token.txt",
        "/experiment.json",
        "/researcher_token.txt",
        "/responses.sqlite",
        "/stimuli/",
    ],
)
def test_unknown_media_and_traversal_get_404(image_app, url):
    r = image_app.client.get(url)
    assert r.status_code == 404
    assert image_app.token not in r.text and "completion_code" not in r.text


def test_a_long_user_agent_is_welcome(image_app):
    ua = "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    ua += "Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/459.0.0.48.109;]"  # 200 characters
    r = image_app.client.post("/api/start", json={"params": {"participant": "long-ua"}, "user_agent": ua})
    assert r.status_code == 200
    assert image_app.store.by_session(r.json()["session"])["user_agent"] == ua


def test_a_stimulus_file_name_is_not_its_url(image_app):
    sid, s = next(iter(image_app.exp["stimuli"].items()))
    assert image_app.client.get(f"/media/{sid}").status_code == 200
    assert image_app.client.get(f"/media/{sid}.png").status_code == 404
    assert image_app.client.get(f"/{s['file']}").status_code == 404


# ---- responses stored once, in order --------------------------------------------------------------------------------
def _respond(served: Served, session: str, trial: int, response: str | None = None):
    response = response or served.answer(session, trial)
    body = {"session": session, "trial": trial, "response": response, "rt_ms": 700.0, "client_time": 1.7e12}
    return served.client.post("/api/response", json=body)


def test_a_response_sent_twice_is_stored_once(image_app):
    s = image_app.participant("twice")
    first = _respond(image_app, s, 0)
    assert first.status_code == 200 and first.json()["recorded"] is True
    wrong = next(x for x in image_app.exp["task"]["choices"] if x != image_app.answer(s, 0))
    again = _respond(image_app, s, 0, wrong)  # a retry that says something else: the first answer stands
    assert again.status_code == 200 and again.json() == {**first.json(), "recorded": False}
    for trial in range(1, len(image_app.trials(s))):
        assert _respond(image_app, s, trial).json()["recorded"] is True
        assert _respond(image_app, s, trial).json()["recorded"] is False
    rows = image_app.rows(s)
    assert sorted(r["trial"] for r in rows) == list(range(len(image_app.trials(s))))
    assert rows[0]["response"] == image_app.answer(s, 0) and rows[0]["correct"]


def test_a_response_sent_at_once_from_many_threads_is_stored_once(image_app):
    s = image_app.participant("double-click")
    replies, start = [], threading.Barrier(8)

    def send() -> None:
        start.wait()
        replies.append(_respond(image_app, s, 0))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in replies] == [200] * 8
    assert sorted(r.json()["recorded"] for r in replies) == [False] * 7 + [True]
    assert len(image_app.rows(s)) == 1


def test_answers_out_of_order_are_refused(image_app):
    s = image_app.participant("out-of-order")
    assert _respond(image_app, s, 1).status_code == 409
    assert _respond(image_app, s, 0).status_code == 200
    assert _respond(image_app, s, 2).status_code == 409
    assert image_app.client.post("/api/next", json={"session": s}).json()["trial"] == 1
    assert [r["trial"] for r in image_app.rows(s)] == [0]


def test_no_trial_before_consent(image_app):
    s = image_app.participant("no-consent", consent=False)
    assert _respond(image_app, s, 0).status_code == 409
    assert image_app.client.post("/api/next", json={"session": s}).status_code == 409
    assert image_app.rows(s) == []


def test_no_headphone_answer_before_consent(audio_app):
    s = audio_app.participant("no-consent", consent=False)
    r = audio_app.client.post("/api/headphones", json={"session": s, "trial": 0, "response": 1})
    assert r.status_code == 409
    assert audio_app.store.headphone_answers(audio_app.store.by_session(s)["id"]) == []


def test_headphone_answers_are_stored_once_and_come_first(audio_app):
    s = audio_app.participant("hp-twice")
    assert _respond(audio_app, s, 0).status_code == 409  # trials wait for the check
    assert audio_app.client.post("/api/next", json={"session": s}).status_code == 409
    for _ in range(3):
        assert audio_app.client.post("/api/headphones", json={"session": s, "trial": 0, "response": 2}).json() == {
            "done": False
        }
    assert len(audio_app.store.headphone_answers(audio_app.store.by_session(s)["id"])) == 1


# ---- the real server, `metamers experiment serve`, as clients that hang up meet it ----------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """``metamers experiment serve`` in a subprocess on a loopback port, its log in a file."""

    def __init__(self, directory, db, log) -> None:
        self.port, self.log = _free_port(), log
        self.media = next(f"media/{sid}" for sid in load_experiment(directory)["stimuli"])
        cmd = [sys.executable, "-m", "metamers.cli", "experiment", "serve", str(directory), "--port", str(self.port),
               "--db", f"sqlite:///{db}"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        deadline = time.monotonic() + 120  # the CLI imports torch: seconds on a busy machine
        while not self.answers():
            assert self.proc.poll() is None, f"the server did not start: {log.read_text()}"
            assert time.monotonic() < deadline, "the server did not start in 120 s"
            time.sleep(0.2)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=2)

    def exchange(self, request: bytes) -> bytes:
        """Send a whole request (with ``Connection: close``) and read the reply to its end."""
        with self.connect() as s:
            s.sendall(request)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        return reply

    def answers(self) -> bool:
        """Whether the server is up and serves the page and a participant's start."""
        try:
            page = self.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = json.dumps({"params": {"participant": "still-there"}}).encode()
            start = self.exchange(_post("/api/start", body))
        except OSError:
            return False
        return page.startswith(b"HTTP/1.1 200") and start.startswith(b"HTTP/1.1 200") and b'"session"' in start

    def alive(self) -> bool:
        return self.proc.poll() is None


def _post(path: str, body: bytes, length: int | None = None, close: bool = True) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
    head += f"{len(body) if length is None else length}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    return head.encode() + body


def _reset(s: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a browser tab that is killed."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@pytest.fixture(scope="module")
def process(image_exp, tmp_path_factory):
    d = tmp_path_factory.mktemp("sec-process")
    p = Process(image_exp, d / "db.sqlite", d / "server.log")
    yield p
    p.proc.terminate()
    p.proc.wait(timeout=30)


def _hang_up(process: Process, case: str, i: int) -> None:
    """One client that hangs up (the request of ``case``, variant ``i``)."""
    valid = json.dumps({"session": "x" * 32}).encode()
    s = process.connect()
    if case == "oversized Content-Length, then close":  # the server refuses (413) to a socket already closed
        route = ("/api/next", "/api/start", "/api/response")[i % 3]
        s.sendall(_post(route, b"{", length=MAX_BODY + 1 + i, close=False))
    elif case == "half-sent body, then close":
        s.sendall(_post("/api/consent", valid[: 1 + i % (len(valid) - 1)], length=len(valid), close=False))
    elif case == "headers cut off, then close":
        s.sendall(_post("/api/next", valid, close=False)[: 1 + 7 * i % 90])
    elif case == "whole request, gone before the reply":
        s.sendall(_post("/api/start", json.dumps({"params": {}}).encode(), close=False))
    elif case == "a picture, gone mid-download":
        s.sendall(f"GET /{process.media} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(1000)
    (_reset if i % 2 else socket.socket.close)(s)


HANG_UPS = [
    "oversized Content-Length, then close",
    "half-sent body, then close",
    "headers cut off, then close",
    "whole request, gone before the reply",
    "a picture, gone mid-download",
]


@pytest.mark.parametrize("case", HANG_UPS)
def test_clients_that_hang_up_do_not_kill_the_server(process, case):
    for i in range(40):
        _hang_up(process, case, i)
    time.sleep(0.3)  # the server writes its replies to the closed sockets
    assert process.alive(), f"the server died ({process.proc.returncode}): {process.log.read_text()[-2000:]}"
    assert process.answers()
    assert "Traceback" not in process.log.read_text()


def _fuzz_request(rng: random.Random, media: str) -> tuple[bytes, bool]:
    """A random request, and whether it is whole (then the client waits for the reply)."""
    path = rng.choice([*POST_ROUTES, *RESEARCHER_ROUTES, "/", "/static/app.js", f"/{media}", "/media/%00", "/x" * 300])
    body = rng.choice([b"", b"{", b"[]", b"null", b'{"session": 1}', b'{"params": {"participant": "fz"}}',
                       bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), b"x" * 5000])  # fmt: skip
    method = rng.choice(["GET", "POST", "POST", "PUT", "HEAD", "OPTIONS", "BREW", "G\x00T"])
    whole = _post(path, body).replace(b"POST", method.encode(), 1)
    if rng.random() < 0.2:  # headers a parser must refuse
        bad = rng.choice([b"Content-Length: -1\r\n", b"Content-Length: 1e9\r\n", b"Transfer-Encoding: chunked\r\n",
                          b"X: \x00\xff\r\n", b"no colon\r\n", b"Host: y\r\n" * 200])  # fmt: skip
        whole = whole.replace(b"\r\n", b"\r\n" + bad, 1)
        return whole, False
    if rng.random() < 0.3:  # cut anywhere
        return whole[: rng.randrange(1, len(whole))], False
    return whole, True


def test_a_few_hundred_random_requests_leave_the_server_answering_with_no_5xx(process):
    rng, media, statuses = random.Random(22), process.media, []
    for _ in range(300):
        request, whole = _fuzz_request(rng, media)
        if whole:
            reply = process.exchange(request)
            if reply:  # a parser may also hang up on a request it cannot read
                statuses.append(int(reply.split(b" ", 2)[1]))
        else:
            s = process.connect()
            s.sendall(request)
            (_reset if rng.random() < 0.5 else socket.socket.close)(s)
    assert process.alive(), f"the server died ({process.proc.returncode}): {process.log.read_text()[-2000:]}"
    assert process.answers()
    assert len(statuses) > 100 and not [s for s in statuses if s >= 500]
    assert "Traceback" not in process.log.read_text()


def test_a_listing_piped_into_head_still_ends_quietly():
    # the other side of the SIGPIPE choice: `metamers models | head -1` must not print a BrokenPipeError
    proc = subprocess.Popen([sys.executable, "-m", "metamers.cli", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader has gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == -signal.SIGPIPE
    assert err == b""
