"""The read model of a run directory: its plan, where its files are, and typed reads of its catalog.

Everything that only reads a run (the report, the experiments, the demo's summary, ``metamers status``) reads it
through :class:`RunDir`, never through the code that runs a plan, so that it can be learned, tested and served
without starting an optimisation.  The SQL that reads the catalog lives here and nowhere else.

Examples
--------
>>> run = RunDir("runs/first")  # doctest: +SKIP
>>> run.plan.name, len(run.metamers()), run.media_path("efficientnet-lite0", "block_2", "chelsea", "image")
... # doctest: +SKIP
('first', 24, 'media/efficientnet-lite0/block_2/chelsea.png')
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from metamers.modality import modality
from metamers.runs.catalog import Catalog
from metamers.runs.own import register_plan_models
from metamers.runs.plan import Plan, load_plan

__all__ = ["RunDir", "RunError", "plan_of"]


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


def plan_of(directory: str | os.PathLike) -> Plan:
    """The plan a run directory was started with; its own models are registered by name (so that everything that
    reads the run can load them).

    Examples
    --------
    >>> plan_of("/nonexistent")
    Traceback (most recent call last):
    ...
    metamers.runs.rundir.RunError: /nonexistent is not a run directory (no plan.toml); start one with \
`metamers run PLAN --out DIR`.
    """
    directory = Path(directory)
    if (directory / "plan.toml").is_file():
        plan = load_plan(directory / "plan.toml")
    elif (directory / "plan.json").is_file():
        plan = Plan.from_dict(json.loads((directory / "plan.json").read_text()))
    else:
        raise RunError(
            f"{directory} is not a run directory (no plan.toml); start one with `metamers run PLAN --out DIR`."
        )
    register_plan_models(plan)
    return plan


class RunDir:
    """One run directory, read.

    Parameters
    ----------
    directory : path
        A directory that ``metamers run`` (or :func:`metamers.runs.run.run_plan`) filled.
    readonly : bool
        Open the catalog read-only (``metamers status`` on a directory it may not write).
    """

    def __init__(self, directory: str | os.PathLike, *, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self._readonly = readonly

    def __repr__(self) -> str:
        return f"RunDir({str(self.directory)!r})"

    @cached_property
    def plan(self) -> Plan:
        """The plan the run was started with (:func:`plan_of`)."""
        return plan_of(self.directory)

    @property
    def has_catalog(self) -> bool:
        """Whether any step has written the catalog yet."""
        return (self.directory / "catalog.sqlite").exists()

    @cached_property
    def _catalog(self) -> Catalog:
        return Catalog(self.directory, readonly=self._readonly)

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        return self._catalog.query(sql, params) if self.has_catalog else []

    def media_path(self, model: str, stage: str, stimulus: str, kind: str) -> str:
        """What a person sees or hears of a metamer (``stage="original"``: the stimulus), relative to the run."""
        return modality(kind).media_path(model, stage, stimulus)

    def exists(self, relative: str) -> bool:
        """Whether a file of the run (a path relative to it) is there."""
        return (self.directory / relative).exists()

    def jobs(self, step: str | None = None) -> list[dict]:
        """The jobs in the order the plan made them, each with its state (``pending``, ``running``, ``done``,
        ``failed``), model, stage, kind and output file; only one step's (``synthesize``, ...) if named."""
        if step is None:
            return self._query("SELECT * FROM jobs ORDER BY rowid")
        return self._query("SELECT * FROM jobs WHERE step = ? ORDER BY rowid", (step,))

    def metamers(self, accepted_only: bool = False) -> list[dict]:
        """Every synthesized metamer with its stage and, once validated, its verdict, rho and labels and its layer's
        null (``accepted`` is None before validation); in job order, then item order."""
        where = "WHERE v.accepted = 1 " if accepted_only else ""
        return self._query(
            "SELECT m.model, m.layer, m.stimulus, m.result_file, m.final_loss, m.iterations, j.stage, j.kind, "
            "j.output, v.accepted, v.reason, v.rho_layer, v.rho_logits, v.label_stimulus, v.label_metamer, "
            "n.median AS null_median, n.max AS null_max "
            "FROM metamers m JOIN jobs j ON j.output = m.result_file LEFT JOIN validation v ON v.metamer_id = m.id "
            f"LEFT JOIN nulls n ON n.model = m.model AND n.layer = m.layer {where}ORDER BY j.rowid, m.item"
        )

    def validated(self) -> int:
        """How many metamers have been validated."""
        return int(self._query("SELECT COUNT(*) AS n FROM validation")[0]["n"]) if self.has_catalog else 0

    def accepted_by_stage(self) -> dict[tuple[str, str], dict]:
        """``{(model, stage): {"n": validated, "accepted": accepted}}`` over the synthesis jobs."""
        rows = self._query(
            "SELECT j.model, j.stage, COUNT(v.metamer_id) AS n, COALESCE(SUM(v.accepted), 0) AS accepted FROM jobs j "
            "JOIN metamers m ON m.result_file = j.output JOIN validation v ON v.metamer_id = m.id "
            "WHERE j.step='synthesize' GROUP BY j.model, j.stage"
        )
        return {(r["model"], r["stage"]): r for r in rows}

    def stage_names(self) -> dict[tuple[str, str], str]:
        """``{(model, layer): stage}``: the plan's names of the generation layers that have metamers."""
        rows = self._query(
            "SELECT DISTINCT m.model, m.layer, j.stage FROM metamers m JOIN jobs j ON j.output = m.result_file"
        )
        return {(r["model"], r["layer"]): r["stage"] for r in rows}

    def transfer(self, source: str | None = None) -> list[dict]:
        """The transfer cells (what ``transfer.csv`` holds), in the order they were measured; of one source
        (``png``: what a person sees or hears, ``full``: full precision) if named."""
        if source is None:
            return self._query("SELECT * FROM transfer ORDER BY rowid")
        return self._query("SELECT * FROM transfer WHERE source = ? ORDER BY rowid", (source,))
