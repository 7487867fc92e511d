"""Data-subject requests and retention (GDPR Art. 15 access, Art. 17 erasure, Art. 5(1)(e)).

What ``rufweiche privacy export|delete|purge`` does (the command line is
:mod:`switch.cli.privacy`), working offline on the data directory (the switch may run
meanwhile: SQLite in WAL mode, short transactions). Nothing here creates a database
that is not there: an empty data directory exports nothing.

Who ``--person`` is (:meth:`Subject.parse`):

* a **phone number** (``+49 171 …``, ``0171 …``): a *caller*. Matched exactly (E.164)
  against ``calls.caller``, ``voicemails.caller`` and ``messages.number`` (issue 18) —
  rows stored ``masked`` or ``none`` (the plan's ``store_caller``) hold no number and
  cannot be attributed to anyone.
  Erasure deletes the caller's voicemail messages (rows and WAV files), the messages
  taken about them and their address-book entry (``contacts``), and blanks the
  number in call rows, keeping the call's anonymous figures (times, outcome).
* a **person id** of the plan (``jan``): someone of the business or the service.
  Matched against ``legs.owner``, ``calls.answered_by`` and the presence table.
  Erasure deletes the presence row, the person's dictations (rows and WAV files) and
  replaces the id in legs and calls by ``(erased)``.

Purge deletes calls (with their legs) and voicemail messages (rows and files) that
started before the cut-off.

The calls database is opened through :func:`switch.records.backend.existing`: SQLite's
file, or with ``records`` (the ``records:`` settings) the PostgreSQL schema that every
node writes to, so that a request covers all nodes' calls. The voicemail rows
are :mod:`switch.records.voicemails`'. The presence table belongs to presence/
(:mod:`presence.store`; with PostgreSQL it is in the shared schema, every node's rows,
:mod:`switch.records.pgpresence`, and queried here on the same connection; on SQLite it is
each node's ``presence.sqlite3``), whose API loads and saves the whole hub
state rather than one person's rows: its two queries (synchronous sqlite3, as before)
are kept apart at the end of this module (:func:`_presence_rows`, :func:`_delete_presence`),
the only code here that touches that file.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite

from rules import normalize_number
from switch.errors import PrivacyError, RecordsError
from switch.records import messages, voicemails
from switch.records.backend import RecordsSettings, existing
from switch.records.rows import row_dict
from switch.records.schema import RECORDS_FILE, has_table, transaction

ERASED: Final = "(erased)"
PRESENCE_FILE: Final = "presence.sqlite3"
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[dhw]?)$")


@dataclass(frozen=True, slots=True)
class Subject:
    tenant: str
    number: str | None  # E.164 when --person is a phone number
    person: str | None  # a plan person id otherwise

    @classmethod
    def parse(cls, tenant: str, raw: str) -> Subject:
        text = raw.strip()
        if not text:
            raise PrivacyError("--person is empty", subject=raw)
        if re.fullmatch(r"[+0-9][0-9 ()/-]*", text):
            number = normalize_number(text)
            if number is None:
                raise PrivacyError(f"--person {raw!r} is not a valid phone number", subject=raw)
            return cls(tenant, number, None)
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", text):
            raise PrivacyError(f"--person {raw!r}: give a phone number or a person id", subject=raw)
        return cls(tenant, None, text)


async def _rows(db: aiosqlite.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with db.execute(sql, args) as cursor:
        return [row_dict(cursor.description, row) for row in await cursor.fetchall()]


def _person_calls(subject: Subject) -> tuple[str, tuple[Any, ...]]:
    if subject.number is not None:
        return "tenant = ? AND caller = ?", (subject.tenant, subject.number)
    like = f"{subject.person}.%"
    return (
        "tenant = ? AND (answered_by = ? OR answered_by LIKE ? OR id IN "
        "(SELECT call_row FROM legs WHERE owner = ?))",
        (subject.tenant, subject.person, like, subject.person),
    )


async def _count(db: aiosqlite.Connection, sql: str, args: tuple[Any, ...]) -> int:
    cursor = await db.execute(sql, args)
    count = cursor.rowcount
    await cursor.close()
    return count


async def export(
    data_dir: Path, subject: Subject, records: RecordsSettings | None = None
) -> dict[str, Any]:
    """Everything stored about ``subject`` (Art. 15), as JSON-ready data."""
    result: dict[str, Any] = {
        "tenant": subject.tenant,
        "person": subject.number or subject.person,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "calls": [],
        "voicemails": [],
        "presence": [],
    }
    async with existing(data_dir, records) as db:
        if db is not None:
            where, args = _person_calls(subject)
            calls = await _rows(
                db, f"SELECT * FROM calls WHERE {where} ORDER BY started_wall", args
            )
            for call in calls:
                call["legs"] = await _rows(
                    db, "SELECT * FROM legs WHERE call_row = ? ORDER BY leg", (call["id"],)
                )
            result["calls"] = calls
            if subject.number is not None and await has_table(db, "voicemails"):
                result["voicemails"] = await voicemails.of_caller(
                    db, subject.tenant, subject.number
                )
            if subject.number is not None:
                result["messages"] = await messages.of_number(db, subject.tenant, subject.number)
            if subject.person is not None and await has_table(db, "voicemails"):
                result["dictations"] = await voicemails.of_person(
                    db, subject.tenant, subject.person
                )
            if subject.person is not None and _shared(records):
                result["presence"] = await _shared_presence_rows(db, subject)
    if subject.person is not None and not _shared(records):
        result["presence"] = _presence_rows(data_dir, subject.tenant, subject.person)
    return result


async def delete(
    data_dir: Path, subject: Subject, records: RecordsSettings | None = None
) -> dict[str, int]:
    """Erase ``subject`` (Art. 17); returns what was changed, by kind."""
    counts = {"calls": 0, "legs": 0, "voicemails": 0, "dictations": 0, "files": 0, "presence": 0}
    async with existing(data_dir, records) as db:
        if db is not None:
            async with transaction(db):
                if subject.number is not None:
                    counts["calls"] = await _count(
                        db,
                        "UPDATE calls SET caller = NULL, caller_policy = 'erased' "
                        "WHERE tenant = ? AND caller = ?",
                        (subject.tenant, subject.number),
                    )
                    if await has_table(db, "voicemails"):
                        paths = await voicemails.delete_of_caller(
                            db, subject.tenant, subject.number
                        )
                        counts["voicemails"] = len(paths)
                        counts["files"] = _unlink(data_dir, paths)
                    counts["messages"] = await messages.erase_number(
                        db, subject.tenant, subject.number
                    )
                else:
                    person = subject.person
                    counts["legs"] = await _count(
                        db,
                        "UPDATE legs SET owner = ?, target = ?, uri = ? WHERE owner = ? AND "
                        "call_row IN (SELECT id FROM calls WHERE tenant = ?)",
                        (ERASED, ERASED, ERASED, person, subject.tenant),
                    )
                    counts["calls"] = await _count(
                        db,
                        "UPDATE calls SET answered_by = ? WHERE tenant = ? AND "
                        "(answered_by = ? OR answered_by LIKE ?)",
                        (ERASED, subject.tenant, person, f"{person}.%"),
                    )
                    if person is not None and await has_table(db, "voicemails"):
                        paths = await voicemails.delete_of_person(db, subject.tenant, person)
                        counts["dictations"] = len(paths)
                        counts["files"] = _unlink(data_dir, paths)
                    if _shared(records) and await has_table(db, "presence"):
                        counts["presence"] = await _count(
                            db,
                            "DELETE FROM presence WHERE tenant = ? AND person = ?",
                            (subject.tenant, person),
                        )
    if subject.person is not None and not _shared(records):
        counts["presence"] = _delete_presence(data_dir, subject.tenant, subject.person)
    return counts


async def purge(
    data_dir: Path,
    older_than_s: float,
    tenant: str | None = None,
    records: RecordsSettings | None = None,
) -> dict[str, int]:
    """Retention: delete calls and voicemail messages that started before now - older_than_s."""
    cutoff = time.time() - older_than_s
    counts = {"calls": 0, "voicemails": 0, "files": 0}
    scope, args = ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))
    async with existing(data_dir, records) as db:
        if db is None:
            return counts
        async with transaction(db):
            counts["calls"] = await _count(
                db,
                f"DELETE FROM calls WHERE started_wall < ? AND outcome IS NOT NULL{scope}",
                (cutoff, *args),
            )
            if await has_table(db, "voicemails"):
                paths = await voicemails.delete_older(db, cutoff, tenant)
                counts["voicemails"] = len(paths)
                counts["files"] = _unlink(data_dir, paths)
    return counts


RETENTION_KINDS: Final = ("calls", "voicemail", "dictation")


async def purge_by_kind(
    data_dir: Path,
    ages: Mapping[str, float | None],
    *,
    now: float,
    tenant: str | None = None,
    skip_tenants: Mapping[str, Collection[str]] | None = None,
    records: RecordsSettings | None = None,
) -> dict[str, int]:
    """Retention per kind (issue 14): ``ages`` maps ``calls``/``voicemail``/``dictation``
    to the seconds to keep (None: keep forever). ``tenant`` limits it to one business;
    ``skip_tenants[kind]`` are businesses with a retention of their own for that kind.
    Returns the rows (and files) deleted, by kind; :class:`RecordsError` when the
    database cannot be used (the running switch logs it and tries again later)."""
    try:
        return await _purge_by_kind(data_dir, ages, now, tenant, skip_tenants or {}, records)
    except sqlite3.Error as exc:
        path = data_dir / RECORDS_FILE
        raise RecordsError(f"retention on {str(path)!r} failed: {exc}", path=path) from exc


async def _purge_by_kind(
    data_dir: Path,
    ages: Mapping[str, float | None],
    now: float,
    tenant: str | None,
    skip: Mapping[str, Collection[str]],
    records: RecordsSettings | None = None,
) -> dict[str, int]:
    counts = {"calls": 0, "voicemails": 0, "dictations": 0, "files": 0}
    async with existing(data_dir, records) as db:
        if db is None:
            return counts
        has_mail = await has_table(db, "voicemails")
        async with transaction(db):
            for kind in RETENTION_KINDS:
                age = ages.get(kind)
                if age is None or (kind != "calls" and not has_mail):
                    continue
                where = ["started_wall < ?"]
                args: list[Any] = [now - age]
                if tenant is not None:
                    where.append("tenant = ?")
                    args.append(tenant)
                others = sorted(skip.get(kind, ()))
                if others:
                    where.append(f"tenant NOT IN ({', '.join('?' * len(others))})")
                    args += others
                if kind == "calls":
                    where.append("outcome IS NOT NULL")  # never a call in progress
                    sql = f"DELETE FROM calls WHERE {' AND '.join(where)}"
                    counts["calls"] += await _count(db, sql, tuple(args))
                    continue
                where.append("kind = ?")
                args.append(kind)
                paths = await voicemails.delete_where(db, " AND ".join(where), tuple(args))
                counts[f"{kind}s"] += len(paths)
                counts["files"] += _unlink(data_dir, paths)
    return counts


def _unlink(data_dir: Path, paths: list[str]) -> int:
    """Delete voicemail files; only ever below ``<data_dir>/voicemail`` or ``/dictation``."""
    roots = [(data_dir / kind).resolve() for kind in voicemails.KINDS]
    removed = 0
    for text in paths:
        path = Path(text).resolve()
        if not any(root in path.parents for root in roots):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def parse_age(text: str) -> float:
    """``90d``, ``12w``, ``36h`` or plain days (``90``) as seconds."""
    match = _DURATION.match(text.strip())
    if match is None or int(match["n"]) <= 0:
        raise PrivacyError(f"--older-than {text!r}: expected e.g. 90d, 12w or 36h")
    factor = {"": 86400, "d": 86400, "w": 7 * 86400, "h": 3600}[match["unit"]]
    return int(match["n"]) * factor


# ------------------------------------------------- the presence table (owned by presence/)


def _shared(records: RecordsSettings | None) -> bool:
    """Presence is in the shared PostgreSQL schema (every node's), not presence.sqlite3."""
    return records is not None and records.postgresql


async def _shared_presence_rows(db: aiosqlite.Connection, subject: Subject) -> list[dict[str, Any]]:
    if not await has_table(db, "presence"):
        return []
    return await _rows(
        db,
        "SELECT * FROM presence WHERE tenant = ? AND person = ?",
        (subject.tenant, subject.person),
    )


def _presence_db(data_dir: Path) -> sqlite3.Connection | None:
    path = data_dir / PRESENCE_FILE
    if not path.is_file():
        return None
    db = sqlite3.connect(path, timeout=5.0)
    db.row_factory = sqlite3.Row
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='presence'")
    if has.fetchone() is None:
        db.close()
        return None
    return db


def _presence_rows(data_dir: Path, tenant: str, person: str) -> list[dict[str, Any]]:
    db = _presence_db(data_dir)
    if db is None:
        return []
    with contextlib.closing(db):
        sql = "SELECT * FROM presence WHERE tenant = ? AND person = ?"
        return [dict(row) for row in db.execute(sql, (tenant, person))]


def _delete_presence(data_dir: Path, tenant: str, person: str) -> int:
    db = _presence_db(data_dir)
    if db is None:
        return 0
    with contextlib.closing(db), db:
        sql = "DELETE FROM presence WHERE tenant = ? AND person = ?"
        return db.execute(sql, (tenant, person)).rowcount


__all__ = ["ERASED", "Subject", "delete", "export", "parse_age", "purge", "purge_by_kind"]
