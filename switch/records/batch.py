"""How a batch of writer items becomes SQL, on either backend.

A batch (:mod:`switch.records.spool` items, in the order they were submitted) is written
inside one transaction by :class:`~switch.records.writer.RecordWriter`: runs of reports
go in two ``executemany`` calls (calls, then legs), so a batch costs a handful of round
trips, not several per record; aborts keep their place between the runs.

``node`` is the PostgreSQL writer's (:mod:`switch.records.postgres`): every call row
carries it, and an abort closes only that node's calls. SQLite has one node and no
``node`` argument.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiosqlite

from switch.call.events import Outcome
from switch.records.rows import UPSERT_CALL, UPSERT_LEG, call_row_values, leg_row_values
from switch.records.spool import Abort, Item, Report

log = logging.getLogger(__name__)

# The end of an aborted call is unknown: take the time the abort was noticed (an upper
# bound), so that the minutes of an answered call are not lost.
_ABORT: str = (
    "UPDATE calls SET outcome = ?, hung_up_by = 'switch', phase = 'ended', "
    "phase_rank = 2, ended_ms = MAX(COALESCE(answer_relayed_ms, 0), "
    "(? - started_wall) * 1000.0), updated_wall = ? WHERE outcome IS NULL"
)


async def write_items(
    db: aiosqlite.Connection,
    batch: Sequence[Item],
    now: float,
    *,
    upsert_call: str = UPSERT_CALL,
    node: str | None = None,
) -> list[int]:
    """Write ``batch`` on ``db`` (inside the caller's transaction); per item, the number
    of calls an abort closed (0 for a report)."""
    closed: list[int] = []
    run: list[Report] = []
    for item in [*batch, None]:
        if isinstance(item, Report):
            run.append(item)
            closed.append(0)
            continue
        if run:
            await _upsert(db, run, now, upsert_call, node)
            run = []
        if item is not None:
            closed.append(await close_aborted(db, item, node=node))
    return closed


async def _upsert(
    db: aiosqlite.Connection, reports: Sequence[Report], now: float, sql: str, node: str | None
) -> None:
    """Upsert the call rows, then the leg rows, of ``reports``."""
    extra = () if node is None else (node,)
    calls = [(*call_row_values(r.phase, r.record, r.policy, now), *extra) for r in reports]
    legs = [leg_row_values(r.record, r.phase, leg) for r in reports for leg in r.record.legs]
    await db.executemany(sql, calls)
    if legs:
        await db.executemany(UPSERT_LEG, legs)


async def close_aborted(db: aiosqlite.Connection, item: Abort, *, node: str | None = None) -> int:
    """Close as ``aborted`` the active calls of ``item.worker`` (all when None) of
    ``node`` (SQLite: all); how many."""
    sql = _ABORT
    args: list[Any] = [Outcome.ABORTED.value, item.at_wall, item.at_wall]
    if node is not None:
        sql += " AND node = ?"
        args.append(node)
    if item.worker is not None:
        sql += " AND worker = ?"
        args.append(item.worker)
    cursor = await db.execute(sql, args)
    count = cursor.rowcount
    await cursor.close()
    if count:
        where = "" if node is None else f"node {node} "
        log.info(
            "closed %d active call(s) of %sworker %s as aborted", count, where, item.worker or "*"
        )
    return count
