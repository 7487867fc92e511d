"""The records in PostgreSQL (asyncpg): one schema per installation, many nodes writing.

Theory of operation
-------------------
The records' SQL is written once, for SQLite. :class:`PgConnection` is an adapter that
speaks the part of ``aiosqlite.Connection`` the records use (``execute`` giving a cursor
with ``description``, ``fetchone``, ``fetchall``, ``rowcount`` and async iteration;
``executemany``; ``commit``/``rollback``; ``close``) on an asyncpg *pool*, translating
each statement with :mod:`switch.records.dialect` and each asyncpg error into the
``sqlite3`` class the records already handle (DB-API style):

* the server unreachable, restarting, shutting down, out of connections, a connection
  lost -> :class:`sqlite3.OperationalError`: the writer *spools* the batch and replays it
  later (:mod:`switch.records.spool`), exactly as when SQLite is locked or the disk full;
* a constraint or a value the server refuses -> :class:`sqlite3.IntegrityError` /
  :class:`sqlite3.DataError`: the writer sets the one report aside (``rejected.jsonl``);
* anything else the server says -> :class:`sqlite3.DatabaseError`.

So queries.py, voicemails.py, privacy.py and report.py run unchanged on either backend,
and :class:`PgRecordWriter` is :class:`~switch.records.writer.RecordWriter` with another
connection: the same queue, batches, spool, replay and poison handling.

Outside a transaction each statement borrows a pooled connection; ``BEGIN`` (the
records' ``BEGIN IMMEDIATE``) holds one until ``COMMIT``/``ROLLBACK``. A lost connection
is not reused: the pool opens a fresh one on the next ``acquire``.

Several nodes: every node writes its name into ``calls.node`` (migration 6); a node that
starts closes as ``aborted`` only *its own* calls left active (a node's crash costs only
its calls, and another node's start never closes them). Rows are keyed by (Call-ID,
start time), unique per call, so two nodes never collide. Migrations run under a
PostgreSQL advisory lock, so two nodes starting at once migrate once.

The password is never in the settings file or the logs: a ``password_file`` (the
secrets file, mode 0600) or libpq's ``PGPASSFILE``/``~/.pgpass``, which asyncpg reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Final, Self, cast

import asyncpg

from switch.call.events import Outcome
from switch.errors import RecordsError, RecordsUnavailableError
from switch.records import dialect
from switch.records.messages import MessageStore
from switch.records.pgconnection import _TRANSIENT, PgConnection, redact
from switch.records.rows import _CALL_COLUMNS
from switch.records.schema import MIGRATIONS, SCHEMA_VERSION, CallsDbStore
from switch.records.spool import Abort
from switch.records.voicemails import VoicemailStore
from switch.records.writer import RecordWriter

log = logging.getLogger(__name__)

PG_LABEL: Final = "postgresql"
_LOCK_KEY: Final = 0x52554657  # "RUFW": the advisory lock of the migrations
# ---------------------------------------------------------------------- pool, schema


async def create_pool(
    dsn: str,
    schema: str,
    *,
    password: str | None = None,
    min_size: int = 1,
    max_size: int = 4,
    connect_timeout: float = 5.0,
) -> asyncpg.Pool:
    """A pool whose connections work in ``schema`` (created if missing); RecordsError when
    the server cannot be reached or refuses."""
    if not schema.replace("_", "").isalnum():
        raise RecordsError(f"records schema {schema!r}: letters, digits and _ only")
    try:
        admin = await asyncpg.connect(dsn, password=password, timeout=connect_timeout)
        try:
            await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            await admin.close()
        pool = await asyncpg.create_pool(
            dsn,
            password=password,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            command_timeout=connect_timeout * 2,
            server_settings={"search_path": schema, "application_name": "rufweiche"},
        )
    except _TRANSIENT as exc:
        raise RecordsUnavailableError(
            f"records database {redact(dsn)!r} (schema {schema!r}) does not answer: {exc}"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise RecordsError(
            f"records database {redact(dsn)!r} (schema {schema!r}) cannot be opened: {exc}"
        ) from exc
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` with the PostgreSQL dialect of the same
    MIGRATIONS, under an advisory lock; return the old version."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        if version > SCHEMA_VERSION:
            raise RecordsError(
                f"records schema has version {version!r}, newer than this program's "
                f"{SCHEMA_VERSION}: upgrade rufweiche"
            )
        for number in range(version, SCHEMA_VERSION):
            for text in dialect.migration(MIGRATIONS[number]):
                await conn.execute(text)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number + 1)
        return int(version)


async def open_migrated(dsn: str, schema: str, password: str | None) -> asyncpg.Pool:
    """A small pool (2) on ``schema``, migrated: what the stores beside the writer use."""
    pool = await create_pool(dsn, schema, password=password, max_size=2)
    try:
        await migrate(pool)
    except BaseException:
        await pool.close()
        raise
    return pool


# ---------------------------------------------------------------------- the writer

_CALL_PLACES: Final = ", ".join("?" * (len(_CALL_COLUMNS.split(",")) + 1))  # + node
_UPSERT_CALL: Final = dialect.statement(
    f"INSERT INTO calls ({_CALL_COLUMNS}, node) VALUES ({_CALL_PLACES}) "
    "ON CONFLICT (call_id, started_wall) DO UPDATE SET "
    + ", ".join(
        f"{c} = excluded.{c}"
        for c in [*(c.strip() for c in _CALL_COLUMNS.split(",")), "node"]
        if c not in ("call_id", "started_wall")
    )
    + " WHERE excluded.phase_rank >= calls.phase_rank"
)


HEARTBEAT_S: Final = 10.0
DEAD_AFTER_S: Final = 120.0
_NODES_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS nodes (node TEXT PRIMARY KEY, seen_wall DOUBLE PRECISION NOT NULL)"
)
# The open calls of every node whose last heartbeat is older than the bound ($3 s): closed
# as the node's own restart would close them (aborted, ended when last heard of).
_CLOSE_DEAD: Final = (
    "UPDATE calls SET outcome = $1, hung_up_by = 'switch', phase = 'ended', phase_rank = 2, "
    "ended_ms = GREATEST(COALESCE(answer_relayed_ms, 0), (n.seen_wall - started_wall) * 1000.0), "
    "updated_wall = $2::double precision FROM nodes n "
    "WHERE calls.outcome IS NULL AND calls.node = n.node "
    "AND n.seen_wall < $2::double precision - $3::double precision"
)


class PgRecordWriter(RecordWriter):
    """:class:`RecordWriter` on PostgreSQL: ``node`` names this node in every row it writes.

    ``spool_path`` is the local file name the spool is derived from
    (``<spool_path>.spool.jsonl``): the spool stays on the node, the database is shared.
    """

    _upsert_call = _UPSERT_CALL

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        node: str,
        spool_path: Path,
        password: str | None = None,
        pool_size: int = 4,
        start_offline: bool = True,
        heartbeat_s: float | None = HEARTBEAT_S,
        dead_after_s: float = DEAD_AFTER_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(spool_path, **kwargs)
        self.heartbeat_s, self.dead_after_s = heartbeat_s, dead_after_s
        self._heart: asyncio.Task[None] | None = None
        self._start_offline = start_offline
        self._connector: asyncio.Task[None] | None = None
        self.dsn, self.schema, self.node = dsn, schema, node
        self._password = password
        self._pool_size = pool_size
        self.pool: asyncpg.Pool | None = None

    async def __aenter__(self) -> Self:
        """Connect, migrate, replay the spool, close this node's calls left open, start.

        A server that does not answer now does not keep the node from starting: the
        writer spools (``writable`` false, /healthz says so) and connects in the
        background every ``retry_interval``; the spool is replayed once it answers.
        A server that answers and refuses (a newer schema) is a RecordsError.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = PgConnection(None).as_aiosqlite()
        self._reader = PgConnection(None).as_aiosqlite()
        try:
            await self._connect()
        except RecordsUnavailableError as exc:
            if not self._start_offline:
                raise
            log.warning("%s: spooling to %s until it answers", exc, self.spool_path)
            self.writable = False
            self._connector = asyncio.create_task(self._keep_connecting(), name="records-pg")
        else:
            self.writable = True
            await self._replay_spool()
        self._queue.put_nowait(Abort(None, self._clock()))
        self.idle.clear()
        self._task = asyncio.create_task(self._run(), name="record-writer")
        if self.heartbeat_s is not None:
            self._heart = asyncio.create_task(self._heartbeats(), name="records-heartbeat")
        return self

    async def _heartbeats(self) -> None:
        """Every ``heartbeat_s``: note this node alive in ``nodes``, and close as aborted
        the open calls of nodes silent for ``dead_after_s`` (a node killed for good, or
        down longer than that: its restart would close them too, but it may never come)."""
        assert self.heartbeat_s is not None
        while True:
            if self.pool is not None:
                try:
                    await self.beat()
                except (*_TRANSIENT, asyncpg.PostgresError) as exc:
                    log.debug("records heartbeat of node %s not written: %s", self.node, exc)
            await asyncio.sleep(self.heartbeat_s)

    async def beat(self) -> int:
        """One heartbeat (see :meth:`_heartbeats`); how many calls of dead nodes it closed."""
        assert self.pool is not None
        now = self._clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO nodes (node, seen_wall) VALUES ($1, $2) "
                "ON CONFLICT (node) DO UPDATE SET seen_wall = excluded.seen_wall",
                self.node,
                now,
            )
            status = await conn.execute(_CLOSE_DEAD, Outcome.ABORTED.value, now, self.dead_after_s)
        closed = int(status.rsplit(" ", 1)[-1])
        if closed:
            log.warning(
                "closed %d open call(s) of nodes silent for over %.0f s as aborted",
                closed,
                self.dead_after_s,
            )
        return closed

    async def _connect(self) -> None:
        pool = await create_pool(
            self.dsn, self.schema, password=self._password, max_size=self._pool_size
        )
        try:
            await migrate(pool)
        except BaseException:
            await pool.close()
            raise
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(_NODES_TABLE)
        self.pool = pool
        for db in (self._db, self._reader):
            cast(PgConnection, db).pool = pool
        log.info(
            "records in postgresql %s, schema %s, node %s",
            redact(self.dsn),
            self.schema,
            self.node,
        )

    async def _keep_connecting(self) -> None:
        while self.pool is None:
            await asyncio.sleep(self._retry_interval)
            try:
                await self._connect()
            except RecordsUnavailableError:
                continue
            except RecordsError as exc:  # it answers and refuses: say so, keep spooling
                log.error("%s", exc)

    async def __aexit__(self, *exc: object) -> None:
        if self._heart is not None:
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
            self._heart = None
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
            self._connector = None
        await super().__aexit__(*exc)
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def _close_connections(self) -> None:
        for db in (self._reader, self._db):
            if db is not None:
                await db.close()
        self._db = self._reader = None


class _PgStore(CallsDbStore):
    """A :class:`CallsDbStore` in the shared PostgreSQL schema, on a small pool of its own."""

    def __init__(self, dsn: str, schema: str, *, password: str | None = None) -> None:
        super().__init__(Path(PG_LABEL))
        self.dsn, self.schema = dsn, schema
        self._password = password
        self.pool: asyncpg.Pool | None = None

    async def __aenter__(self) -> Self:
        self.pool = await open_migrated(self.dsn, self.schema, self._password)
        self._db = PgConnection(self.pool).as_aiosqlite()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._db = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


class PgVoicemailStore(_PgStore, VoicemailStore):
    """:class:`VoicemailStore` in the shared PostgreSQL schema."""


class PgMessageStore(_PgStore, MessageStore):
    """:class:`MessageStore` (messages, contacts) in the shared PostgreSQL schema: every
    node's console and ``rufweiche report`` see every node's messages."""
