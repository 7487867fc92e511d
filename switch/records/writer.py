"""Call records in SQLite: one row per call, one per outbound leg.

Theory of operation
-------------------
Workers report each call three times (``started``, ``answered``, ``ended``; see
:mod:`switch.call.calllog`). The supervisor hands every report to
:meth:`RecordWriter.submit`, which only puts it on a bounded :class:`asyncio.Queue`:
the caller's path never waits for the disk. One task takes whatever is queued and
writes it in a single transaction (a *batch*), so a burst of calls costs one commit.

A row is keyed by (Call-ID, ``started_wall``) and *upserted*: ``started`` inserts it
with ``outcome`` NULL (an active call), ``answered`` and ``ended`` complete it. A
report never overwrites a later phase (``phase_rank``), so reports that arrive out of
order — e.g. replayed from the spool — leave the row as the latest phase said.

Timestamps: workers stamp with ``time.monotonic_ns()``, which means nothing after a
reboot, so a row stores each stamp as milliseconds after the INVITE arrived (REAL),
next to ``started_wall`` (Unix seconds, UTC) and ``started_at`` (ISO 8601, UTC).

When SQLite refuses a batch with :class:`sqlite3.OperationalError` (the database is
locked beyond ``busy_timeout``, the disk is full, an I/O error), the batch goes to the
*spool*: an append-only JSON-lines file next to the database (``<db>.spool.jsonl``).
The spool is replayed before the next batch that succeeds, on a timer while no new
records arrive, and when the writer starts. No record is lost unless the spool cannot
be written either (then the error is logged with the count of lost records). A report
the database refuses for itself (not a transient error: e.g. a NULL where the schema
forbids one) is set aside in ``<db>.rejected.jsonl`` with the error, and the rest of its
batch is written one by one, so one bad report never blocks the others.

Durability (fsync policy):
- the database runs in WAL mode with ``synchronous=FULL``: a committed batch survives a
  power loss (one fsync per batch, not per record, thanks to batching);
- every spool append is flushed and ``os.fsync``-ed before the writer moves on, because
  the spool is used precisely when the database is unwell;
- records still in the queue when the process is killed (not stopped) are lost; a clean
  stop (``__aexit__``) writes them first. The calls they describe are still closed as
  ``aborted`` at the next start if their ``started`` report had been written.

Privacy: the caller's number is stored as the dial plan's ``store_caller`` says
(``full``, ``masked`` or ``none``), passed per record by the supervisor, and is always
masked in logs (:func:`mask_number`).

Errors: :class:`RecordsError` is the one error of this module (a database with a newer
schema, or a database that cannot be opened at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

import aiosqlite

from switch.call.calllog import CallRecord, LegRecord, MediaStats
from switch.call.events import Outcome

log = logging.getLogger(__name__)

RECORDS_FILE: Final = "calls.sqlite3"
"""The database's name in the data directory (``--data-dir``)."""

Phase = Literal["started", "answered", "ended"]
PHASE_RANK: Final[dict[str, int]] = {"started": 0, "answered": 1, "ended": 2}


class RecordsError(Exception):
    """The call-record database cannot be used (opened, migrated)."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class CallerPolicy(StrEnum):
    """How much of the caller's number a tenant allows us to keep (``store_caller``)."""

    FULL = "full"
    MASKED = "masked"
    NONE = "none"


_URI_USER = re.compile(r"^(?P<scheme>sips?:|tel:)?(?P<user>[^@;]*)(?P<rest>.*)$")


def mask_number(value: str | None) -> str | None:
    """Hide the middle of a phone number or URI user part: ``+4917112345678`` -> ``+491********78``.

    Keeps enough to recognise the country and the last two digits (what people say on
    the phone: "the one ending in 78"), and no more.
    """
    if value is None:
        return None
    match = _URI_USER.match(value)
    assert match is not None  # the pattern matches any string
    user = match["user"]
    if len(user) <= 4:
        masked = "*" * len(user)
    else:
        keep_head = 4 if user.startswith("+") else 3
        keep_head = min(keep_head, len(user) - 4)
        masked = user[:keep_head] + "*" * (len(user) - keep_head - 2) + user[-2:]
    return f"{match['scheme'] or ''}{masked}{match['rest']}"


def apply_caller_policy(caller: str | None, policy: CallerPolicy | str) -> str | None:
    policy = CallerPolicy(policy)
    if policy is CallerPolicy.FULL:
        return caller
    if policy is CallerPolicy.MASKED:
        return mask_number(caller)
    return None


