"""The calls database: its file name, its schema and how every connection to it is opened.

Only switch/records/ opens the calls database (``tests/test_architecture.py``), always
through :func:`connect`: WAL mode, ``synchronous=FULL``, foreign keys on, and SQLite's
``busy_timeout`` so that the writer, the readers and the offline tools (``rufweiche
privacy``, ``rufweiche report``) can share the file while the switch runs.

The schema is a list of numbered migrations (``PRAGMA user_version``); :func:`migrate`
applies the missing ones, each in its own transaction with the version bump. A database
newer than this program is refused with :class:`~switch.errors.RecordsError`.
Connections are in autocommit mode (``isolation_level=None``): a transaction is written
out as ``async with transaction(db):``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final, Self

import aiosqlite

from switch.errors import MessageError, RecordsError, SwitchError
from switch.records.rows import iso_utc, row_dict

RECORDS_FILE: Final = "calls.sqlite3"
"""The database's name in the data directory (``--data-dir``): the one definition of it."""

_MEDIA_COLUMNS = (
    "media_codec TEXT, media_rx_packets INTEGER, media_tx_packets INTEGER, "
    "media_rx_loss INTEGER, media_jitter_ms REAL, media_rtt_ms REAL, media_mos REAL"
)

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: calls and legs.
    f"""
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        started_wall REAL NOT NULL,          -- Unix seconds (UTC) of the INVITE's arrival
        started_at TEXT NOT NULL,            -- the same as ISO 8601, for people and sqlite3
        tenant TEXT,
        called TEXT NOT NULL,
        caller TEXT,                         -- as the plan's store_caller allows
        caller_policy TEXT NOT NULL,
        rule TEXT,
        worker TEXT NOT NULL,
        phase TEXT NOT NULL,
        phase_rank INTEGER NOT NULL,
        -- milliseconds after the INVITE arrived (monotonic deltas)
        decision_ms REAL,
        first_18x_in_ms REAL,
        first_18x_relayed_ms REAL,
        answer_in_ms REAL,
        answer_relayed_ms REAL,
        ended_ms REAL,
        outcome TEXT,                        -- NULL while the call is active
        answered_by TEXT,
        answered_by_service INTEGER NOT NULL DEFAULT 0,
        hung_up_by TEXT,
        sip_status INTEGER,
        {_MEDIA_COLUMNS},
        updated_wall REAL NOT NULL,
        UNIQUE (call_id, started_wall)
    );
    CREATE TABLE legs (
        call_row INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
        leg INTEGER NOT NULL,
        target TEXT NOT NULL,
        uri TEXT NOT NULL,
        owner TEXT NOT NULL,
        is_service INTEGER NOT NULL,
        step INTEGER NOT NULL,
        invite_out_ms REAL,
        first_18x_in_ms REAL,
        answered_ms REAL,
        ended_ms REAL,
        status INTEGER,
        reason TEXT,
        {_MEDIA_COLUMNS},
        phase_rank INTEGER NOT NULL,         -- of the report that wrote the leg
        PRIMARY KEY (call_row, leg)
    );
    """,
    # 2: what the API, the report and the restart clean-up look for.
    """
    CREATE INDEX calls_started ON calls (started_wall);
    CREATE INDEX calls_tenant_started ON calls (tenant, started_wall);
    CREATE INDEX calls_active ON calls (worker) WHERE outcome IS NULL;
    """,
    # 3: voicemail messages (switch/records/voicemails.py); the caller as store_caller allows.
    """
    CREATE TABLE voicemails (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        caller TEXT,
        caller_policy TEXT NOT NULL,
        called TEXT NOT NULL,
        path TEXT NOT NULL,                  -- the WAV file, under <data_dir>/voicemail/
        seconds REAL NOT NULL,
        started_wall REAL NOT NULL,          -- when the recording began (Unix seconds, UTC)
        started_at TEXT NOT NULL
    );
    CREATE INDEX voicemails_tenant_started ON voicemails (tenant, started_wall);
    """,
    # 4: which final action ran (issue 7): NULL when none, or before media services.
    """
    ALTER TABLE calls ADD COLUMN final_action TEXT;
    """,
    # 5: the dictation box (issue 7) files its recordings with the voicemails, as kind
    # "dictation", with the person who dictated and when the office marked it done.
    """
    ALTER TABLE voicemails ADD COLUMN kind TEXT NOT NULL DEFAULT 'voicemail';
    ALTER TABLE voicemails ADD COLUMN person TEXT;
    ALTER TABLE voicemails ADD COLUMN done_at TEXT;
    CREATE INDEX voicemails_kind_started ON voicemails (kind, tenant, started_wall);
    """,
    # 6: outbound calls and transfers (issue 17): the direction, the number shown to the
    # callee, and who transferred the call to whom with what outcome.
    """
    ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
    ALTER TABLE calls ADD COLUMN presented TEXT;
    ALTER TABLE calls ADD COLUMN transferred_by TEXT;
    ALTER TABLE calls ADD COLUMN transferred_to TEXT;
    ALTER TABLE calls ADD COLUMN transfer_outcome TEXT;
    CREATE INDEX calls_direction ON calls (tenant, direction, started_wall);
    """,
    # 7: messages for the owner (Telefonnotiz, issue 18; switch/records/messages.py), taken
    # by the assistant; when it was mailed (or why not), when the owner marked it done.
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        taken_by TEXT NOT NULL,              -- the login that took it
        call_id TEXT,
        caller_name TEXT,
        number TEXT,
        concern TEXT NOT NULL,
        urgency TEXT NOT NULL,               -- normal, urgent
        callback INTEGER NOT NULL,           -- 1: the caller wants a call back
        taken_wall REAL NOT NULL,
        taken_at TEXT NOT NULL,
        mailed_at TEXT,
        mail_error TEXT,
        done_at TEXT
    );
    CREATE INDEX messages_tenant_taken ON messages (tenant, taken_wall);
    """,
    # 8: the address book per business (issue 18: the console shows the caller's name);
    # numbers in E.164 (switch/records/messages.py: canonical_number).
    """
    CREATE TABLE contacts (
        tenant TEXT NOT NULL,
        number TEXT NOT NULL,
        name TEXT NOT NULL,
        note TEXT,
        known INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (tenant, number)
    );
    """,
    # 9: several nodes share one database (PostgreSQL, switch/records/postgres.py): the
    # node that handled the call, so that a node's restart closes only its own calls.
    # NULL for a single node (SQLite).
    """
    ALTER TABLE calls ADD COLUMN node TEXT;
    CREATE INDEX calls_node_active ON calls (node, worker) WHERE outcome IS NULL;
    """,
    # 10: why the switch refused a call itself (issue 15: "Encryption required: TLS and
    # SRTP"); NULL for every other call.
    """
    ALTER TABLE calls ADD COLUMN reason TEXT;
    """,
    # 11: "call back later" reminders of the assistant's console (issue 18;
    # switch/records/reminders.py): due when, popped when (the console was told), done when.
    """
    CREATE TABLE reminders (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_by TEXT NOT NULL,
        call_id TEXT,
        caller_name TEXT,
        number TEXT,
        note TEXT NOT NULL,
        due_wall REAL NOT NULL,
        due_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        popped_at TEXT,
        done_at TEXT
    );
    CREATE INDEX reminders_due ON reminders (due_wall);
    """,
    # 12: media bypass (issue 16): each leg's SIP dialog as the edge's rtpengine keys it
    # (the caller's is call_id + caller_tag; a callee's sip_call_id + sip_tag), whether its
    # RTP went past pjsua2 ("bypass"), and what the media figures are based on
    # (switch/call/calllog.py MediaSource: pjsua, rtpengine-rtcp, rtpengine).
    """
    ALTER TABLE calls ADD COLUMN caller_tag TEXT;
    ALTER TABLE calls ADD COLUMN media_path TEXT;
    ALTER TABLE calls ADD COLUMN media_source TEXT;
    ALTER TABLE legs ADD COLUMN sip_call_id TEXT;
    ALTER TABLE legs ADD COLUMN sip_tag TEXT;
    ALTER TABLE legs ADD COLUMN media_path TEXT;
    ALTER TABLE legs ADD COLUMN media_source TEXT;
    """,
)
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)


async def migrate(db: aiosqlite.Connection, *, path: Path | None = None) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` (``PRAGMA user_version``); return the old version.

    Each migration runs in its own transaction together with the version bump, so a
    crash between two leaves a consistent, numbered schema.
    """
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise RecordsError(
            f"records database {path or ''!s} has schema version {version!r}, "
            f"newer than this program's {SCHEMA_VERSION}: upgrade rufweiche",
            path=path,
        )
    for number in range(version, SCHEMA_VERSION):
        statements = [s.strip() for s in MIGRATIONS[number].split(";") if s.strip()]
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            await db.rollback()
            raise
        await db.commit()
    return version


