"""The ``voicemails`` table: voicemail messages and dictations, and every query on it.

A worker records a message and reports it (the ``voicemail`` control message);
:meth:`Voicemail.from_message` checks the report and applies the plan's
``store_caller`` policy (the same as the call records: full, masked, none), and
:class:`VoicemailStore` files it (migration 3 of :mod:`switch.records.schema`). The
dictation box (issue 7) files its recordings in the same table as ``kind`` ``dictation``
(migration 5), with the ``person`` who dictated and ``done_at`` once the office typed
it up. The module-level functions are the privacy tools' queries (export, erase, purge).

The WAV files themselves live under ``<data_dir>/voicemail`` and ``<data_dir>/dictation``;
this module only stores their paths.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite

from switch.errors import RecordsError, SwitchError, VoicemailError
from switch.records.rows import CallerPolicy, apply_caller_policy, iso_utc, row_dict
from switch.records.schema import CallsDbStore

KINDS: Final = ("voicemail", "dictation")


@dataclass(frozen=True, slots=True)
class Voicemail:
    tenant: str
    call_id: str
    caller: str | None  # as stored: after the plan's store_caller policy
    called: str
    path: str
    seconds: float
    started_wall: float
    kind: str = "voicemail"
    person: str | None = None

    @classmethod
    def from_message(cls, message: dict[str, Any], policy: CallerPolicy | str) -> Voicemail:
        """The record of a worker's report; :class:`VoicemailError` when it is unusable."""
        try:
            mail = cls(
                tenant=str(message["tenant"]),
                call_id=str(message["call_id"]),
                caller=apply_caller_policy(message.get("caller"), policy),
                called=str(message.get("called", "")),
                path=str(message["path"]),
                seconds=float(message["seconds"]),
                started_wall=float(message["started_wall"]),
                kind=str(message.get("kind") or "voicemail"),
                person=None if message.get("person") is None else str(message["person"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VoicemailError(f"voicemail report {message!r}: {exc}") from None
        if mail.kind not in KINDS:
            raise VoicemailError(f"voicemail report kind {mail.kind!r}: not one of {KINDS}")
        return mail


class VoicemailStore(CallsDbStore):
    """``async with VoicemailStore(db_path) as store``: files and lists recordings."""

    def _outside(self) -> SwitchError:
        return VoicemailError("voicemail box used outside 'async with'")

    async def add(self, mail: Voicemail, policy: CallerPolicy | str) -> None:
        """Files one message; a database that refuses it is a RecordsError (nothing raised
        from sqlite3 leaves this package)."""
        db = self._require()
        try:
            await db.execute(
                "INSERT INTO voicemails (call_id, tenant, caller, caller_policy, called, path, "
                "seconds, started_wall, started_at, kind, person) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mail.call_id,
                    mail.tenant,
                    mail.caller,
                    CallerPolicy(policy).value,
                    mail.called,
                    mail.path,
                    mail.seconds,
                    mail.started_wall,
                    iso_utc(mail.started_wall),
                    mail.kind,
                    mail.person,
                ),
            )
            await db.commit()
        except sqlite3.Error as exc:
            raise RecordsError(f"voicemail of call {mail.call_id!r} not stored: {exc}") from exc

    async def list(
        self, tenant: str | None = None, limit: int = 100, kind: str = "voicemail"
    ) -> list[dict[str, Any]]:
        """The newest recordings of ``kind``, each with the ``url`` it is served under."""
        sql = "SELECT call_id, tenant, caller, called, path, seconds, started_at"
        if kind == "dictation":
            sql += ", id, person, done_at"
        rows = await self._select(
            sql + " FROM voicemails",
            where=["kind = ?"],
            args=[kind],
            tenant=tenant,
            order="started_wall DESC",
            limit=limit,
        )
        for row in rows:
            name = Path(row["path"]).name
            row["url"] = f"/files/{kind}/{row['tenant']}/{name}"
        return rows

    async def tenant_of(self, row_id: int, kind: str) -> str | None:
        async with self._require().execute(
            "SELECT tenant FROM voicemails WHERE id = ? AND kind = ?", (row_id, kind)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def mark_done(self, row_id: int, when: float) -> dict[str, Any] | None:
        """Mark a dictation typed up; None when there is no such dictation."""
        return await self._mark_done("voicemails", row_id, when, kind="dictation")


# ------------------------------------------------------------- privacy (GDPR, retention)


async def of_caller(db: aiosqlite.Connection, tenant: str, number: str) -> list[dict[str, Any]]:
    """Every recording left by caller ``number`` (stored in full) in ``tenant``, oldest first."""
    async with db.execute(
        "SELECT * FROM voicemails WHERE tenant = ? AND caller = ? ORDER BY started_wall",
        (tenant, number),
    ) as cursor:
        return [row_dict(cursor.description, row) for row in await cursor.fetchall()]


async def delete_of_caller(db: aiosqlite.Connection, tenant: str, number: str) -> list[str]:
    """Delete the rows of caller ``number``; the paths of their files (not deleted here)."""
    where, args = "tenant = ? AND caller = ?", (tenant, number)
    return await _delete(db, where, args)


async def of_person(db: aiosqlite.Connection, tenant: str, person: str) -> list[dict[str, Any]]:
    """Every dictation that ``person`` of ``tenant`` recorded, oldest first."""
    async with db.execute(
        "SELECT * FROM voicemails WHERE tenant = ? AND kind = 'dictation' AND person = ? "
        "ORDER BY started_wall",
        (tenant, person),
    ) as cursor:
        return [row_dict(cursor.description, row) for row in await cursor.fetchall()]


async def delete_of_person(db: aiosqlite.Connection, tenant: str, person: str) -> list[str]:
    """Delete the dictations of ``person`` (issue 14); the paths of their files."""
    where = "tenant = ? AND kind = 'dictation' AND person = ?"
    return await _delete(db, where, (tenant, person))


async def delete_where(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> list[str]:
    """Retention per kind (privacy.purge_by_kind builds ``where`` from fixed column names,
    the values are parameters); the paths of the deleted rows' files."""
    return await _delete(db, where, args)


async def delete_older(db: aiosqlite.Connection, cutoff: float, tenant: str | None) -> list[str]:
    """Delete the rows that started before ``cutoff`` (of ``tenant``, or all); their paths."""
    if tenant is None:
        return await _delete(db, "started_wall < ?", (cutoff,))
    return await _delete(db, "started_wall < ? AND tenant = ?", (cutoff, tenant))


async def _delete(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> list[str]:
    async with db.execute(f"SELECT path FROM voicemails WHERE {where}", args) as cursor:
        paths = [str(row[0]) for row in await cursor.fetchall()]
    cursor = await db.execute(f"DELETE FROM voicemails WHERE {where}", args)
    await cursor.close()
    return paths
