"""A run's catalog: one SQLite file with a row per metamer, its validation, and its rho at every measured layer."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from metamers._files import DamagedFile, set_aside

__all__ = ["Catalog"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS metamers (
    id INTEGER PRIMARY KEY,
    result_file TEXT NOT NULL,
    item INTEGER NOT NULL,
    model TEXT NOT NULL,
    layer TEXT NOT NULL,
    stimulus TEXT,
    seed INTEGER,
    iterations INTEGER,
    settings TEXT,
    final_loss REAL,
    stop_reason TEXT,
    UNIQUE (result_file, item)
);
CREATE TABLE IF NOT EXISTS validation (
    metamer_id INTEGER PRIMARY KEY REFERENCES metamers(id),
    source TEXT NOT NULL,
    label_stimulus TEXT,
    label_metamer TEXT,
    rho_layer REAL,
    rho_logits REAL,
    null_threshold REAL,
    accepted INTEGER NOT NULL,
    reason TEXT NOT NULL,
    rule TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_similarity (
    metamer_id INTEGER NOT NULL REFERENCES metamers(id),
    measured_layer TEXT NOT NULL,
    spearman REAL, pearson REAL, snr_db REAL,
    PRIMARY KEY (metamer_id, measured_layer)
);
CREATE TABLE IF NOT EXISTS transfer (
    generator TEXT NOT NULL,
    layer TEXT NOT NULL,
    recognizer TEXT NOT NULL,
    label_space TEXT NOT NULL,
    source TEXT NOT NULL,
    n INTEGER, proportion REAL, sem REAL, natural_accuracy REAL, natural_sem REAL, chance REAL, own INTEGER,
    PRIMARY KEY (generator, layer, recognizer, label_space, source)
);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    model TEXT,
    kind TEXT,
    stage TEXT,
    batch INTEGER,
    items INTEGER,
    state TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    started REAL,
    finished REAL,
    seconds REAL,
    error TEXT,
    output TEXT
);
CREATE TABLE IF NOT EXISTS nulls (
    model TEXT NOT NULL,
    layer TEXT NOT NULL,
    fields TEXT NOT NULL,
    pairs INTEGER, median REAL, p99 REAL, max REAL,
    PRIMARY KEY (model, layer, fields)
);
"""


