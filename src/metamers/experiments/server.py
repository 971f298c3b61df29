"""The experiment's web server: an ASGI app (Starlette) that participants open in a browser.

Participant routes speak JSON and never send a condition, a model, a layer or an answer: stimuli go out under
random ids, and only a practice trial's feedback (after the response) names the right answer. Researcher routes
need the experiment's token (``Authorization: Bearer TOKEN`` or ``?token=TOKEN``).

Routes::

    GET  /                      the participant page (reads PROLIFIC_PID / workerId / participant from the URL)
    POST /api/start             {"params": {...}} or {"session": ...}: who the participant is and where they stand
    POST /api/consent           {"session"} (a visitor without an id becomes a participant here)
    POST /api/headphones        {"session", "trial", "response"}: one answer of the headphone check (sounds)
    POST /api/next              {"session"}: the next trial, or the completion code
    POST /api/response          {"session", "trial", "response", "rt_ms", "client_time"}
    GET  /media/{id}            a stimulus
    GET  /researcher            progress (token)
    GET  /researcher/progress.json, /researcher/trials.csv
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import io
import json
import math
import os
import re
import secrets
import time
from email.utils import formatdate
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from metamers.experiments.build import load_experiment
from metamers.experiments.headphones import PASS_MIN
from metamers.experiments.store import Store, default_url

__all__ = ["MAX_BODY", "create_app"]

MAX_BODY = 4096
"""Largest request body accepted (bytes); larger ones get 413."""
_MAX_TEXT = {"user_agent": 1024}  # longest string per field (browsers' user agents run past 128); others 128

_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_EXTERNAL = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
# URL parameters that name a participant, by recruitment service, with the other ids each passes.
_SOURCES = (
    ("prolific", "PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    ("mturk", "workerId", "hitId", "assignmentId"),
    ("lab", "participant", None, None),
)
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _SecurityHeaders:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in _HEADERS.items():
                    if k.lower().encode() not in names:
                        headers.append((k.encode(), v.encode()))
                if scope.get("path", "").startswith(("/api/", "/researcher")):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _text_ok(value: str) -> bool:
    """Whether a string can be stored as it is: valid Unicode (no lone surrogate), no control character."""
    return not any(c < " " or c == "\x7f" or "\ud800" <= c <= "\udfff" for c in value)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


async def _json(request: Request, fields: dict[str, tuple[type, bool]]) -> dict:
    """The request's JSON object, checked against ``fields`` (name -> (type, required)); refuses anything else."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise _Refused(400, "bad content-length")
    if declared is not None and int(declared) > MAX_BODY:
        raise _Refused(413, f"request bodies are limited to {MAX_BODY} bytes")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise _Refused(413, f"request bodies are limited to {MAX_BODY} bytes")
    except ClientDisconnect:  # the client hung up mid-body: no one to answer, and nothing to log
        raise _Refused(400, "the request was cut off") from None
    try:
        data = json.loads(body or b"null", parse_constant=_not_json)  # no NaN, Infinity
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: [[[[...]]]]
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _Refused(422, "the body must be a JSON object")
    extra = sorted(set(data) - set(fields))
    if extra:
        raise _Refused(422, f"unexpected field(s): {', '.join(extra)[:200]}")
    for name, (kind, required) in fields.items():
        if name not in data or data[name] is None:
            if required:
                raise _Refused(422, f"missing field: {name}")
            data[name] = None
            continue
        value = data[name]
        ok = (
            isinstance(value, kind) and not isinstance(value, bool)
            if kind in (int, float, str)
            else isinstance(value, kind)
        )
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, data[name] = True, float(value) if abs(value) < 1e300 else math.inf
        if not ok:
            raise _Refused(422, f"field {name} must be {kind.__name__}")
        if kind is float and not math.isfinite(data[name]):
            raise _Refused(422, f"field {name} is out of range")
        if kind is str and len(value) > _MAX_TEXT.get(name, 128):
            raise _Refused(422, f"field {name} is too long")
        if kind is str and not _text_ok(value):
            raise _Refused(422, f"field {name} has characters text does not have")
    return data


def _token_ok(request: Request, digest: str) -> bool:
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else request.query_params.get("token", "")
    return bool(token) and hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), digest)