async def connect(path: Path, *, busy_timeout: float = 2.0) -> aiosqlite.Connection:
    """Open the records database in WAL mode with the pragmas every connection needs."""
    db = await aiosqlite.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await db.close()
        raise
    return db


@contextlib.asynccontextmanager
async def existing(
    path: Path, *, busy_timeout: float = 5.0
) -> AsyncIterator[aiosqlite.Connection | None]:
    """A connection to the database at ``path`` if the file exists, else None (nothing is
    created and nothing migrated: for offline tools that must not change a data directory)."""
    if not path.is_file():
        yield None
        return
    db = await connect(path, busy_timeout=busy_timeout)
    try:
        yield db
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back when the block raises."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.rollback()
        raise
    await db.commit()


async def has_table(db: aiosqlite.Connection, name: str) -> bool:
    """Whether the schema has table ``name`` (an old database may lack the later ones)."""
    async with db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ) as cursor:
        return await cursor.fetchone() is not None


class CallsDbStore:
    """A store over the calls database: ``async with Store(db_path) as store`` connects and
    migrates, leaving closes; :meth:`_require` is the connection inside the block
    (``what`` names the store in the error raised outside it)."""

    what = "store"

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        self._db = await connect(self.db_path)
        await migrate(self._db, path=self.db_path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise self._outside()
        return self._db

    def _outside(self) -> SwitchError:
        """The error of a store used outside its ``async with`` block."""
        return MessageError(f"{self.what} used outside 'async with'", field=None)

    async def _select(
        self,
        select: str,
        *,
        where: Sequence[str] = (),
        args: Sequence[Any] = (),
        tenant: str | None,
        order: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        """``select`` (``SELECT ... FROM table``) under the ``where`` conditions (AND, with
        ``args``), of ``tenant`` when given (else all), in ``order``, at most ``limit``."""
        conditions, values = [*where], [*args]
        if tenant:
            conditions.append("tenant = ?")
            values.append(tenant)
        sql = select + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        sql += f" ORDER BY {order} LIMIT ?"
        values.append(limit)
        async with self._require().execute(sql, values) as cursor:
            return [row_dict(cursor.description, row) for row in await cursor.fetchall()]

    async def _mark_done(
        self, table: str, row_id: int, when: float, *, kind: str | None = None
    ) -> dict[str, Any] | None:
        """Set ``done_at`` of row ``row_id`` in ``table`` (of ``kind``) unless it is set;
        the row's id, tenant and done_at, or None when there is no such row."""
        db = self._require()
        where, args = "id = ?", [iso_utc(when), row_id]
        if kind is not None:
            where += " AND kind = ?"
            args.append(kind)
        sql = f"UPDATE {table} SET done_at = COALESCE(done_at, ?) WHERE {where}"
        cursor = await db.execute(sql, args)
        if cursor.rowcount == 0:
            return None
        await db.commit()
        sql = f"SELECT id, tenant, done_at FROM {table} WHERE id = ?"
        async with db.execute(sql, (row_id,)) as found:
            row = await found.fetchone()
        assert row is not None
        return {"id": row[0], "tenant": row[1], "done_at": row[2]}
