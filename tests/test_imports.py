"""The house's rules, read from the source with ``ast`` (docs/architecture.md, "Which way the imports point").

Rooms, from the bottom up; a module may import a room below its own, never one above:

0. the core: taps, synthesis, settings, noise, similarity, validation, nulls, transfer, modality and their helpers;
1. ``audio/``;
2. ``models/`` and ``stimuli/`` (they use the core and ``audio/``, not each other);
3. the read model of a run: ``runs/rundir.py`` and what it reads (``catalog``, ``plan``, ``own``);
4. ``report/``;
5. ``experiments/``;
6. the rest of ``runs/``: the code that carries out a plan;
7. ``demo.py`` and the command line.

The one import that points up is the run calling the report as a step, from inside a function.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "metamers"

READ_MODEL = {"metamers.runs.rundir", "metamers.runs.catalog", "metamers.runs.plan", "metamers.runs.own"}
WEB_AND_DATABASE = ("starlette", "uvicorn", "sqlalchemy", "psycopg", "multipart")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool
    names: tuple[str, ...]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _existing(name: str) -> str:
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def _edges(module: str) -> list[Edge]:
    """Every import of a metamers module in ``module`` (``from pkg import submodule`` names the submodule)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("metamers"):
                continue
            names = tuple(a.name for a in node.names)
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            targets = subs or [target]
        elif isinstance(node, ast.Import):
            names = ()
            targets = [a.name for a in node.names if a.name.startswith("metamers")]
        else:
            continue
        for t in targets:
            out.append(Edge(module, _existing(t), node.lineno, id(node) not in top_level, names))
    return out


EDGES = [e for m in MODULES for e in _edges(m)]


def room(module: str) -> tuple[int, str]:
    """(level, name) of the room a module lives in."""
    parts = module.split(".")
    sub = parts[1] if len(parts) > 1 else ""
    if module in READ_MODEL:
        return 3, "the run's read model"
    if sub == "audio":
        return 1, "audio"
    if sub in ("models", "stimuli"):
        return 2, sub
    if sub == "report":
        return 4, "report"
    if sub == "experiments":
        return 5, "experiments"
    if sub == "runs":
        return 6, "runs"
    if sub in ("demo", "cli", "_cli_checks", "_cli_synthesize"):
        return 7, "the command line"
    return 0, "the core"


def _closure(module: str) -> set[str]:
    """Every module that importing ``module`` can load, through module- and function-level imports alike (the
    package root's own re-exports left aside: every import passes through it)."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        parts = m.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
            name = ".".join(parts[:i])
            if name in MODULES and name not in seen:
                seen.add(name)
                todo.extend(e.target for e in EDGES if e.source == name)
    return seen


def test_the_rules_see_every_room():
    rooms = {room(m)[1] for m in MODULES}
    assert rooms == {"the core", "audio", "models", "stimuli", "the run's read model", "report", "experiments",
                     "runs", "the command line"}  # fmt: skip
    assert len(EDGES) > 200 and any(e.in_function for e in EDGES)


def test_no_room_imports_one_above_it():
    bad = []
    for e in EDGES:
        (low, here), (high, there) = room(e.source), room(e.target)
        if here == there or high < low:
            continue
        if here == "runs" and there == "report" and e.in_function:
            continue  # the run calls the report as one of its steps
        bad.append(f"{e.source}:{e.line} ({here}) imports {e.target} ({there})")
    assert not bad, "\n".join(bad)


def test_models_and_stimuli_do_not_import_each_other():
    bad = [e for e in EDGES if {room(e.source)[1], room(e.target)[1]} == {"models", "stimuli"}]
    assert not bad, bad


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in EDGES:
        if e.target != e.source and not e.source.startswith(e.target + "."):  # a module importing its own package
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("reader", ["metamers.report.html", "metamers.experiments.server", "metamers.demo"])
def test_readers_of_a_run_never_load_the_code_that_runs_one(reader):
    execution = {m for m in MODULES if room(m)[1] == "runs"} - {"metamers.runs"}
    loaded = _closure(reader) & execution
    if reader == "metamers.demo":  # the demo runs its plan: it may load the runner, but reads through the read model
        assert {e.target for e in EDGES if e.source == reader and e.target.startswith("metamers.runs.")} <= (
            READ_MODEL | {"metamers.runs.run", "metamers.runs.plan"}
        )
        return
    assert not loaded, sorted(loaded)


def test_experiments_never_reach_synthesis():
    for module in (m for m in MODULES if m.startswith("metamers.experiments")):
        assert "metamers.synthesis" not in _closure(module), module


def test_nothing_imports_the_command_line():
    bad = [e for e in EDGES if e.target == "metamers.cli" and e.source != "metamers.cli"]
    assert not bad, bad


def test_no_module_imports_another_modules_private_names():
    bad = [
        f"{e.source}:{e.line} imports {n} from {e.target}"
        for e in EDGES
        for n in e.names
        if n.startswith("_") and not n.startswith("__") and e.target != e.source
    ]
    assert not bad, bad


def test_only_the_experiments_and_their_command_use_the_web_and_database_libraries():
    bad = []
    for module, path in MODULES.items():
        if room(module)[1] in ("experiments", "the command line"):  # `metamers experiment serve` starts the server
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{module}:{node.lineno} {n}" for n in names if n.split(".")[0] in WEB_AND_DATABASE]
    assert not bad, bad


def test_no_source_file_is_over_600_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