def create_app(directory: str | os.PathLike, db_url: str | None = None) -> Starlette:
    """The ASGI app of an experiment directory (``metamers experiment serve`` runs it on uvicorn).

    Parameters
    ----------
    directory : path
        An experiment built by :func:`metamers.experiments.build_experiment`.
    db_url : str, optional
        Where responses go (default: ``responses.sqlite`` in the directory; ``postgresql+psycopg://...`` for
        PostgreSQL).

    Examples
    --------
    >>> from starlette.testclient import TestClient  # doctest: +SKIP
    >>> client = TestClient(create_app("experiments/demo-images"))  # doctest: +SKIP
    >>> client.post("/api/start", json={"params": {"participant": "p01"}}).json()["trials"]  # doctest: +SKIP
    47
    """
    exp = load_experiment(directory)
    root = Path(exp["directory"])
    store = Store(db_url or default_url(root), lists=len(exp["lists"]))
    stimuli = exp["stimuli"]
    lists = exp["lists"]
    choices = exp["task"]["choices"]
    choice_set = set(choices)
    check = exp.get("headphone_check")
    kind = exp["kind"]
    page = resources.files("metamers.experiments") / "page"
    built = formatdate((root / "experiment.json").stat().st_mtime, usegmt=True)  # the one time media are sent with

    # A visitor whose link names no one gets a session the server signs, and no database row until they consent:
    # page views, crawlers and abandoned tabs take no participant row and no trial list. The key is derived from
    # the researcher token's hash, which only the server side has (it is in experiment.json, never served), so a
    # visitor's session survives a restart and works with every server process of the experiment.
    visitor_key = hashlib.sha256(b"metamers visitor session\0" + exp["researcher_token_sha256"].encode()).digest()

    def signature(nonce: str) -> str:
        return base64.urlsafe_b64encode(hmac.digest(visitor_key, nonce.encode(), "sha256")[:12]).decode()  # 16 chars

    def visitor(session: str | None = None) -> dict:
        """A visitor without an id as a participant not yet stored (``id`` None); a new one without ``session``."""
        if session is None:
            nonce = secrets.token_urlsafe(18)  # 24 characters
            session = nonce + signature(nonce)
        elif len(session) != 40 or not hmac.compare_digest(session[24:], signature(session[:24])):
            raise _Refused(401, "unknown session; reload the study's link")
        external = f"anonymous:anon-{session[:24]}"
        return {"id": None, "session": session, "external_id": external, "source": "anonymous", "list_index": 0,
                "consented": None, "headphone_passed": None, "finished": None}  # fmt: skip

    def media(sid: str) -> str:
        return f"media/{sid}"

    def participant_of(session: str | None) -> dict:
        if not session or not _SESSION.fullmatch(session):
            raise _Refused(401, "unknown session; reload the study's link")
        p = store.by_session(session)
        return visitor(session) if p is None else p

    def headphone_state(p: dict) -> str:
        if check is None:
            return "none"
        if p["headphone_passed"] is None:
            return "todo"
        return "passed" if p["headphone_passed"] else "failed"

    def where(p: dict) -> dict:
        trials = lists[p["list_index"]]
        answered = store.answered(p["id"]) if p["id"] is not None else set()
        state = {
            "session": p["session"],
            "kind": kind,
            "prompt": exp["task"]["prompt"],
            "choices": choices,
            "timing": {k: exp["task"].get(k) for k in ("fixation_ms", "presentation_ms", "mask_ms")},
            "mask": media(exp["task"]["mask"]) if exp["task"].get("mask") else None,
            "consented": p["consented"] is not None,
            "trials": len(trials),
            "practice": sum(t["phase"] == "practice" for t in trials),
            "answered": len(answered),
            "headphones": headphone_state(p),
        }
        if check is not None and state["headphones"] == "todo":
            done = {h["trial"] for h in store.headphone_answers(p["id"])} if p["id"] is not None else set()
            state["headphone_check"] = {
                "calibration": media(check["calibration"]),
                "trials": [media(t) for t in check["trials"]],
                "answered": len(done),
            }
        if len(answered) >= len(trials) and state["headphones"] != "failed":
            state["completion_code"] = exp["completion_code"]
            if p["source"] == "prolific":
                state["completion_url"] = f"https://app.prolific.com/submissions/complete?cc={exp['completion_code']}"
        return state

    async def index(request: Request) -> Response:
        return HTMLResponse((page / "index.html").read_text())

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        types = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in types:
            return PlainTextResponse("not found", status_code=404)
        return Response((page / name).read_text(), media_type=types[name])

    async def start(request: Request) -> Response:
        data = await _json(request, {"params": (dict, False), "session": (str, False), "user_agent": (str, False)})
        if data["session"]:
            return JSONResponse(await run_in_threadpool(lambda: where(participant_of(data["session"]))))
        params = data["params"] or {}
        if len(params) > 20 or not all(isinstance(v, str) and _text_ok(k + v) for k, v in params.items()):
            raise _Refused(422, "params must be a few strings (the study link's URL parameters)")
        named = [(source, key, study, visit) for source, key, study, visit in _SOURCES if params.get(key)]
        if not named:
            return JSONResponse(where(visitor()))  # stored when they consent
        source, key, study, visit = named[0]
        external = params[key]
        if not _EXTERNAL.fullmatch(external):
            raise _Refused(422, f"{key} has characters an id does not have")
        fields = {"study_id": (params.get(study) or "")[:128] or None}
        fields["visit_id"] = ((params.get(visit) or "")[:128] or None) if visit else None
        fields["user_agent"] = (data["user_agent"] or request.headers.get("user-agent", ""))[:512]
        external_id = f"{source}:{external}"
        return JSONResponse(await run_in_threadpool(lambda: where(store.participant(source, external_id, **fields))))

    # Each request's database work runs in one call on a worker thread: the event loop never waits on the database.
    def agree(session: str, user_agent: str) -> dict:
        p = participant_of(session)
        if p["id"] is None:  # a visitor without an id: a participant from now on, with the next trial list
            p = store.participant(p["source"], p["external_id"], session=session, user_agent=user_agent[:512])
        if p["consented"] is None:
            store.update(p["id"], consented=time.time())
        return {"consented": True}

    async def consent(request: Request) -> Response:
        data = await _json(request, {"session": (str, True)})
        user_agent = request.headers.get("user-agent", "")
        return JSONResponse(await run_in_threadpool(agree, data["session"], user_agent))

    def hear(data: dict) -> dict:
        p = participant_of(data["session"])
        if p["consented"] is None:
            raise _Refused(409, "consent first")
        if p["headphone_passed"] is not None:
            return {"done": True, "passed": bool(p["headphone_passed"])}
        trial, response = data["trial"], data["response"]
        if not 0 <= trial < len(check["trials"]) or response not in (1, 2, 3):
            raise _Refused(422, "trial or response out of range")
        correct = str(response) == stimuli[check["trials"][trial]]["answer"]
        store.record_headphone(p["id"], trial, response, correct)
        answers = store.headphone_answers(p["id"])
        if len(answers) < len(check["trials"]):
            return {"done": False}
        n = sum(a["correct"] for a in answers)
        passed = n >= PASS_MIN
        store.update(p["id"], headphone_correct=n, headphone_passed=passed)
        return {"done": True, "passed": passed}

    async def headphones(request: Request) -> Response:
        data = await _json(request, {"session": (str, True), "trial": (int, True), "response": (int, True)})
        if check is None:
            raise _Refused(409, "this experiment has no headphone check")
        return JSONResponse(await run_in_threadpool(hear, data))

    def next_trial(p: dict) -> dict:
        if p["consented"] is None:
            raise _Refused(409, "consent first")
        if headphone_state(p) == "todo":
            raise _Refused(409, "the headphone check comes first")
        if headphone_state(p) == "failed":
            return {"done": True, "excluded": True}
        trials = lists[p["list_index"]]
        answered = store.answered(p["id"])
        todo = [i for i in range(len(trials)) if i not in answered]
        if not todo:
            if p["finished"] is None:
                store.update(p["id"], finished=time.time())
            return {"done": True, **{k: v for k, v in where(p).items() if k.startswith("completion")}}
        i = todo[0]
        t = trials[i]
        phase = "practice" if t["phase"] == "practice" else "main"  # a catch trial looks like any other
        return {"done": False, "trial": i, "of": len(trials), "phase": phase, "media": media(t["stimulus"])}

    async def next_(request: Request) -> Response:
        data = await _json(request, {"session": (str, True)})
        return JSONResponse(await run_in_threadpool(lambda: next_trial(participant_of(data["session"]))))

    def respond(data: dict) -> dict:
        p = participant_of(data["session"])
        if p["consented"] is None or headphone_state(p) in ("todo", "failed"):
            raise _Refused(409, "this participant is not at the trials")
        trials = lists[p["list_index"]]
        i = data["trial"]
        if not 0 <= i < len(trials):
            raise _Refused(422, "no such trial")
        if data["response"] not in choice_set:
            raise _Refused(422, "the response is not one of the choices")
        rt = data["rt_ms"]
        if not 0 <= rt <= 3.6e6:
            raise _Refused(422, "rt_ms out of range")
        t = trials[i]
        s = stimuli[t["stimulus"]]
        answered = store.answered(p["id"])
        if i not in answered and any(j not in answered for j in range(i)):
            raise _Refused(409, "answer the trials in order")
        correct = data["response"] == s["answer"]
        new = store.record(
            p["id"],
            i,
            phase=t["phase"],
            stimulus=t["stimulus"],
            condition=s["condition"],
            source=s["source"],
            answer=s["answer"],
            response=data["response"],
            correct=correct,
            rt_ms=rt,
            client_time=data["client_time"],
        )
        out = {"recorded": new}
        if t["phase"] == "practice":
            stored = store.response(p["id"], i)
            out["feedback"] = {"correct": bool(stored["correct"]), "answer": s["answer"]}
        return out

    async def response(request: Request) -> Response:
        data = await _json(
            request,
            {
                "session": (str, True),
                "trial": (int, True),
                "response": (str, True),
                "rt_ms": (float, True),
                "client_time": (float, False),
            },
        )
        return JSONResponse(await run_in_threadpool(respond, data))

    async def media_file(request: Request) -> Response:
        s = stimuli.get(request.path_params["sid"])
        if s is None:
            return PlainTextResponse("not found", status_code=404)
        path = root / s["file"]
        kind_ = "image/png" if path.suffix == ".png" else "audio/wav"
        # Not the file's own time (it would tell the order the build wrote stimuli in, condition by condition).
        headers = {"Cache-Control": "private, max-age=3600", "ETag": f'"{request.path_params["sid"]}"'}
        return FileResponse(path, media_type=kind_, headers={**headers, "Last-Modified": built})

    def progress() -> dict:
        people = store.all_participants()
        rows = store.all_responses()
        done = {}
        for r in rows:
            done[r["participant_id"]] = done.get(r["participant_id"], 0) + 1
        return {
            "experiment": exp["name"],
            "kind": kind,
            "participants": [
                {
                    "id": p["id"],
                    "external_id": p["external_id"],
                    "list": p["list_index"],
                    "answered": done.get(p["id"], 0),
                    "trials": len(lists[p["list_index"]]),
                    "headphones": headphone_state(p),
                    "finished": p["finished"] is not None,
                }
                for p in people
            ],
            "responses": len(rows),
        }

    def researcher_only(request: Request) -> None:
        if not _token_ok(request, exp["researcher_token_sha256"]):
            raise _Refused(401, "researcher pages need the experiment's token (researcher_token.txt)")

    async def researcher(request: Request) -> Response:
        researcher_only(request)
        prog = await run_in_threadpool(progress)
        rows = "".join(
            f"<tr><td>{html.escape(p['external_id'])}</td><td>{p['list']}</td><td>{p['answered']} / {p['trials']}</td>"
            f"<td>{p['headphones']}</td><td>{'yes' if p['finished'] else ''}</td></tr>"
            for p in prog["participants"]
        )
        finished = sum(p["finished"] for p in prog["participants"])
        body = (
            f"<!doctype html><meta charset=utf-8><title>{html.escape(exp['name'])}: progress</title>"
            f'<link rel=stylesheet href="static/style.css"><main class=researcher>'
            f"<h1>{html.escape(exp['name'])}</h1><p>{len(prog['participants'])} participants, {finished} finished, "
            f"{prog['responses']} responses.</p><table><tr><th>participant</th><th>list</th><th>answered</th>"
            f"<th>headphones</th><th>finished</th></tr>{rows}</table></main>"
        )
        return HTMLResponse(body)

    async def researcher_json(request: Request) -> Response:
        researcher_only(request)
        return JSONResponse(await run_in_threadpool(progress))

    async def researcher_csv(request: Request) -> Response:
        researcher_only(request)
        from metamers.experiments.analyze import tidy_trials, write_csv

        rows = await run_in_threadpool(tidy_trials, exp, store)
        buf = io.StringIO()
        write_csv(buf, rows)
        return Response(buf.getvalue(), media_type="text/csv")

    async def refused(request: Request, exc: _Refused) -> Response:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    routes = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/api/start", start, methods=["POST"]),
        Route("/api/consent", consent, methods=["POST"]),
        Route("/api/headphones", headphones, methods=["POST"]),
        Route("/api/next", next_, methods=["POST"]),
        Route("/api/response", response, methods=["POST"]),
        Route("/media/{sid}", media_file),
        Route("/researcher", researcher),
        Route("/researcher/progress.json", researcher_json),
        Route("/researcher/trials.csv", researcher_csv),
    ]
    app = Starlette(routes=routes, exception_handlers={_Refused: refused}, middleware=[Middleware(_SecurityHeaders)])
    app.state.store = store
    app.state.experiment = exp
    return app