class Catalog:
    """The SQLite catalog of a run directory (``catalog.sqlite``); every write is one committed transaction.

    Examples
    --------
    >>> import tempfile
    >>> cat = Catalog(tempfile.mkdtemp())
    >>> mid = cat.add_metamer(result_file="a.safetensors", item=0, model="m", layer="l", stimulus="cat")
    >>> cat.add_metamer(result_file="a.safetensors", item=0, model="m", layer="l", stimulus="cat") == mid
    True
    """

    def __init__(self, directory: str | os.PathLike, *, repair: bool = False, readonly: bool = False) -> None:
        """Open (or create) the catalog of ``directory``.

        Parameters
        ----------
        repair : bool
            A damaged catalog (truncated, overwritten) is set aside as ``catalog.sqlite.corrupt`` and a new one
            started (``self.repaired`` says where the old one went); a run's next steps make everything in it again
            from the results.  Without ``repair`` it is a :class:`~metamers._files.DamagedFile`.
        readonly : bool
            Only read (``metamers status``): works in a directory this user cannot write; nothing is created.

        Raises
        ------
        DamagedFile
            A damaged catalog, without ``repair``.
        PermissionError
            A catalog that cannot be written (a read-only directory), unless ``readonly``.
        """
        self.path = Path(directory) / "catalog.sqlite"
        self.readonly, self.repaired = readonly, None
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no catalog {self.path}: {self.path.parent} is not a run directory yet.")
            self._guard(lambda: self.query("SELECT COUNT(*) FROM jobs"), repair=False)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._guard(self._create, repair)

    def _create(self) -> None:
        with self._connect() as db:
            db.executescript(SCHEMA)
            (ok,) = db.execute("PRAGMA quick_check").fetchone()
        if ok != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {ok}")

    def _guard(self, fn: Callable[[], object], repair: bool) -> None:
        """Run ``fn``; a damaged file is set aside and ``fn`` run again (``repair``) or a DamagedFile; a file that
        cannot be written is a PermissionError naming it."""
        try:
            fn()
        except sqlite3.DatabaseError as e:
            name = getattr(e, "sqlite_errorname", "")
            if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
                raise PermissionError(
                    f"cannot write the catalog {self.path} ({e}): the run directory must be writable by this user."
                ) from e
            if not repair:
                raise DamagedFile(self.path, e, "`metamers run` on its directory sets it aside and rebuilds it.") from e
            for extra in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + extra)
                if side.exists():
                    set_aside(side)
            self.repaired = set_aside(self.path)
            fn()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose block is one transaction (committed on success, rolled back on error), then closed."""
        if self.readonly:
            try:
                db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            except sqlite3.OperationalError:  # WAL in a directory this user cannot write: read it as it is
                db = sqlite3.connect(self.path.resolve().as_uri() + "?immutable=1", uri=True)
        else:
            db = sqlite3.connect(self.path, timeout=30)
        try:
            if not self.readonly:
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            with db:
                yield db
        finally:
            db.close()

    def add_metamer(self, **row: object) -> int:
        """Insert a metamer (or update the one with the same result file and item); its id."""
        row = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{k}=excluded.{k}" for k in row if k not in ("result_file", "item"))
        with self._connect() as db:
            db.execute(
                f"INSERT INTO metamers ({cols}) VALUES ({marks}) "
                f"ON CONFLICT(result_file, item) DO UPDATE SET {updates}",
                tuple(row.values()),
            )
            (mid,) = db.execute(
                "SELECT id FROM metamers WHERE result_file=? AND item=?", (row["result_file"], row["item"])
            ).fetchone()
        return int(mid)

    def set_validation(self, metamer_id: int, layers: Iterable[tuple[str, float, float, float]], **row: object) -> None:
        """Replace a metamer's validation row and its per-layer similarities, in one transaction."""
        row = {"metamer_id": metamer_id, **row}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO validation ({cols}) VALUES ({marks})", tuple(row.values()))
            db.execute("DELETE FROM layer_similarity WHERE metamer_id=?", (metamer_id,))
            db.executemany(
                "INSERT INTO layer_similarity VALUES (?, ?, ?, ?, ?)",
                [(metamer_id, lay, sp, pe, snr) for lay, sp, pe, snr in layers],
            )

    def add_null(self, model: str, layer: str, fields: dict, pairs: int, median: float, p99: float, mx: float) -> None:
        """Record a null's summary (the values themselves are in the run's ``nulls/`` folder)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO nulls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model, layer, json.dumps(fields, sort_keys=True), pairs, median, p99, mx),
            )

    def set_transfer(self, cells: Iterable[dict], replace: bool = False) -> None:
        """Insert or replace transfer results (one row per generator, layer, recognizer, label space, source); with
        ``replace``, they replace every earlier transfer row, in the same transaction."""
        cols = ("generator", "layer", "recognizer", "label_space", "source", "n", "proportion", "sem",
                "natural_accuracy", "natural_sem", "chance", "own")  # fmt: skip
        with self._connect() as db:
            if replace:
                db.execute("DELETE FROM transfer")
            db.executemany(
                f"INSERT OR REPLACE INTO transfer ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [tuple(c[k] for k in cols) for c in cells],
            )

    def set_job(self, name: str, **row: object) -> None:
        """Insert a job (a step of a run) or update the given fields of the one named ``name``."""
        with self._connect() as db:
            if db.execute("SELECT 1 FROM jobs WHERE name=?", (name,)).fetchone():
                sets = ", ".join(f"{k}=?" for k in row)
                db.execute(f"UPDATE jobs SET {sets} WHERE name=?", (*row.values(), name))
            else:
                cols = ["name", *row]
                db.execute(
                    f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    (name, *row.values()),
                )

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        """Rows of a read-only query as dicts."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, params).fetchall()]
