"""The ``messages`` table: messages for the owner (Telefonnotiz), and every query on it.

The assistant takes a message during or after a call (``POST /api/v1/messages``,
:mod:`switch.web.messages_api`); :meth:`Message.from_request` checks what the page sent and
:class:`MessageStore` files it (migration 6 of :mod:`switch.records.schema`). The desk
(:mod:`switch.supervisor.messages`) then mails it to the owner and notes here when
(``mailed_at``) or why not (``mail_error``); the owner marks it done (``done_at``).
:func:`taken_per_tenant` counts them for the usage report: a message is billable work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite
import phonenumbers

from switch.errors import MessageError, RecordsError
from switch.records.rows import iso_utc, row_dict
from switch.records.schema import CallsDbStore, has_table

URGENCIES: Final = ("normal", "urgent")
MAX_TEXT: Final = 2000
COLUMNS: Final = (
    "id, tenant, taken_by, call_id, caller_name, number, concern, urgency, callback, "
    "taken_at, mailed_at, mail_error, done_at"
)


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MessageError(f"message: {key!r} is required", field=key)
        return None
    if not isinstance(value, str):
        raise MessageError(f"message: {key!r} must be text, not {value!r}", field=key)
    if len(value) > MAX_TEXT:
        raise MessageError(f"message: {key!r} is longer than {MAX_TEXT} characters", field=key)
    return value.strip()


@dataclass(frozen=True, slots=True)
class Message:
    """One Telefonnotiz: who called, on which number, what about, how urgent, call back?"""

    tenant: str
    taken_by: str
    concern: str
    caller_name: str | None = None
    number: str | None = None
    urgency: str = "normal"
    callback: bool = False
    call_id: str | None = None
    taken_wall: float = 0.0
    id: int | None = None

    @classmethod
    def from_request(cls, body: object, taken_by: str, now: float) -> Message:
        """The message the page sent; :class:`MessageError` naming the field otherwise."""
        if not isinstance(body, dict):
            raise MessageError("message: a JSON object was expected", field=None)
        tenant = _text(body, "tenant", required=True)
        concern = _text(body, "concern", required=True)
        assert tenant is not None
        assert concern is not None
        urgency = body.get("urgency", "normal")
        if urgency not in URGENCIES:
            raise MessageError(
                f"message: urgency {urgency!r} is not one of {', '.join(URGENCIES)}",
                field="urgency",
            )
        callback = body.get("callback", False)
        if not isinstance(callback, bool):
            raise MessageError(f"message: callback {callback!r} must be true or false", "callback")
        return cls(
            tenant=tenant,
            taken_by=taken_by,
            concern=concern,
            caller_name=_text(body, "caller_name"),
            number=_text(body, "number"),
            urgency=str(urgency),
            callback=callback,
            call_id=_text(body, "call_id"),
            taken_wall=now,
        )

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "taken_by": self.taken_by,
            "call_id": self.call_id,
            "caller_name": self.caller_name,
            "number": self.number,
            "concern": self.concern,
            "urgency": self.urgency,
            "callback": self.callback,
            "taken_at": iso_utc(self.taken_wall),
        }


class MessageStore(CallsDbStore):
    """``async with MessageStore(db_path) as store``: files, lists and closes messages."""

    what = "message store"

    async def add(self, message: Message) -> Message:
        """Files ``message``; the same message with its ``id``."""
        db = self._require()
        try:
            cursor = await db.execute(
                "INSERT INTO messages (tenant, taken_by, call_id, caller_name, number, concern, "
                "urgency, callback, taken_wall, taken_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (
                    message.tenant,
                    message.taken_by,
                    message.call_id,
                    message.caller_name,
                    message.number,
                    message.concern,
                    message.urgency,
                    int(message.callback),
                    message.taken_wall,
                    iso_utc(message.taken_wall),
                ),
            )
            row = await cursor.fetchone()
            await cursor.close()
            await db.commit()
        except sqlite3.Error as exc:
            raise RecordsError(f"message for {message.tenant!r} not stored: {exc}") from exc
        assert row is not None
        return Message(**{**_fields(message), "id": int(row[0])})

    async def list(self, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest messages (of ``tenant``, or all), open and done."""
        rows = await self._select(
            f"SELECT {COLUMNS} FROM messages",
            tenant=tenant,
            order="taken_wall DESC, id DESC",
            limit=limit,
        )
        for row in rows:
            row["callback"] = bool(row["callback"])
        return rows

    async def tenant_of(self, row_id: int) -> str | None:
        async with self._require().execute(
            "SELECT tenant FROM messages WHERE id = ?", (row_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def mark_done(self, row_id: int, when: float) -> dict[str, Any] | None:
        return await self._mark_done("messages", row_id, when)

    async def mailed(self, row_id: int, when: float, error: str | None) -> None:
        """Note that the e-mail went out (``error`` None) or why it did not."""
        db = self._require()
        if error is None:
            await db.execute(
                "UPDATE messages SET mailed_at = ?, mail_error = NULL WHERE id = ?",
                (iso_utc(when), row_id),
            )
        else:
            await db.execute("UPDATE messages SET mail_error = ? WHERE id = ?", (error, row_id))
        await db.commit()

    async def contact(self, tenant: str, number: str) -> dict[str, Any] | None:
        """The address-book entry of ``number`` in ``tenant`` (None: not known)."""
        async with self._require().execute(
            "SELECT number, name, note FROM contacts WHERE tenant = ? AND number = ?",
            (tenant, canonical_number(number)),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else {"number": row[0], "name": row[1], "note": row[2]}

    async def save_contacts(
        self, tenant: str, entries: Sequence[tuple[str, str, str | None]]
    ) -> int:
        """Add or replace ``(number, name, note)`` entries; how many were saved."""
        return await save_contacts(self._require(), tenant, entries)


def _fields(message: Message) -> dict[str, Any]:
    return {name: getattr(message, name) for name in Message.__slots__}


def canonical_number(raw: str, region: str = "DE") -> str:
    """``"+49 2331 123456"``, ``"02331 123456"``, ``"sip:+492331123456@x"`` -> E.164."""
    text = raw.strip()
    if text.startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


async def save_contacts(
    db: aiosqlite.Connection, tenant: str, entries: Sequence[tuple[str, str, str | None]]
) -> int:
    try:
        await db.executemany(
            "INSERT INTO contacts (tenant, number, name, note) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, number) DO UPDATE SET name = excluded.name, note = excluded.note",
            [(tenant, canonical_number(n), name, note) for n, name, note in entries],
        )
        await db.commit()
    except sqlite3.Error as exc:
        raise RecordsError(f"contacts of {tenant!r} not stored: {exc}") from exc
    return len(entries)


async def of_number(db: aiosqlite.Connection, tenant: str, number: str) -> list[dict[str, Any]]:
    """The messages about caller ``number`` (E.164) in ``tenant``: privacy export."""
    if not await has_table(db, "messages"):
        return []
    async with db.execute(
        f"SELECT {COLUMNS} FROM messages WHERE tenant = ? AND number = ? ORDER BY taken_wall",
        (tenant, number),
    ) as cursor:
        return [row_dict(cursor.description, row) for row in await cursor.fetchall()]


async def erase_number(db: aiosqlite.Connection, tenant: str, number: str) -> int:
    """Privacy delete of a caller: their messages and their address-book entry go."""
    if not await has_table(db, "messages"):
        return 0
    cursor = await db.execute(
        "DELETE FROM messages WHERE tenant = ? AND number = ?", (tenant, number)
    )
    count = cursor.rowcount
    await db.execute("DELETE FROM contacts WHERE tenant = ? AND number = ?", (tenant, number))
    return count


async def taken_per_tenant(db: aiosqlite.Connection, start: float, end: float) -> dict[str, int]:
    """Messages taken per tenant in ``[start, end)`` (Unix seconds), for the usage report."""
    if not await has_table(db, "messages"):
        return {}
    async with db.execute(
        "SELECT tenant, COUNT(*) FROM messages WHERE taken_wall >= ? AND taken_wall < ? "
        "GROUP BY tenant",
        (start, end),
    ) as cursor:
        return {str(tenant): int(count) for tenant, count in await cursor.fetchall()}


__all__ = [
    "URGENCIES",
    "Message",
    "MessageStore",
    "canonical_number",
    "erase_number",
    "of_number",
    "save_contacts",
    "taken_per_tenant",
]
