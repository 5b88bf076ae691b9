"""The room's state in a database, shared by every replica and kept across restarts (SQLAlchemy 2; no Streamlit).

What a class shares beyond the model weights (which live in core.store): which models the class trained
(id, settings, nickname, when, on which replica), the teacher's pin, the cleared models, the answers flag,
the lesson's votes, the teacher's cap on a run's cost (schema version 2's `settings`), and claims on the
trainings in flight with their per-epoch progress. The weights stay in the model store; the rows only name
them by id (core.identity).

Where: `BILINEAR_LAB_ROOM_URL` (or st.secrets["connections"]["room"]["url"], read in ui.resources) names any
SQLAlchemy URL, e.g. `postgresql+psycopg://lab:secret@db.example.org/lab` for replicas behind sticky
sessions. Unset: a SQLite file in the local model store's directory (`default_url`), so one server keeps
its room across restarts with no set-up.

Every change is one transaction that also bumps the room's revision, so a board compares one number to
know whether to redraw (read at most every POLL_SECONDS per process). Unique keys do the locking: a vote is
one row per (voter, step), a model one row per id (the first replica's time wins), and a claim one row per
model id that only one replica can hold while it is alive (`claim`). The schema is versioned
(`schema_version`); `migrate` runs the missing steps at start-up, under an advisory lock on PostgreSQL.

When the database cannot be reached the room keeps working from memory (a server.classroom.ClassRoom
started from the last state read) and says so (`problem`); it tries the database again after
RETRY_SECONDS. What changed meanwhile (pins, clears, the answers' switch, votes, the models trained here,
with the time each was made) is kept in order, at most MAX_PENDING changes, and written to the database
before anything else once it answers again (`_replay`): the other replicas then see it, and a restart
keeps it. Until then it lives in this server's memory only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from core.lesson import Vote
from server.classroom import MAX_VOTES, ClassRoom, RoomState
from server.room_profile import PROFILE, RoomProfile

log = logging.getLogger("bilinear_eigen_lab")
ENV_VAR = "BILINEAR_LAB_ROOM_URL"
FILE_NAME = "room.sqlite3"  # in the local model store's directory
POLL_SECONDS = 1.0  # a process reads the room's revision at most this often (boards ask every 2 s each)
RETRY_SECONDS = 10.0  # after a failure the database is left alone this long: pages never wait on it twice
CONNECT_TIMEOUT = 3  # seconds to open a connection to a database server
CLAIM_STALE_SECONDS = 60.0  # a running claim not renewed this long belongs to a replica that died
HEARTBEAT_SECONDS = 5.0  # how often a running training renews its claim between epochs
MAX_PENDING = 5_000  # changes kept for the database while it is unreachable (a class makes a few hundred)
T = TypeVar("T")

metadata = MetaData()
schema_version = Table(
    "schema_version", metadata, Column("version", Integer, primary_key=True), Column("applied_at", Float)
)
room_table = Table(
    "room",
    metadata,
    Column("id", Integer, primary_key=True),  # one row, id 1
    Column("pinned", String(16)),  # a model id, or NULL
    Column("answers_visible", Boolean, nullable=False),
    Column("revision", BigInteger, nullable=False),  # +1 in every change's transaction
)
models_table = Table(
    "models",
    metadata,
    Column("model_id", String(16), primary_key=True),
    Column("origin", String(16), nullable=False),  # trained, stopped
    Column("settings", Text, nullable=False),  # Config.to_dict() as JSON
    Column("nickname", String(64), nullable=False),  # core.board.nickname of the trainer's session token
    Column("trained_at", Float, nullable=False),  # seconds since the epoch, when the training ended
    Column("replica", String(128), nullable=False),  # which server trained it
)
cleared_table = Table(
    "cleared", metadata, Column("model_id", String(16), primary_key=True), Column("cleared_at", Float, nullable=False)
)
votes_table = Table(
    "votes",
    metadata,
    Column("voter", String(64), primary_key=True),  # a hash of the session token, never the token
    Column("step", String(32), primary_key=True),
    Column("choice", Integer, nullable=False),
    Column("right_choice", Integer, nullable=False),
    Column("cast_at", Float, nullable=False),
)
claims_table = Table(
    "claims",
    metadata,
    Column("model_id", String(16), primary_key=True),  # the Config's id: what the training will produce
    Column("replica", String(128), nullable=False),  # who holds it
    Column("state", String(16), nullable=False),  # running, finished, stopped, failed
    Column("epochs", Integer, nullable=False),
    Column("history", Text, nullable=False),  # the finished epochs' EpochMetrics.to_dict(), JSON
    Column("claimed_at", Float, nullable=False),
    Column("heartbeat", Float, nullable=False),
)
settings_table = Table(  # schema version 2: the teacher's settings for the whole class, one row each
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),  # MAX_RUN_SECONDS
    Column("value", Float, nullable=False),
)
MAX_RUN_SECONDS = "max_run_seconds"  # the teacher's cap on one run's estimated seconds (no row: the server's)
# Each step takes the schema from the previous version to its own; never edit a released step, add one.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: lambda conn: metadata.create_all(
        conn, tables=[room_table, models_table, cleared_table, votes_table, claims_table]
    ),
    2: lambda conn: metadata.create_all(conn, tables=[settings_table]),
}


def default_url(store_directory: str | None) -> str:
    """BILINEAR_LAB_ROOM_URL if set, else a SQLite file in the (local) model store's directory."""
    url = os.environ.get(ENV_VAR, "").strip()
    if url:
        return url
    if store_directory is None:
        raise ValueError("no room URL and no local directory for its SQLite file")
    Path(store_directory).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(store_directory) / FILE_NAME}"


