"""The ``reminders`` table: "call back later" from the assistant's console (issue 18).

The assistant sets one on a call card (or without a call): a time and a note, with the
caller's number and name. :class:`ReminderStore` files it (migration 10 of
:mod:`switch.records.schema`), lists the open ones, hands the due ones over once
(``popped_at``: the console was told, :mod:`switch.supervisor.reminders`) and marks one done.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from switch.errors import MessageError, RecordsError
from switch.records.rows import iso_utc, row_dict
from switch.records.schema import CallsDbStore

MAX_NOTE: Final = 2000
MAX_AHEAD_S: Final = 366 * 86400.0
COLUMNS: Final = (
    "id, tenant, created_by, call_id, caller_name, number, note, due_wall, due_at, "
    "created_at, popped_at, done_at"
)


def _text(body: dict[str, Any], key: str, limit: int = 200) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise MessageError(f"reminder: {key!r} must be text of at most {limit} characters",
                           field=key)  # fmt: skip
    return value.strip()


def due_wall(body: dict[str, Any], now: float) -> float:
    """When the reminder is due: ``due`` (ISO 8601 with offset) or ``in_minutes``."""
    if body.get("due") is not None:
        raw = body["due"]
        try:
            when = datetime.fromisoformat(str(raw))
        except ValueError:
            raise MessageError(f"reminder: due {raw!r} is no ISO time", field="due") from None
        if when.utcoffset() is None:
            raise MessageError(f"reminder: due {raw!r} has no UTC offset", field="due")
        wall = when.timestamp()
    else:
        minutes = body.get("in_minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise MessageError("reminder: 'due' or 'in_minutes' is required", field="due")
        if not math.isfinite(minutes) or minutes < 0:
            raise MessageError(f"reminder: in_minutes {minutes!r} is not a time ahead",
                               field="in_minutes")  # fmt: skip
        wall = now + float(minutes) * 60
    if wall > now + MAX_AHEAD_S:
        raise MessageError("reminder: due more than a year ahead", field="due")
    return max(wall, now)


@dataclass(frozen=True, slots=True)
class Reminder:
    tenant: str
    created_by: str
    note: str
    due_wall: float
    created_wall: float
    call_id: str | None = None
    caller_name: str | None = None
    number: str | None = None

    @classmethod
    def from_request(cls, body: object, created_by: str, now: float) -> Reminder:
        if not isinstance(body, dict):
            raise MessageError("reminder: a JSON object was expected", field=None)
        tenant = _text(body, "tenant", 64)
        if tenant is None:
            raise MessageError("reminder: 'tenant' is required", field="tenant")
        return cls(
            tenant=tenant,
            created_by=created_by,
            note=_text(body, "note", MAX_NOTE) or "",
            due_wall=due_wall(body, now),
            created_wall=now,
            call_id=_text(body, "call_id"),
            caller_name=_text(body, "caller_name"),
            number=_text(body, "number", 40),
        )


class ReminderStore(CallsDbStore):
    """``async with ReminderStore(db_path) as store``: files, lists, pops and closes."""

    what = "reminder store"

    async def add(self, reminder: Reminder) -> dict[str, Any]:
        db = self._require()
        try:
            cursor = await db.execute(
                "INSERT INTO reminders (tenant, created_by, call_id, caller_name, number, note, "
                "due_wall, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reminder.tenant,
                    reminder.created_by,
                    reminder.call_id,
                    reminder.caller_name,
                    reminder.number,
                    reminder.note,
                    reminder.due_wall,
                    iso_utc(reminder.due_wall),
                    iso_utc(reminder.created_wall),
                ),
            )
            await db.commit()
        except sqlite3.Error as exc:
            raise RecordsError(f"reminder for {reminder.tenant!r} not stored: {exc}") from exc
        row = await self.get(int(cursor.lastrowid or 0))
        assert row is not None
        return row

    async def get(self, row_id: int) -> dict[str, Any] | None:
        sql = f"SELECT {COLUMNS} FROM reminders WHERE id = ?"
        async with self._require().execute(sql, (row_id,)) as cursor:
            row = await cursor.fetchone()
            return None if row is None else row_dict(cursor.description, row)

    async def list_open(self, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The open reminders (of ``tenant``, or all), the soonest first."""
        return await self._select(
            f"SELECT {COLUMNS} FROM reminders",
            where=["done_at IS NULL"],
            tenant=tenant,
            order="due_wall, id",
            limit=limit,
        )

    async def pop_due(self, now: float) -> list[dict[str, Any]]:
        """The open reminders due at ``now`` not handed over yet; from now on they are."""
        db = self._require()
        sql = (
            f"SELECT {COLUMNS} FROM reminders WHERE done_at IS NULL AND popped_at IS NULL "
            "AND due_wall <= ? ORDER BY due_wall, id"
        )
        async with db.execute(sql, (now,)) as cursor:
            rows = [row_dict(cursor.description, row) for row in await cursor.fetchall()]
        if rows:
            marks = [(iso_utc(now), row["id"]) for row in rows]
            await db.executemany("UPDATE reminders SET popped_at = ? WHERE id = ?", marks)
            await db.commit()
            for row in rows:
                row["popped_at"] = iso_utc(now)
        return rows

    async def mark_done(self, row_id: int, when: float) -> dict[str, Any] | None:
        db = self._require()
        cursor = await db.execute(
            "UPDATE reminders SET done_at = COALESCE(done_at, ?) WHERE id = ?",
            (iso_utc(when), row_id),
        )
        if cursor.rowcount == 0:
            return None
        await db.commit()
        return await self.get(row_id)


__all__ = ["Reminder", "ReminderStore", "due_wall"]
