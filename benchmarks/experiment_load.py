"""Bounded load test of the experiment server on loopback: simulated participants against `metamers experiment serve`.

Work: ``metamers experiment serve`` (uvicorn, one process, SQLite) runs as a separate process on a free loopback
port.  ``--participants`` simulated participants (asyncio + httpx, one client and one participant id each) walk the
API as the page does: the page and its script and style, ``/api/start``, the mask, ``/api/consent``, the headphone
check for sounds, then ``/api/next``, the trial's media bytes, a think time of 50-300 ms, ``/api/response``, until
their list is done; then a new participant takes the slot, until ``--seconds`` have passed (a participant still at
it then stops, as one who closes the tab).  About 5 % of responses are sent twice: half as a double click (both at
once), half as a retry (the second after the first's reply).  Every request's latency is recorded per route.

Afterwards the database is checked against what the clients saw: every response acknowledged with
``recorded: true`` is stored exactly once (none lost, no (participant, trial) stored twice, none acknowledged as new
twice), and no request failed (5xx, 4xx or a connection error).

Without ``--experiment`` it builds its own: a tiny image run (EfficientNet-Lite0 metamers of 3 photos at
``block_1``, as the tests' run) and an experiment with 50 trial lists from it (1-2 minutes on 2 cores).

Run by hand:  .venv/bin/python benchmarks/experiment_load.py [--participants 50 --seconds 60 --experiment DIR]
Writes benchmarks/results/experiment_load.{json,md}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import functools
import itertools
import json
import math
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

PLAN = """
name = "load-images"
batch = 3
[stimuli]
images = ["chelsea", "coffee", "rocket"]
[synthesis.image]
iterations = 120
lr = 0.02
[validation]
pairs = 200
[[model]]
name = "efficientnet-lite0"
layers = ["block_1"]
"""


def build(tmp: Path) -> Path:
    """A tiny image run and an experiment of 50 trial lists from it."""
    from metamers.experiments import build_experiment
    from metamers.runs.run import run_plan

    (tmp / "plan.toml").write_text(PLAN)
    t = time.perf_counter()
    run_plan(tmp / "plan.toml", tmp / "run", progress=False)
    build_experiment(tmp / "run", tmp / "exp", kind="image", participants=50, practice=3, catch=1)
    print(f"built the run and the experiment in {time.perf_counter() - t:.0f} s", flush=True)
    return tmp / "exp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(experiment: Path, db: str, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "metamers.cli", "experiment", "serve", str(experiment), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--db", db], stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/style.css", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()}")


class Tally:
    """What the clients saw: latencies and statuses per route, failures, and every /api/response reply."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter = Counter()
        self.failures: list[str] = []
        self.acks: dict[tuple[str, int], list[tuple[bool, str]]] = defaultdict(list)
        self.sent = self.started = self.finished = self.duplicated = 0
        self.lag: list[float] = []  # how late the clients' event loop wakes from a 10 ms sleep

    async def request(self, client: httpx.AsyncClient, route: str, url: str, body: dict | None = None):
        self.sent += 1
        t = time.perf_counter()
        try:
            r = await (client.get(url) if body is None else client.post(url, json=body))
        except httpx.HTTPError as exc:
            self.failures.append(f"{route}: {type(exc).__name__}: {exc}")
            return None
        self.latency[route].append(time.perf_counter() - t)
        self.status[route, r.status_code] += 1
        if r.status_code >= 400:
            self.failures.append(f"{route}: {r.status_code} {r.text[:200]}")
            return None
        return r