def make_engine(url: str) -> Engine:
    """An engine that fails fast: a short connect timeout, and a connection checked before each use."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        return create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 15},  # waits for another writer of the file
            poolclass=StaticPool if memory else None,  # one in-memory database for every thread
        )
    args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
    return create_engine(url, connect_args=args, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=5)


def voter_key(token: str) -> str:
    """What the votes table keeps of a session token: a one-way hash (the token itself never leaves the server)."""
    return hashlib.sha256(b"bilinear-eigen-lab/voter\x00" + token.encode("utf-8", "replace")).hexdigest()[:32]


def where(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url  # only for messages

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the room's database"


@dataclass(frozen=True)
class RoomModel:
    """A model the class trained, as the room lists it."""

    model_id: str
    origin: str
    settings: dict[str, Any]
    nickname: str
    trained_at: float
    replica: str


@dataclass(frozen=True)
class Claim:
    """Who trains a model id now, and how far it got."""

    model_id: str
    replica: str
    state: str
    epochs: int
    history: tuple[dict[str, Any], ...]
    heartbeat: float

    def alive(self, now: float) -> bool:
        return self.state == "running" and now - self.heartbeat < CLAIM_STALE_SECONDS


class Room:
    """The room's state in a database (see the module docstring); the same methods as server.classroom.ClassRoom,
    plus the class's models and the training claims. Thread-safe; one per server process."""

    def __init__(
        self,
        url: str,
        replica: str | None = None,
        clock: Callable[[], float] = time.time,
        profile: RoomProfile = PROFILE,  # BILINEAR_LAB_PROFILE_ROOM: each database call's seconds, per page run
    ) -> None:
        self.url, self.clock, self.profile = url, clock, profile
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.engine = make_engine(url)
        self._sqlite = url.startswith("sqlite")
        self._db_lock = threading.Lock()  # SQLite has one writer: this process's threads take turns
        self._lock = threading.Lock()  # the caches below
        self._state: RoomState | None = None  # the last state read from the database
        self._models: tuple[int, list[RoomModel]] | None = None  # (revision, rows) read with it
        self._read_at = -float("inf")
        self._down_until = 0.0
        self._memory: ClassRoom | None = None  # while the database is unreachable
        self._pending: list[Callable[[Connection], Any]] = []  # changes made meanwhile, oldest first
        self._replaying = threading.Lock()  # one thread writes them; the others wait, so the order holds
        self.dropped = 0  # changes beyond MAX_PENDING, lost (logged)
        self.problem: str | None = None  # a sentence for the page while the database is unreachable
        self.fallback = ""  # why this room stands in for the configured one (ui.resources.room)
        self._migrated = False
        self._try(self.migrate)

    # --- the database, or memory while it is unreachable ---------------------------------------

    def available(self) -> bool:
        return self.clock() >= self._down_until

    def _try(self, work: Callable[[], T]) -> T | Failed:
        """Run `work` against the database; FAILED (and memory from now on, for RETRY_SECONDS) if it fails."""
        if not self.available():
            return FAILED
        try:
            if not self._migrated and work != self.migrate:
                self.migrate()
            if self._pending:
                self._replay()
            result = work()
        except SQLAlchemyError as error:
            self._fail(error)
            return FAILED
        if self.problem is not None:
            log.warning("the room's database %s can be reached again", where(self.url))
        self.problem, self._memory = None, None
        return result

    def _fail(self, error: Exception) -> None:
        first = self.problem is None
        self._down_until = self.clock() + RETRY_SECONDS
        self.problem = (
            "The class room's database cannot be reached: pins, cleared models, the answers' switch, votes and "
            "the list of the class's models now live in this server's memory, and are written to the database "
            "once it answers again. Until then they do not reach the class's other servers and will not survive "
            "a restart."
        )
        with self._lock:
            if self._memory is None:
                self._memory = ClassRoom(self._state)
        if first:
            log.error("the room's database %s cannot be reached: %s", where(self.url), error)

    def _defer(self, change: Callable[[Connection], Any]) -> None:
        """Keep a change the database did not take, for `_replay`."""
        with self._lock:
            self._pending.append(change)
            if len(self._pending) > MAX_PENDING:
                del self._pending[0]
                self.dropped += 1
                if self.dropped == 1:
                    log.error(
                        "more than %d room changes while its database is unreachable: the oldest are lost", MAX_PENDING
                    )

    def _replay(self) -> None:
        """Write the changes made while the database was unreachable, oldest first, each in its own transaction.
        A change the database refuses (not a lost connection: e.g. a row another replica changed so that it no
        longer applies) is logged and skipped, so one cannot hold the others back; a lost connection leaves
        the rest for the next try."""
        with self._replaying:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    change = self._pending[0]
                try:
                    self._transaction(change)
                except (OperationalError, InterfaceError):
                    raise  # unreachable again: the rest waits for the next try
                except DBAPIError as error:
                    log.error("a room change made while its database was unreachable was refused: %s", error)
                with self._lock:
                    self._pending.pop(0)

    def _transaction(self, change: Callable[[Connection], T], bump: bool = True) -> T:
        """One transaction: `change`, and the room's revision + 1 (when `bump`)."""
        with self.profile.database(), self._db_lock if self._sqlite else _nothing(), self.engine.begin() as conn:
            result = change(conn)
            if bump:
                conn.execute(update(room_table).where(room_table.c.id == 1).values(revision=room_table.c.revision + 1))
        if bump:
            with self._lock:
                self._read_at = -float("inf")  # this process reads its own change at once
        return result

    def _read(self, read: Callable[[Connection], T]) -> T:
        with self.profile.database(), self._db_lock if self._sqlite else _nothing(), self.engine.connect() as conn:
            return read(conn)

    def migrate(self) -> int:
        """Bring the schema to the newest version (each missing step in one transaction); the version."""
        with self._db_lock if self._sqlite else _nothing(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # replicas starting at once: one migrates, the others wait
                conn.execute(text("SELECT pg_advisory_xact_lock(2026122601)"))
            schema_version.create(conn, checkfirst=True)
            version = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
            for step in sorted(v for v in MIGRATIONS if v > version):
                MIGRATIONS[step](conn)
                conn.execute(insert(schema_version).values(version=step, applied_at=self.clock()))
                version = step
            if conn.execute(select(room_table.c.id).where(room_table.c.id == 1)).first() is None:
                conn.execute(insert(room_table).values(id=1, pinned=None, answers_visible=False, revision=0))
        self._migrated = True
        return version

    # --- the room's state (ClassRoom's methods) ---------------------------------------------------

    def revision(self) -> int:
        """The room's revision (at most POLL_SECONDS old), or the memory's while the database is down."""
        return self.state().revision

    def state(self) -> RoomState:
        with self._lock:
            fresh = self._state is not None and self.clock() - self._read_at < POLL_SECONDS
            if fresh and self._memory is None:
                return self._state
        read = self._try(self._load_state)
        return self._memory_room().state() if isinstance(read, Failed) else read

    def _load_state(self) -> RoomState:
        def load(conn: Connection) -> RoomState:
            row = conn.execute(select(room_table).where(room_table.c.id == 1)).one()
            with self._lock:
                if self._state is not None and self._state.revision == row.revision:
                    self._read_at = self.clock()
                    return self._state
            hidden = frozenset(conn.execute(select(cleared_table.c.model_id)).scalars())
            votes = tuple(
                Vote(v.voter, v.step, v.choice, v.right_choice)
                for v in conn.execute(select(votes_table).order_by(votes_table.c.cast_at, votes_table.c.voter))
            )
            models = [
                RoomModel(m.model_id, m.origin, json.loads(m.settings), m.nickname, m.trained_at, m.replica)
                for m in conn.execute(select(models_table).order_by(models_table.c.trained_at.desc()))
            ]
            settings = dict(conn.execute(select(settings_table.c.name, settings_table.c.value)).all())
            cap = settings.get(MAX_RUN_SECONDS)
            state = RoomState(
                row.pinned, hidden, bool(row.answers_visible), votes, int(row.revision), _float_or_none(cap)
            )
            with self._lock:
                self._state, self._models, self._read_at = state, (state.revision, models), self.clock()
            return state

        return self._read(load)

    def _memory_room(self) -> ClassRoom:
        with self._lock:
            if self._memory is None:
                self._memory = ClassRoom(self._state)
            return self._memory

    def _change(self, change: Callable[[Connection], None], in_memory: Callable[[ClassRoom], RoomState]) -> RoomState:
        """Write a change to the database, or (unreachable) to this server's memory; the room after it."""
        if isinstance(self._try(lambda: self._transaction(change)), Failed):
            self._defer(change)
            return in_memory(self._memory_room())
        return self.state()

    def pin(self, model_id: str) -> RoomState:
        return self._change(
            lambda conn: conn.execute(update(room_table).where(room_table.c.id == 1).values(pinned=model_id)),
            lambda memory: memory.pin(model_id),
        )

    def unpin(self) -> RoomState:
        return self._change(
            lambda conn: conn.execute(update(room_table).where(room_table.c.id == 1).values(pinned=None)),
            lambda memory: memory.unpin(),
        )

    def clear(self, model_ids: Sequence[str]) -> RoomState:
        """Hide these models from the board (they stay in the store and with whoever uses them)."""
        ids = sorted(set(model_ids))

        def change(conn: Connection) -> None:
            present = set(conn.execute(select(cleared_table.c.model_id)).scalars())
            rows = [{"model_id": i, "cleared_at": self.clock()} for i in ids if i not in present]
            if rows:
                conn.execute(insert(cleared_table), rows)

        return self._change(change, lambda memory: memory.clear(ids))

    def show_answers(self, visible: bool) -> RoomState:
        return self._change(
            lambda conn: conn.execute(
                update(room_table).where(room_table.c.id == 1).values(answers_visible=bool(visible))
            ),
            lambda memory: memory.show_answers(visible),
        )

    def vote(self, vote: Vote) -> RoomState:
        """Count a revealed prediction once: one row per voter and step (a new one replaces theirs)."""
        voter = voter_key(vote.voter)
        values = {"choice": vote.choice, "right_choice": vote.right, "cast_at": self.clock()}

        def change(conn: Connection) -> None:
            statement = upsert(conn, votes_table).values(voter=voter, step=vote.step, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["voter", "step"], set_=values))
            cutoff = conn.execute(  # the newest MAX_VOTES are kept: a runaway script cannot grow the room
                select(votes_table.c.cast_at).order_by(votes_table.c.cast_at.desc()).offset(MAX_VOTES - 1).limit(1)
            ).scalar()
            if cutoff is not None:
                conn.execute(delete(votes_table).where(votes_table.c.cast_at < cutoff))

        return self._change(change, lambda memory: memory.vote(dataclasses.replace(vote, voter=voter)))

    def clear_votes(self) -> RoomState:
        return self._change(lambda conn: conn.execute(delete(votes_table)), lambda memory: memory.clear_votes())

    def set_max_run_seconds(self, seconds: float | None) -> RoomState:
        """The teacher's cap on one run's estimated seconds for every replica (None: each server's default)."""
        cap = None if seconds is None else float(seconds)

        def change(conn: Connection) -> None:
            conn.execute(delete(settings_table).where(settings_table.c.name == MAX_RUN_SECONDS))
            if cap is not None:
                conn.execute(insert(settings_table).values(name=MAX_RUN_SECONDS, value=cap))

        return self._change(change, lambda memory: memory.set_max_run_seconds(cap))

    def new_class(self) -> RoomState:
        """A fresh room for a new class: nothing pinned, cleared, shown or voted (the models stay listed; the
        teacher's cap on a run stays: it is a setting of the teacher's, not the class's state)."""

        def change(conn: Connection) -> None:
            conn.execute(update(room_table).where(room_table.c.id == 1).values(pinned=None, answers_visible=False))
            conn.execute(delete(cleared_table))
            conn.execute(delete(votes_table))

        with self._lock:
            if self._memory is not None:
                self._memory = ClassRoom(RoomState(max_run_seconds=self._memory.state().max_run_seconds))
        return self._change(change, lambda memory: memory.state())

    @property
    def answers_visible(self) -> bool:
        return self.state().answers_visible

    # --- the class's models -------------------------------------------------------------------------

    def record_model(self, model_id: str, origin: str, settings: dict[str, Any], nickname: str) -> bool:
        """A model was trained (to the end, or stopped) on this server: list it for every replica, with the
        time now. A model already listed keeps its row (its first time and trainer). False if not written."""

        row = {
            "model_id": model_id,
            "origin": origin,
            "settings": json.dumps(settings, sort_keys=True),
            "nickname": nickname,
            "trained_at": self.clock(),  # now, even if the database only gets it later (`_replay`)
            "replica": self.replica,
        }

        def change(conn: Connection) -> None:
            conn.execute(upsert(conn, models_table).values(**row).on_conflict_do_nothing())  # listed already: kept

        if isinstance(self._try(lambda: self._transaction(change)), Failed):
            self._defer(change)
            return False
        return True

    def models(self) -> list[RoomModel] | None:
        """The class's models, newest first, as of the room's revision; None while the database is unreachable."""
        self.state()  # at most POLL_SECONDS old, like the revision a board compares
        with self._lock:
            if self._memory is not None:
                return None
            return list(self._models[1]) if self._models is not None else []

    # --- claims on the trainings in flight (server.jobs.TrainingPool) ------------------------------

    def claim(self, model_id: str, epochs: int) -> bool:
        """Take the training of `model_id` for this replica: True unless another replica holds a live claim.
        Unreachable database: True (this server trains, as a lone server would)."""
        now = self.clock()
        values = {
            "replica": self.replica,
            "state": "running",
            "epochs": epochs,
            "history": "[]",
            "claimed_at": now,
            "heartbeat": now,
        }

        def take(conn: Connection) -> bool:
            inserted = conn.execute(
                upsert(conn, claims_table).values(model_id=model_id, **values).on_conflict_do_nothing()
            )
            if inserted.rowcount == 1:
                return True
            # The row exists: take it over only if nobody trains it now (one UPDATE: the database decides).
            c = claims_table.c
            free = (c.state != "running") | (c.heartbeat < now - CLAIM_STALE_SECONDS) | (c.replica == self.replica)
            return (
                conn.execute(update(claims_table).where((c.model_id == model_id) & free).values(**values)).rowcount == 1
            )

        won = self._try(lambda: self._transaction(take, bump=False))
        return True if isinstance(won, Failed) else won

    def report(self, model_id: str, history: Sequence[dict[str, Any]]) -> None:
        """An epoch finished here: its record for whoever follows the claim elsewhere (also a heartbeat)."""
        self._update_claim(model_id, history=json.dumps(list(history)))

    def release(self, model_id: str, state: str) -> None:
        """The training here ended (finished, stopped, failed): the claim says so (a finished model is in the store)."""
        self._update_claim(model_id, state=state)

    def _update_claim(self, model_id: str, **values: Any) -> None:
        """Change this replica's claim on `model_id` (and renew its heartbeat); nothing if the database is down."""
        c = claims_table.c
        statement = (
            update(claims_table)
            .where((c.model_id == model_id) & (c.replica == self.replica))
            .values(**values, heartbeat=self.clock())
        )
        self._try(lambda: self._transaction(lambda conn: conn.execute(statement), bump=False))

    def progress(self, model_id: str) -> Claim | None:
        """The claim on `model_id` (whoever holds it), or None if there is none or the database is unreachable."""

        def read(conn: Connection) -> Claim | None:
            row = conn.execute(select(claims_table).where(claims_table.c.model_id == model_id)).first()
            if row is None:
                return None
            history = tuple(json.loads(row.history))
            return Claim(row.model_id, row.replica, row.state, row.epochs, history, row.heartbeat)

        found = self._try(lambda: self._read(read))
        return None if isinstance(found, Failed) else found

    def close(self) -> None:
        self.engine.dispose()


def _float_or_none(value: object) -> float | None:
    """A stored number, or None when there is none (or it is not a finite positive number: the default then)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


class Failed:
    """What Room._try returns when the database could not be reached (None is a result)."""


FAILED = Failed()


def upsert(conn: Connection, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT (PostgreSQL and SQLite both have it): a unique key is the lock."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the room needs PostgreSQL or SQLite, not {conn.dialect.name}")


class _nothing:
    """A context manager that does nothing (PostgreSQL needs no lock of ours)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
