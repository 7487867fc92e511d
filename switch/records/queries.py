"""Reading the calls database: recent calls, usage per business and month, :class:`RecordReader`.

The writer answers the same queries on its own read-only connection
(:meth:`switch.records.writer.RecordWriter.recent_calls`), so that reads never wait
behind a batch; tools open a :class:`RecordReader` on the file.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from switch.errors import RecordsError
from switch.records.rows import call_dict, leg_dict, row_dict
from switch.records.schema import connect, migrate


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
            data = row_dict(cursor.description, row)
            calls[data.pop("id")] = call_dict(data)
    if with_legs and calls:
        marks = ", ".join("?" * len(calls))
        sql = f"SELECT * FROM legs WHERE call_row IN ({marks}) ORDER BY call_row, leg"
        async with db.execute(sql, list(calls)) as cursor:
            async for row in cursor:
                leg = row_dict(cursor.description, row)
                calls[leg.pop("call_row")]["legs"].append(leg_dict(leg))
    return list(calls.values())


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """One business's calls in a period, as the ``/api`` and the monthly report show them."""

    tenant: str | None
    calls: int
    answered: int
    answered_by_service: int
    service_minutes: float


def started_in(
    since: float, until: float, tenant: str | None, table: str = ""
) -> tuple[str, list[Any]]:
    """The WHERE condition (and its arguments) of the calls started in [since, until), of
    ``tenant`` when one is given; ``table`` is the calls table's alias in the query."""
    col = f"{table}." if table else ""
    sql = f"{col}started_wall >= ? AND {col}started_wall < ?"
    args: list[Any] = [since, until]
    if tenant is not None:
        sql += f" AND {col}tenant = ?"
        args.append(tenant)
    return sql, args


async def usage(
    db: aiosqlite.Connection, *, since: float, until: float, tenant: str | None = None
) -> list[TenantUsage]:
    """Per-tenant totals of calls started in [since, until) (see :func:`month_bounds`)."""
    sql = (
        "SELECT tenant, COUNT(*), "
        # Portable SQL (SQLite and PostgreSQL, switch/records/dialect.py): booleans compared.
        "SUM(CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'answered' AND answered_by_service <> 0 THEN 1 ELSE 0 END), "
        "COALESCE(SUM(CASE WHEN answered_by_service <> 0 AND answer_relayed_ms IS NOT NULL "
        "AND ended_ms IS NOT NULL THEN ended_ms - answer_relayed_ms END), 0) / 60000.0 "
        "FROM calls WHERE "
    )
    where, args = started_in(since, until, tenant)
    sql += where + " GROUP BY tenant ORDER BY tenant"
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
