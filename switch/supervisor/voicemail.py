"""Voicemail in the supervisor: keep the record, notify over MQTT, list and serve the files.

Theory of operation
-------------------
A worker records a message (switch/worker/media.py) and sends a ``voicemail`` control
message. :class:`VoicemailBox` (one per supervisor, an ``async with`` object) then

1. stores a row in the ``voicemails`` table of the call records database (migration 3
   of switch/records/), with the caller's number as the plan's ``store_caller``
   allows (full, masked, none — the same policy as the call records);
2. publishes ``rufweiche/v1/<tenant>/voicemail`` (QoS 1, not retained: it is an event,
   not a state) with ``{"call_id", "path", "caller", "duration", "time"}`` to the MQTT
   broker, on a short-lived connection of its own — messages are rare, and a broker
   that is down must never delay a call or lose the record (it is logged and dropped).

The HTTP side is :func:`switch.web.voicemail_api.voicemail_routes`:
``GET /api/v1/voicemails[?tenant=]`` lists the newest messages, and
``GET /files/voicemail/<tenant>/<file>.wav`` serves one (names are checked: no path
leaves ``<data_dir>/voicemail``).

The dictation box (issue 7) reuses all of it: a report with ``"kind": "dictation"``
(and the ``person`` who dictated) lands in the same table (migration 5), is announced
on ``rufweiche/v1/<tenant>/dictation`` with ``person`` added, and is listed by
``GET /api/v1/dictations`` (rows with ``done_at``), served from
``/files/dictation/<tenant>/<file>.wav`` and marked typed up by
``POST /api/v1/dictations/{id}/done``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiomqtt
import aiosqlite

from switch.records.writer import CallerPolicy, apply_caller_policy, connect, iso_utc, migrate

log = logging.getLogger("switch.supervisor.voicemail")

TOPIC = "{prefix}/{tenant}/{kind}"
KINDS = ("voicemail", "dictation")
PUBLISH_TIMEOUT_S = 5.0


class VoicemailError(Exception):
    """A voicemail report from a worker was unusable."""


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

    def payload(self) -> bytes:
        body: dict[str, Any] = {
            "call_id": self.call_id,
            "path": self.path,
            "caller": self.caller,
            "duration": round(self.seconds, 1),
            "time": iso_utc(self.started_wall),
        }
        if self.kind == "dictation":
            body["person"] = self.person
        return json.dumps(body, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    prefix: str = "rufweiche/v1"


class VoicemailBox:
    """Stores voicemail records and sends their notifications (see the module docstring)."""

    def __init__(self, db_path: Path, broker: Broker | None = None) -> None:
        self.db_path = db_path
        self.broker = broker
        self._db: aiosqlite.Connection | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._db = await connect(self.db_path)
        await migrate(self._db, path=self.db_path)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._tasks:  # let notifications in flight finish, but never hang the stop
            await asyncio.wait(self._tasks, timeout=PUBLISH_TIMEOUT_S)
        for task in self._tasks:
            task.cancel()
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def add(self, message: dict[str, Any], policy: CallerPolicy | str) -> Voicemail:
        """Store one worker report and start its MQTT notification."""
        mail = Voicemail.from_message(message, policy)
        db = self._require()
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
        log.info("%s tenant=%s call %s: %.1f s", mail.kind, mail.tenant, mail.call_id, mail.seconds)
        if self.broker is not None:
            task = asyncio.get_running_loop().create_task(self._notify(mail))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return mail

    async def list(
        self, tenant: str | None = None, limit: int = 100, kind: str = "voicemail"
    ) -> list[dict[str, Any]]:
        sql = "SELECT call_id, tenant, caller, called, path, seconds, started_at"
        if kind == "dictation":
            sql += ", id, person, done_at"
        sql += " FROM voicemails WHERE kind = ?"
        args: list[Any] = [kind]
        if tenant:
            sql += " AND tenant = ?"
            args.append(tenant)
        sql += " ORDER BY started_wall DESC LIMIT ?"
        args.append(limit)
        async with self._require().execute(sql, args) as cursor:
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
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
        db = self._require()
        cursor = await db.execute(
            "UPDATE voicemails SET done_at = COALESCE(done_at, ?) WHERE id = ? AND kind = ?",
            (iso_utc(when), row_id, "dictation"),
        )
        if cursor.rowcount == 0:
            return None
        await db.commit()
        async with db.execute(
            "SELECT id, tenant, done_at FROM voicemails WHERE id = ?", (row_id,)
        ) as found:
            row = await found.fetchone()
        assert row is not None
        return {"id": row[0], "tenant": row[1], "done_at": row[2]}

    async def _notify(self, mail: Voicemail) -> None:
        broker = self.broker
        assert broker is not None
        topic = TOPIC.format(prefix=broker.prefix, tenant=mail.tenant, kind=mail.kind)
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                async with aiomqtt.Client(
                    broker.host,
                    broker.port,
                    username=broker.username,
                    password=broker.password,
                    identifier=f"rufweiche-voicemail-{id(mail):x}",
                ) as client:
                    await client.publish(topic, mail.payload(), qos=1, retain=False)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.warning("voicemail tenant=%s not notified over MQTT: %s", mail.tenant, exc)

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise VoicemailError("voicemail box used outside 'async with'")
        return self._db


__all__ = [
    "Broker",
    "Voicemail",
    "VoicemailBox",
    "VoicemailError",
]