async def participant(url: str, exp: dict, tally: Tally, rng: random.Random, external: str, deadline: float, args):
    def think():
        return asyncio.sleep(rng.uniform(*args.think_ms) / 1000)

    # a client of its own (its own connections, as a browser); verify=False: plain HTTP, and loading the CA bundle
    # (~90 ms of CPU per client) would stall every other participant's event loop
    async with httpx.AsyncClient(base_url=url, timeout=30, verify=False) as c:
        for page, route in (
            ("/", "GET /"),
            ("/static/app.js", "GET /static/*"),
            ("/static/style.css", "GET /static/*"),
        ):
            await tally.request(c, route, page)
        body = {"params": {"participant": external}, "user_agent": "benchmarks/experiment_load.py"}
        r = await tally.request(c, "POST /api/start", "/api/start", body)
        if r is None:
            return
        state = r.json()
        session = state["session"]
        if state["mask"]:
            await tally.request(c, "GET /media/{id}", "/" + state["mask"])
        if await tally.request(c, "POST /api/consent", "/api/consent", {"session": session}) is None:
            return
        if state["headphones"] == "todo":
            for i, media in enumerate(state["headphone_check"]["trials"]):
                await tally.request(c, "GET /media/{id}", "/" + media)
                await think()
                answer = int(exp["stimuli"][exp["headphone_check"]["trials"][i]]["answer"])
                body = {"session": session, "trial": i, "response": answer}
                if await tally.request(c, "POST /api/headphones", "/api/headphones", body) is None:
                    return
        choices = exp["task"]["choices"]
        while time.monotonic() < deadline:
            r = await tally.request(c, "POST /api/next", "/api/next", {"session": session})
            if r is None:
                return
            t = r.json()
            if t["done"]:
                tally.finished += 1
                return
            if await tally.request(c, "GET /media/{id}", "/" + t["media"]) is None:
                return
            await think()
            response = rng.choice(choices)
            body = {"session": session, "trial": t["trial"], "response": response, "rt_ms": 800.0}
            body["client_time"] = time.time() * 1000

            send = functools.partial(tally.request, c, "POST /api/response", "/api/response", body)
            if rng.random() < args.duplicates:
                tally.duplicated += 1
                replies = await asyncio.gather(send(), send()) if rng.random() < 0.5 else [await send(), await send()]
            else:
                replies = [await send()]
            for r in replies:
                if r is not None:
                    tally.acks[external, t["trial"]].append((r.json()["recorded"], response))
            if None in replies:
                return


async def load(url: str, exp: dict, args) -> tuple[Tally, float]:
    tally, numbers = Tally(), itertools.count()
    deadline = time.monotonic() + args.seconds

    async def slot(k: int) -> None:
        rng = random.Random(args.seed * 100_000 + k)
        while time.monotonic() < deadline:
            tally.started += 1
            await participant(url, exp, tally, rng, f"load-{next(numbers):05d}", deadline, args)

    async def watch() -> None:
        while time.monotonic() < deadline:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            tally.lag.append(time.perf_counter() - t - 0.01)

    t = time.perf_counter()
    await asyncio.gather(watch(), *(slot(k) for k in range(args.participants)))
    return tally, time.perf_counter() - t


