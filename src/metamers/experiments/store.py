"""Where an experiment's responses live: a SQL database (SQLite by default, PostgreSQL by URL).

Every response is written in its own transaction the moment it arrives. A response is keyed by (participant,
trial), so a repeated submission (a double click, a retry after a lost connection, a reload) is recognised and
never stored twice.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

__all__ = ["Store", "default_url"]

_meta = sa.MetaData()
participants = sa.Table(
    "participants",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session", sa.String(64), nullable=False, unique=True),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("study_id", sa.String(128)),
    sa.Column("visit_id", sa.String(128)),
    sa.Column("list_index", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("consented", sa.Float),
    sa.Column("headphone_correct", sa.Integer),
    sa.Column("headphone_passed", sa.Boolean),
    sa.Column("finished", sa.Float),
    sa.Column("user_agent", sa.String(512)),
)
responses = sa.Table(
    "responses",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant_id", sa.Integer, sa.ForeignKey("participants.id"), nullable=False),
    sa.Column("trial", sa.Integer, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("stimulus", sa.String(32), nullable=False),
    sa.Column("condition", sa.String(32), nullable=False),
    sa.Column("source", sa.String(128)),
    sa.Column("answer", sa.String(128)),
    sa.Column("response", sa.String(128), nullable=False),
    sa.Column("correct", sa.Boolean, nullable=False),
    sa.Column("rt_ms", sa.Float, nullable=False),
    sa.Column("client_time", sa.Float),
    sa.Column("received", sa.Float, nullable=False),
    sa.UniqueConstraint("participant_id", "trial", name="one_response_per_trial"),
)
headphone = sa.Table(
    "headphone_responses",
    _meta,
    sa.Column("participant_id", sa.Integer, sa.ForeignKey("participants.id"), nullable=False),
    sa.Column("trial", sa.Integer, nullable=False),
    sa.Column("response", sa.Integer, nullable=False),
    sa.Column("correct", sa.Boolean, nullable=False),
    sa.Column("received", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("participant_id", "trial"),
)


def default_url(directory: str | os.PathLike) -> str:
    """The SQLite database inside an experiment directory.

    Examples
    --------
    >>> default_url("/tmp/exp")
    'sqlite:////tmp/exp/responses.sqlite'
    """
    return f"sqlite:///{Path(directory).resolve() / 'responses.sqlite'}"


class Store:
    """An experiment's database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path.sqlite`` or ``postgresql+psycopg://user:pw@host/db``.
    lists : int
        Number of trial lists; a new participant gets the next list in turn.

    Examples
    --------
    >>> store = Store("sqlite://", lists=2)
    >>> p = store.participant("PROLIFIC_PID", "abc")
    >>> store.participant("PROLIFIC_PID", "abc")["session"] == p["session"]
    True
    """

    def __init__(self, url: str, lists: int) -> None:
        self.lists = lists
        kw: dict = {}
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kw["poolclass"] = sa.pool.StaticPool
        self.engine = sa.create_engine(url, **kw)
        if url.startswith("sqlite"):

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record) -> None:  # WAL: readers never block the writer
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        _meta.create_all(self.engine)
        self._new = threading.Lock()

    # participants -----------------------------------------------------------------------------------------------
    def participant(self, source: str, external_id: str, **fields: object) -> dict:
        """The participant with this external id, created (with the next trial list) on first sight."""
        with self._new, self.engine.begin() as c:
            row = c.execute(sa.select(participants).where(participants.c.external_id == external_id)).mappings().first()
            if row is not None:
                return dict(row)
            n = c.execute(sa.select(sa.func.count()).select_from(participants)).scalar_one()
            values = {
                "session": secrets.token_urlsafe(24),
                "external_id": external_id,
                "source": source,
                "list_index": n % self.lists,
                "created": time.time(),
                **fields,
            }
            try:
                c.execute(participants.insert().values(**values))
            except IntegrityError:  # created a moment ago by another process serving the same database
                pass
        return self.by_external(external_id)

    def by_external(self, external_id: str) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(participants).where(participants.c.external_id == external_id)).mappings().one()
        return dict(row)

    def by_session(self, session: str) -> dict | None:
        """The participant a session token belongs to, or None."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(participants).where(participants.c.session == session)).mappings().first()
        return dict(row) if row is not None else None

    def update(self, participant_id: int, **fields: object) -> None:
        with self.engine.begin() as c:
            c.execute(participants.update().where(participants.c.id == participant_id).values(**fields))

    # responses --------------------------------------------------------------------------------------------------
    def answered(self, participant_id: int) -> set[int]:
        """The trials this participant has answered."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(responses.c.trial).where(responses.c.participant_id == participant_id))
            return {r[0] for r in rows}

    def record(self, participant_id: int, trial: int, **fields: object) -> bool:
        """Store a response; False (and nothing stored) when this trial already has one."""
        try:
            with self.engine.begin() as c:
                c.execute(
                    responses.insert().values(
                        participant_id=participant_id, trial=trial, received=time.time(), **fields
                    )
                )
            return True
        except IntegrityError:
            return False

    def response(self, participant_id: int, trial: int) -> dict | None:
        with self.engine.connect() as c:
            row = (
                c.execute(
                    sa.select(responses).where(responses.c.participant_id == participant_id, responses.c.trial == trial)
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def record_headphone(self, participant_id: int, trial: int, response: int, correct: bool) -> bool:
        """Store a headphone-check answer; False when this trial already has one."""
        try:
            with self.engine.begin() as c:
                c.execute(
                    headphone.insert().values(
                        participant_id=participant_id,
                        trial=trial,
                        response=response,
                        correct=correct,
                        received=time.time(),
                    )
                )
            return True
        except IntegrityError:
            return False

    def headphone_answers(self, participant_id: int) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(headphone).where(headphone.c.participant_id == participant_id).order_by(headphone.c.trial)
            ).mappings()
            return [dict(r) for r in rows]

    # researcher views -------------------------------------------------------------------------------------------
    def all_participants(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(participants).order_by(participants.c.id)).mappings()]

    def all_responses(self) -> list[dict]:
        with self.engine.connect() as c:
            q = sa.select(responses).order_by(responses.c.participant_id, responses.c.trial)
            return [dict(r) for r in c.execute(q).mappings()]

    def all_headphone(self) -> list[dict]:
        with self.engine.connect() as c:
            q = sa.select(headphone).order_by(headphone.c.participant_id, headphone.c.trial)
            return [dict(r) for r in c.execute(q).mappings()]