# --------------------------------------------------------------------------- schema

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
    # 3: voicemail messages (switch/supervisor/voicemail.py); the caller as store_caller allows.
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


# --------------------------------------------------------------------------- rows


def _ms(stamp: int | None, origin: int) -> float | None:
    return None if stamp is None else (stamp - origin) / 1e6


def _media_values(media: MediaStats | None) -> tuple[Any, ...]:
    if media is None:
        return (None,) * 7
    return (
        media.codec,
        media.rx_packets,
        media.tx_packets,
        media.rx_loss,
        media.jitter_ms,
        media.rtt_ms,
        media.mos,
    )


_CALL_COLUMNS: Final = (
    "call_id, started_wall, started_at, tenant, called, caller, caller_policy, rule, worker, "
    "phase, phase_rank, decision_ms, first_18x_in_ms, first_18x_relayed_ms, answer_in_ms, "
    "answer_relayed_ms, ended_ms, outcome, answered_by, answered_by_service, hung_up_by, "
    "sip_status, media_codec, media_rx_packets, media_tx_packets, media_rx_loss, "
    "media_jitter_ms, media_rtt_ms, media_mos, final_action, updated_wall, direction, "
    "presented, transferred_by, transferred_to, transfer_outcome"
)
_UPDATABLE: Final = [
    c.strip() for c in _CALL_COLUMNS.split(",") if c.strip() not in ("call_id", "started_wall")
]
_UPSERT_CALL: Final = (
    f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES ({', '.join('?' * 36)}) "
    "ON CONFLICT (call_id, started_wall) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    # A report never replaces a later one (spool replays may arrive out of order).
    + " WHERE excluded.phase_rank >= calls.phase_rank"
)
_LEG_COLUMNS: Final = (
    "target, uri, owner, is_service, step, invite_out_ms, first_18x_in_ms, answered_ms, "
    "ended_ms, status, reason, media_codec, media_rx_packets, media_tx_packets, "
    "media_rx_loss, media_jitter_ms, media_rtt_ms, media_mos, phase_rank"
)
# Legs only accumulate (a report holds every leg so far), so an upsert per leg suffices;
# the call's row id comes from its key, so that a batch needs no round trip per record.
_UPSERT_LEG: Final = (
    f"INSERT INTO legs (call_row, leg, {_LEG_COLUMNS}) VALUES ("
    "(SELECT id FROM calls WHERE call_id = ? AND started_wall = ?), "
    f"{', '.join('?' * 20)}) ON CONFLICT (call_row, leg) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _LEG_COLUMNS.split(","))
    + " WHERE excluded.phase_rank >= legs.phase_rank"
)


