"""The paper's Table S4/S5 rows of a validation: per model and generation layer, metamers generated and accepted,
features, median rho at the layer and at the logits, the null's median; as CSV and for a terminal.

Examples
--------
>>> rows = summary_table([dict(model="m", layer="a", accepted=True, features=10, rho_layer=0.9,
...                            rho_logits=0.99, null_median=0.1)])
>>> table_csv(rows).splitlines()[1]
'm,a,1,1,10,0.9,0.1,0.99'
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable

import numpy as np

__all__ = ["TABLE_COLUMNS", "format_table", "summary_table", "table_csv"]


TABLE_COLUMNS = (
    "model",
    "layer",
    "generated",
    "accepted",
    "features",
    "median_rho_layer",
    "median_null_rho_layer",
    "median_rho_logits",
)


def summary_table(records: Iterable[dict]) -> list[dict]:
    """The paper's Table S4/S5 columns per (model, generation layer).

    Parameters
    ----------
    records : iterable of dict
        One per metamer with keys ``model``, ``layer``, ``accepted``, ``features``, ``rho_layer``, ``rho_logits``,
        ``null_median``.

    Examples
    --------
    >>> rows = summary_table([dict(model="m", layer="a", accepted=True, features=10, rho_layer=0.9,
    ...                            rho_logits=0.99, null_median=0.1)])
    >>> rows[0]["generated"], rows[0]["accepted"]
    (1, 1)
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["layer"]), []).append(r)
    rows = []
    for (model, layer), rs in groups.items():
        rows.append(
            {
                "model": model,
                "layer": layer,
                "generated": len(rs),
                "accepted": sum(bool(r["accepted"]) for r in rs),
                "features": rs[0]["features"],
                "median_rho_layer": float(np.median([r["rho_layer"] for r in rs])),
                "median_null_rho_layer": float(rs[0]["null_median"]),
                "median_rho_logits": float(np.median([r["rho_logits"] for r in rs])),
            }
        )
    return rows


def table_csv(rows: list[dict]) -> str:
    """The summary table as CSV text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(TABLE_COLUMNS), lineterminator=os.linesep)
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in TABLE_COLUMNS})
    return buf.getvalue()


def format_table(rows: list[dict]) -> str:
    """The summary table for a terminal."""
    head = (
        f"{'model':28s} {'layer':18s} {'gen':>4s} {'acc':>4s} {'features':>9s} {'rho@layer':>9s} {'null':>7s} "
        f"{'rho@logits':>10s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model'][:28]:28s} {r['layer'][:18]:18s} {r['generated']:4d} {r['accepted']:4d} {r['features']:9d} "
            f"{r['median_rho_layer']:9.4f} {r['median_null_rho_layer']:7.4f} {r['median_rho_logits']:10.4f}"
        )
    return "\n".join(lines)