def verify(db: Path, tally: Tally) -> dict:
    """The database against the clients' acknowledgements."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT p.external_id, r.trial, r.response FROM responses r JOIN participants p ON p.id = r.participant_id"
        ).fetchall()
        repeated = con.execute(
            "SELECT COUNT(*) FROM (SELECT participant_id, trial FROM responses GROUP BY 1, 2 HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        participants = con.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
    stored = {(e.removeprefix("lab:"), t): resp for e, t, resp in rows}  # ?participant=ID is stored as lab:ID
    acked = {k: [resp for new, resp in v if new] for k, v in tally.acks.items()}
    acked = {k: v for k, v in acked.items() if v}
    out = {
        "participants_in_db": participants,
        "rows": len(rows),
        "acknowledged_new": len(acked),
        "replies_recorded_false": sum(not new for v in tally.acks.values() for new, _ in v),
        "lost": len(acked.keys() - stored.keys()),
        "stored_twice": repeated,
        "acknowledged_new_twice": sum(len(v) > 1 for v in acked.values()),
        "stored_not_acknowledged": len(stored.keys() - acked.keys()),
        "stored_other_response": sum(stored[k] != v[0] for k, v in acked.items() if k in stored),
        "failed_requests": len(tally.failures),
    }
    out["ok"] = all(out[k] == 0 for k in ("lost", "stored_twice", "acknowledged_new_twice", "stored_not_acknowledged",
                                          "stored_other_response", "failed_requests"))  # fmt: skip
    return out


def percentiles(seconds: list[float]) -> dict:
    xs = sorted(seconds)

    def at(q: float) -> float:
        return round(1000 * xs[max(0, math.ceil(q / 100 * len(xs)) - 1)], 2)

    return {"n": len(xs), "p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": round(1000 * xs[-1], 2)}


def main() -> None:
    from metamers.experiments import load_experiment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=50, help="simulated participants at once (default: 50)")
    ap.add_argument("--seconds", type=float, default=60, help="how long new participants keep coming (default: 60)")
    ap.add_argument("--experiment", type=Path, help="an experiment directory (default: build a tiny one)")
    ap.add_argument("--think-ms", type=float, nargs=2, default=(50, 300), help="think time range (default: 50 300)")
    ap.add_argument("--duplicates", type=float, default=0.05, help="share of responses sent twice (default: 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where the results go")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        directory = args.experiment or build(tmp)
        exp = load_experiment(directory)
        db = tmp / "load.sqlite"
        port = free_port()
        load_before = os.getloadavg()
        server = start_server(directory, f"sqlite:///{db}", port, tmp / "server.log")
        try:
            cpu0, client0 = cpu_seconds(server.pid), time.process_time()
            tally, wall = asyncio.run(load(f"http://127.0.0.1:{port}", exp, args))
            server_cpu, client_cpu = cpu_seconds(server.pid) - cpu0, time.process_time() - client0
        finally:
            server.terminate()
            server.wait(timeout=30)
        load_after = os.getloadavg()
        server_log = (tmp / "server.log").read_text()
        integrity = verify(db, tally)
    all_latencies = [x for v in tally.latency.values() for x in v]
    requests = tally.sent
    m = machine()
    m["packages"] = {p: version(p) for p in ("starlette", "uvicorn", "sqlalchemy", "httpx")}
    # what uvicorn picks when it is given "auto": the C parser and loop when installed (uvicorn[standard])
    m["uvicorn_http"] = "httptools" if find_spec("httptools") else "h11"
    m["uvicorn_loop"] = "uvloop" if find_spec("uvloop") else "asyncio"
    m["load_average_before"] = [round(x, 2) for x in load_before]
    m["load_average_after"] = [round(x, 2) for x in load_after]
    result = {
        "machine": m,
        "settings": {
            "participants_at_once": args.participants,
            "seconds": args.seconds,
            "think_ms": list(args.think_ms),
            "duplicates": args.duplicates,
            "seed": args.seed,
            "server": "metamers experiment serve (uvicorn, 1 process), SQLite (WAL) on local disk, loopback",
            "experiment": {
                "kind": exp["kind"],
                "built_here": args.experiment is None,
                "trials_per_participant": len(exp["lists"][0]),
                "trial_lists": len(exp["lists"]),
                "stimuli": len(exp["stimuli"]),
            },
        },
        "wall_s": round(wall, 2),
        "participants_started": tally.started,
        "participants_finished": tally.finished,
        "responses_sent_twice": tally.duplicated,
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "responses_stored": integrity["rows"],
        "responses_stored_per_s": round(integrity["rows"] / wall, 1),
        "server_cpu_s": round(server_cpu, 1),
        "client_cpu_s": round(client_cpu, 1),
        "latency": {"all": percentiles(all_latencies), **{k: percentiles(v) for k, v in sorted(tally.latency.items())}},
        "client_loop_lag": percentiles(tally.lag),
        "statuses": {f"{route} {status}": n for (route, status), n in sorted(tally.status.items())},
        "integrity": integrity,
        "failures": tally.failures[:20],
        "server_log_tail": server_log[-2000:],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "experiment_load.json").write_text(json.dumps(result, indent=2))
    (args.out / "experiment_load.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    m, s, i = r["machine"], r["settings"], r["integrity"]
    pk, lag = m["packages"], r["client_loop_lag"]
    busy = max(m["load_average_before"][0], m["load_average_after"][0]) > 0.5 * m["cores"]
    lines = [
        "# The experiment server under load on loopback",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; Python {m['python']}, starlette {pk['starlette']}, "
        f"uvicorn {pk['uvicorn']}, sqlalchemy {pk['sqlalchemy']}, httpx {pk['httpx']} (client). "
        f"Load average (1, 5, 15 min) before: {', '.join(map(str, m['load_average_before']))}; after: "
        f"{', '.join(map(str, m['load_average_after']))}.",
        "",
        f"Server: {s['server']}; uvicorn's HTTP parser {m['uvicorn_http']}, event loop {m['uvicorn_loop']}. "
        f"Clients: {s['participants_at_once']} simulated participants at once for "
        f"{s['seconds']:.0f} s (asyncio + httpx in one process on the same machine), each walking the page's route "
        f"(page, script, style, start, consent, then next + media + response per trial) with think times of "
        f"{s['think_ms'][0]:.0f}-{s['think_ms'][1]:.0f} ms; a finished participant is replaced by a new one; "
        f"{100 * s['duplicates']:.0f} % of responses sent twice (half at once, half as a retry). Experiment: "
        f"{s['experiment']['kind']}, {s['experiment']['trials_per_participant']} trials per participant, "
        f"{s['experiment']['trial_lists']} trial lists.",
        "",
        f"{r['participants_started']} participants started, {r['participants_finished']} finished; "
        f"{r['requests']} requests in {r['wall_s']:.1f} s ({r['requests_per_s']:.0f} requests/s); "
        f"{r['responses_stored']} responses stored ({r['responses_stored_per_s']:.0f}/s), "
        f"{r['responses_sent_twice']} of them sent twice. CPU: server {r['server_cpu_s']:.0f} s, "
        f"clients {r['client_cpu_s']:.0f} s of the {r['wall_s']:.0f} s. The clients' event loop woke from a "
        f"10 ms sleep {lag['p50_ms']:.1f} ms late at the median, {lag['p99_ms']:.1f} ms at p99 (part of every "
        "latency below).",
        "",
        "| route | requests | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for route, q in r["latency"].items():
        name = "**all**" if route == "all" else f"`{route}`"
        lines.append(
            f"| {name} | {q['n']} | {q['p50_ms']:.1f} | {q['p95_ms']:.1f} | {q['p99_ms']:.1f} | {q['max_ms']:.1f} |"
        )
    verdict = "PASS" if i["ok"] else "FAIL"
    lines += [
        "",
        f"Integrity: **{verdict}**. {i['acknowledged_new']} responses acknowledged with `recorded: true`, "
        f"{i['rows']} rows in the database: {i['lost']} lost, {i['stored_twice']} (participant, trial) stored twice, "
        f"{i['acknowledged_new_twice']} acknowledged as new twice, {i['stored_not_acknowledged']} stored without "
        f"an acknowledgement, {i['stored_other_response']} stored with another answer than sent; "
        f"{i['replies_recorded_false']} duplicate submissions answered `recorded: false`. "
        f"Failed requests (5xx, 4xx, connection errors): {i['failed_requests']}.",
        "",
    ]
    if busy:
        lines += [
            f"Note: the machine was busy with other jobs (load average up to "
            f"{max(m['load_average_before'][0], m['load_average_after'][0]):.1f} on {m['cores']} cores), and the "
            "clients share the cores with the server: latencies are upper bounds of what the server alone would take.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