def iso_utc(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def call_row_values(
    phase: str, record: CallRecord, policy: CallerPolicy, now_wall: float
) -> tuple[Any, ...]:
    origin = record.invite_in_ns
    return (
        record.call_id,
        record.started_wall,
        iso_utc(record.started_wall),
        record.tenant,
        record.called,
        apply_caller_policy(record.caller, policy),
        policy.value,
        record.rule,
        record.worker,
        phase,
        PHASE_RANK[phase],
        _ms(record.decision_ns, origin),
        _ms(record.first_18x_in_ns, origin),
        _ms(record.first_18x_relayed_ns, origin),
        _ms(record.answer_in_ns, origin),
        _ms(record.answer_relayed_ns, origin),
        _ms(record.ended_ns, origin),
        record.outcome,
        record.answered_by,
        int(record.answered_by_service),
        record.hung_up_by,
        record.sip_status,
        *_media_values(record.media),
        record.final_action,
        now_wall,
        record.direction,
        record.presented,
        record.transferred_by,
        record.transferred_to,
        record.transfer_outcome,
    )


def leg_row_values(record: CallRecord, phase: str, leg: LegRecord) -> tuple[Any, ...]:
    origin = record.invite_in_ns
    return (
        record.call_id,
        record.started_wall,
        leg.leg,
        leg.target,
        leg.uri,
        leg.owner,
        int(leg.is_service),
        leg.step,
        _ms(leg.invite_out_ns, origin),
        _ms(leg.first_18x_in_ns, origin),
        _ms(leg.answered_ns, origin),
        _ms(leg.ended_ns, origin),
        leg.status,
        leg.reason,
        *_media_values(leg.media),
        PHASE_RANK[phase],
    )


# --------------------------------------------------------------------------- queries


def _row_dict(cursor: aiosqlite.Cursor, row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _media_dict(row: dict[str, Any]) -> dict[str, Any] | None:
    keys = ("codec", "rx_packets", "tx_packets", "rx_loss", "jitter_ms", "rtt_ms", "mos")
    media = {k: row.pop(f"media_{k}") for k in keys}
    return None if all(v is None for v in media.values()) else media


def _call_dict(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("phase_rank", None)
    row["answered_by_service"] = bool(row["answered_by_service"])
    row["active"] = row["outcome"] is None
    row["media"] = _media_dict(row)
    row["legs"] = []
    return row


async def recent_calls(
    db: aiosqlite.Connection,
    *,
    tenant: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    with_legs: bool = True,
) -> list[dict[str, Any]]:
    """Calls, newest first, started in [since, until) (Unix seconds), as JSON-ready dicts.

    Times in a row are milliseconds after the INVITE arrived (``*_ms``); ``active`` is
    true while the call has no outcome.
    """
    where: list[str] = ["1 = 1"]
    args: list[Any] = []
    if tenant is not None:
        where.append("tenant = ?")
        args.append(tenant)
    if since is not None:
        where.append("started_wall >= ?")
        args.append(since)
    if until is not None:
        where.append("started_wall < ?")
        args.append(until)
    sql = f"SELECT * FROM calls WHERE {' AND '.join(where)} ORDER BY started_wall DESC, id DESC"
    sql += " LIMIT ?"
    args.append(max(0, limit))
    calls: dict[int, dict[str, Any]] = {}
    async with db.execute(sql, args) as cursor:
        async for row in cursor:
            data = _row_dict(cursor, row)
            calls[data.pop("id")] = _call_dict(data)
    if with_legs and calls:
        marks = ", ".join("?" * len(calls))
        sql = f"SELECT * FROM legs WHERE call_row IN ({marks}) ORDER BY call_row, leg"
        async with db.execute(sql, list(calls)) as cursor:
            async for row in cursor:
                leg = _row_dict(cursor, row)
                owner = calls[leg.pop("call_row")]
                leg.pop("phase_rank", None)
                leg["is_service"] = bool(leg["is_service"])
                leg["media"] = _media_dict(leg)
                owner["legs"].append(leg)
    return list(calls.values())


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """One business's calls in a period, as the ``/api`` and the monthly report show them."""

    tenant: str | None
    calls: int
    answered: int
    answered_by_service: int
    service_minutes: float


async def usage(
    db: aiosqlite.Connection, *, since: float, until: float, tenant: str | None = None
) -> list[TenantUsage]:
    """Per-tenant totals of calls started in [since, until) (see :func:`month_bounds`)."""
    sql = (
        "SELECT tenant, COUNT(*), "
        "SUM(outcome = 'answered'), "
        "SUM(outcome = 'answered' AND answered_by_service), "
        "COALESCE(SUM(CASE WHEN answered_by_service AND answer_relayed_ms IS NOT NULL "
        "AND ended_ms IS NOT NULL THEN ended_ms - answer_relayed_ms END), 0) / 60000.0 "
        "FROM calls WHERE started_wall >= ? AND started_wall < ?"
    )
    args: list[Any] = [since, until]
    if tenant is not None:
        sql += " AND tenant = ?"
        args.append(tenant)
    sql += " GROUP BY tenant ORDER BY tenant"
    async with db.execute(sql, args) as cursor:
        rows = await cursor.fetchall()
    return [TenantUsage(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0), float(r[4])) for r in rows]


def month_bounds(month: str, tz: str = "UTC") -> tuple[float, float]:
    """``"2026-11"`` -> (start, end) Unix seconds of that month in time zone ``tz``."""
    from zoneinfo import ZoneInfo

    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month {month!r} is not YYYY-MM")
    year, number = int(match[1]), int(match[2])
    zone = ZoneInfo(tz)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.timestamp(), end.timestamp()


async def monthly_usage(
    db: aiosqlite.Connection, month: str, *, tenant: str | None = None, tz: str = "UTC"
) -> list[TenantUsage]:
    since, until = month_bounds(month, tz)
    return await usage(db, since=since, until=until, tenant=tenant)


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


class RecordReader:
    """Read-only access for the report and tools: ``async with RecordReader(path) as r``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> RecordReader:
        if not self.path.exists():
            raise RecordsError(
                f"records database {str(self.path)!r} does not exist", path=self.path
            )
        try:
            self._db = await connect(self.path)
            await migrate(self._db, path=self.path)
        except sqlite3.Error as exc:
            if self._db is not None:
                await self._db.close()
            raise RecordsError(
                f"records database {str(self.path)!r} cannot be opened: {exc}", path=self.path
            ) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._db is not None:
            await self._db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "RecordReader used outside 'async with'"
        return self._db

    async def recent_calls(self, **kwargs: Any) -> list[dict[str, Any]]:
        return await recent_calls(self.db, **kwargs)

    async def monthly_usage(self, month: str, **kwargs: Any) -> list[TenantUsage]:
        return await monthly_usage(self.db, month, **kwargs)


# --------------------------------------------------------------------------- writer


@dataclass(slots=True)
class WriterStats:
    """Counters for tests, /healthz and the logs."""

    batches: int = 0
    records_written: int = 0
    records_spooled: int = 0
    records_replayed: int = 0
    records_lost: int = 0
    records_rejected: int = 0
    failed_batches: int = 0
    last_error: str | None = None
    batch_sizes: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Report:
    phase: str
    record: CallRecord
    policy: CallerPolicy

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "call",
            "phase": self.phase,
            "policy": self.policy.value,
            "record": self.record.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class _Abort:
    worker: str | None
    at_wall: float
    done: asyncio.Future[int] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"op": "abort", "worker": self.worker, "at_wall": self.at_wall}


_Item = _Report | _Abort
_STOP: Final = object()

ConnectHook = Callable[[aiosqlite.Connection], Awaitable[None]]


class RecordWriter:
    """Writes call records in batches, off the caller's path; see the module docstring.

    ``async with RecordWriter(path) as writer:`` migrates the schema, replays the spool,
    closes calls a previous run left active, and starts the batching task; leaving the
    block writes what is queued and stops. ``on_connect`` is a test seam, called with
    the writing connection after it is set up (e.g. to cap ``max_page_count``).
    """

    def __init__(
        self,
        path: Path,
        *,
        queue_size: int = 10_000,
        batch_max: int = 500,
        busy_timeout: float = 2.0,
        retry_interval: float = 5.0,
        on_connect: ConnectHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.spool_path = self.path.with_name(self.path.name + ".spool.jsonl")
        self._replay_path = self.path.with_name(self.path.name + ".spool.replaying.jsonl")
        self.rejected_path = self.path.with_name(self.path.name + ".rejected.jsonl")
        self._closed = False
        self._queue: asyncio.Queue[_Item | object] = asyncio.Queue(maxsize=queue_size)
        self._batch_max = batch_max
        self._busy_timeout = busy_timeout
        self._retry_interval = retry_interval
        self._on_connect = on_connect
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()
        self.writable = False  # the last attempt to write succeeded
        self.idle = asyncio.Event()  # set whenever the queue is empty and nothing is in flight
        self.idle.set()

    # -- lifecycle

    async def __aenter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await connect(self.path, busy_timeout=self._busy_timeout)
            await migrate(self._db, path=self.path)
            if self._on_connect is not None:
                await self._on_connect(self._db)
            self._reader = await connect(self.path, busy_timeout=self._busy_timeout)
            await self._reader.execute("PRAGMA query_only = ON")
        except (sqlite3.Error, OSError) as exc:
            await self._close_connections()
            raise RecordsError(
                f"records database {str(self.path)!r} cannot be opened: {exc}", path=self.path
            ) from exc
        except BaseException:
            await self._close_connections()
            raise
        self.writable = True
        await self._replay_spool()
        # Calls still active now were left by a previous run (it crashed or was killed).
        self._queue.put_nowait(_Abort(None, self._clock()))
        self.idle.clear()
        self._task = asyncio.create_task(self._run(), name="record-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True  # from now on, submit() spools
        if self._task is not None:
            try:
                self._queue.put_nowait(_STOP)
            except asyncio.QueueFull:
                # Make room by spooling the oldest report; the writer then sees the stop.
                self._spool_items([self._queue.get_nowait()])  # type: ignore[list-item]
                self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_connections()

    async def _close_connections(self) -> None:
        for db in (self._reader, self._db):
            if db is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.close()
        self._db = self._reader = None

    # -- the caller's side

    def submit(
        self, phase: str, record: CallRecord, store_caller: CallerPolicy | str = CallerPolicy.FULL
    ) -> None:
        """Queue one report; never waits. A full queue spools the report at once."""
        if phase not in PHASE_RANK:
            raise ValueError(f"call record phase {phase!r} is not one of {sorted(PHASE_RANK)}")
        item = _Report(phase, record, CallerPolicy(store_caller))
        if self._closed or self._task is None:
            self._spool_items([item])  # replayed at the next start
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning(
                "call %s (tenant %s): record queue full, spooling the %s report",
                record.call_id,
                record.tenant,
                phase,
            )
            self._spool_items([item])
            return
        self.idle.clear()

    async def close_aborted(self, worker: str | None = None) -> int:
        """Close as ``aborted`` the active calls of ``worker`` (all workers when None).

        Runs in order with the reports queued before it. Returns the number of calls
        closed, or 0 when the database refused and the request went to the spool.
        """
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        item = _Abort(worker, self._clock(), done)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._spool_items([item])
            return 0
        self.idle.clear()
        return await done

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written or spooled."""
        await self.idle.wait()

    # -- queries (on a second connection, so that reads never wait behind a batch)

    async def recent_calls(self, **kwargs: Any) -> list[dict[str, Any]]:
        assert self._reader is not None, "RecordWriter used outside 'async with'"
        return await recent_calls(self._reader, **kwargs)

    async def monthly_usage(self, month: str, **kwargs: Any) -> list[TenantUsage]:
        assert self._reader is not None, "RecordWriter used outside 'async with'"
        return await monthly_usage(self._reader, month, **kwargs)

    @property
    def queued(self) -> int:
        """Reports waiting in memory for the next batch."""
        return self._queue.qsize()

    @property
    def spool_pending(self) -> bool:
        return self.spool_path.exists() or self._replay_path.exists()

    # -- the writing task

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = await asyncio.wait_for(self._queue.get(), self._retry_interval)
            except TimeoutError:
                if self.spool_pending:
                    await self._replay_spool()
                continue
            batch: list[_Item] = []
            for item in self._drain(first):
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            try:
                await self._write_batch(batch)
            except Exception:  # a bug must not stop the writer: keep the records, go on
                log.exception("call-record writer failed on a batch of %d", len(batch))
                self._spool_items(batch)
            if self._queue.empty():
                self.idle.set()

    def _drain(self, first: object) -> list[object]:
        items = [first]
        while len(items) < self._batch_max:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    async def _write_batch(self, batch: Sequence[_Item]) -> None:
        if self.spool_pending:
            await self._replay_spool()
        if not batch:
            return
        if self.spool_pending:
            # The spool could not be replayed: keep the order, append behind it.
            self._spool_items(batch)
            return
        try:
            closed = await self._commit(batch)
        except sqlite3.OperationalError as exc:
            self._failed(exc, len(batch))
            self._spool_items(batch)
            return
        self.writable = True
        self.stats.batches += 1
        self.stats.batch_sizes.append(len(batch))
        self.stats.records_written += sum(isinstance(i, _Report) for i in batch)
        for item, count in zip(batch, closed, strict=True):
            if isinstance(item, _Abort) and item.done is not None and not item.done.done():
                item.done.set_result(count)

    def _failed(self, exc: sqlite3.Error, count: int) -> None:
        self.writable = False
        self.stats.failed_batches += 1
        self.stats.last_error = str(exc)
        log.warning(
            "records database %s refused a batch of %d (%s): spooling to %s",
            self.path,
            count,
            exc,
            self.spool_path,
        )

    async def _commit(self, batch: Sequence[_Item]) -> list[int]:
        """Write a batch; if one item is poison (not a transient OperationalError, e.g. a
        NULL where the schema forbids it), write the others one by one and set the poison
        aside in ``<db>.rejected.jsonl`` rather than blocking every later batch."""
        try:
            return await self._transaction(batch)
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
            if len(batch) == 1:
                self._reject(batch[0], exc)
                return [0]
        closed: list[int] = []
        for item in batch:
            closed += await self._commit([item])
        return closed

    def _reject(self, item: _Item, exc: BaseException) -> None:
        self.stats.records_rejected += 1
        log.error(
            "call-record item refused by the database, set aside in %s: %r", self.rejected_path, exc
        )
        with contextlib.suppress(OSError), open(self.rejected_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**item.to_json(), "error": str(exc)}, default=str) + "\n")
        if isinstance(item, _Abort) and item.done is not None and not item.done.done():
            item.done.set_result(0)

    async def _transaction(self, batch: Sequence[_Item]) -> list[int]:
        """Write a batch in one transaction; per item, the number of calls an abort closed."""
        db = self._db
        assert db is not None
        now = self._clock()
        closed: list[int] = []
        await db.execute("BEGIN IMMEDIATE")
        try:
            # Runs of reports go in two executemany calls (calls, then legs): a batch costs
            # a handful of round trips to the SQLite thread, not several per record.
            # Aborts keep their place between the runs.
            run: list[_Report] = []
            for item in [*batch, None]:
                if isinstance(item, _Report):
                    run.append(item)
                    closed.append(0)
                    continue
                if run:
                    await self._upsert(db, run, now)
                    run = []
                if item is not None:
                    closed.append(await self._abort(db, item))
            await db.commit()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await db.rollback()
            raise
        return closed

    @staticmethod
    async def _upsert(db: aiosqlite.Connection, reports: Sequence[_Report], now: float) -> None:
        calls = [call_row_values(r.phase, r.record, r.policy, now) for r in reports]
        legs = [leg_row_values(r.record, r.phase, leg) for r in reports for leg in r.record.legs]
        await db.executemany(_UPSERT_CALL, calls)
        if legs:
            await db.executemany(_UPSERT_LEG, legs)

    @staticmethod
    async def _abort(db: aiosqlite.Connection, item: _Abort) -> int:
        # The end of an aborted call is unknown: take the time the abort was noticed
        # (an upper bound), so that the minutes of an answered call are not lost.
        sql = (
            "UPDATE calls SET outcome = ?, hung_up_by = 'switch', phase = 'ended', "
            "phase_rank = 2, ended_ms = MAX(COALESCE(answer_relayed_ms, 0), "
            "(? - started_wall) * 1000.0), updated_wall = ? WHERE outcome IS NULL"
        )
        args: list[Any] = [Outcome.ABORTED.value, item.at_wall, item.at_wall]
        if item.worker is not None:
            sql += " AND worker = ?"
            args.append(item.worker)
        cursor = await db.execute(sql, args)
        count = cursor.rowcount
        await cursor.close()
        if count:
            log.info("closed %d active call(s) of worker %s as aborted", count, item.worker or "*")
        return count

    # -- the spool

    def _spool_items(self, items: Sequence[_Item]) -> None:
        lines = "".join(json.dumps(i.to_json(), separators=(",", ":")) + "\n" for i in items)
        try:
            with open(self.spool_path, "a", encoding="utf-8") as spool:
                spool.write(lines)
                spool.flush()
                os.fsync(spool.fileno())
        except OSError as exc:
            self.stats.records_lost += len(items)
            log.error(
                "call-record spool %s cannot be written, %d lost: %s",
                self.spool_path,
                len(items),
                exc,
            )
            return
        self.stats.records_spooled += sum(isinstance(i, _Report) for i in items)
        for item in items:
            if isinstance(item, _Abort) and item.done is not None and not item.done.done():
                item.done.set_result(0)

    async def _replay_spool(self) -> bool:
        """Write the spool to the database; True when it is empty afterwards.

        The spool is renamed before it is read, so reports spooled meanwhile (queue
        full) land in a fresh file and are replayed the next time.
        """
        if not self._replay_path.exists():
            try:
                self.spool_path.rename(self._replay_path)
            except FileNotFoundError:
                return True
        items = self._read_spool(self._replay_path)
        try:
            if items:
                await self._commit(items)
        except sqlite3.OperationalError as exc:
            self._failed(exc, len(items))
            return False
        self.writable = True
        self.stats.records_replayed += sum(isinstance(i, _Report) for i in items)
        self._replay_path.unlink()
        if items:
            log.info("replayed %d spooled call-record item(s) from %s", len(items), self.spool_path)
        return not self.spool_path.exists()

    @staticmethod
    def _read_spool(path: Path) -> list[_Item]:
        items: list[_Item] = []
        with open(path, encoding="utf-8") as spool:
            for number, line in enumerate(spool, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if data["op"] == "abort":
                        items.append(_Abort(data["worker"], float(data["at_wall"])))
                    else:
                        record = CallRecord.from_dict(data["record"])
                        items.append(_Report(data["phase"], record, CallerPolicy(data["policy"])))
                except (ValueError, KeyError, TypeError) as exc:
                    # A torn last line (crash during append) must not block the rest.
                    log.error(
                        "call-record spool %s line %d unreadable, skipped: %s", path, number, exc
                    )
        return items
