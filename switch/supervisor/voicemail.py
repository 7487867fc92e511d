"""Voicemail in the supervisor: keep the record, notify over MQTT, list and serve the files.

Theory of operation
-------------------
A worker records a message (switch/worker/media.py) and sends a ``voicemail`` control
message. :class:`VoicemailBox` (one per supervisor, an ``async with`` object) then

1. files it in the calls database (:class:`switch.records.voicemails.VoicemailStore`),
   with the caller's number as the plan's ``store_caller`` allows (full, masked, none —
   the same policy as the call records);
2. publishes ``rufweiche/v1/<tenant>/voicemail`` (:meth:`presence.topics.Topics.event`;
   QoS 1, not retained: it is an event, not a state) with
   ``{"call_id", "path", "caller", "duration", "time"}``, through the supervisor's one
   MQTT bridge (:meth:`presence.mqtt.PresenceBridge.publish`). A broker that is down
   never delays a call or loses the record: after ``publish_timeout`` the notice is
   logged and dropped. Notices in flight are awaited (bounded) when the box closes.

The HTTP side (:func:`voicemail_routes`): ``GET /api/v1/voicemails[?tenant=]`` lists
the newest messages, and ``GET /files/voicemail/<tenant>/<file>.wav`` serves one
(names are checked: no path leaves ``<data_dir>/voicemail``).

The dictation box (issue 7) reuses all of it: a report with ``"kind": "dictation"``
(and the ``person`` who dictated) lands in the same table, is announced on
``rufweiche/v1/<tenant>/dictation`` with ``person`` added, and is listed by
``GET /api/v1/dictations`` (rows with ``done_at``), served from
``/files/dictation/<tenant>/<file>.wav`` and marked typed up by
``POST /api/v1/dictations/{id}/done``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import aiomqtt

from presence.errors import PresenceError
from presence.topics import Topics
from switch.records.rows import CallerPolicy, iso_utc
from switch.records.voicemails import Voicemail, VoicemailStore

log = logging.getLogger("switch.supervisor.voicemail")

PUBLISH_TIMEOUT_S = 5.0


class Publisher(Protocol):
    """What the box needs of the MQTT bridge (:class:`presence.mqtt.PresenceBridge`)."""

    topics: Topics

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = ..., retain: bool = ...
    ) -> None: ...


def payload(mail: Voicemail) -> bytes:
    """The JSON body of the MQTT notice of ``mail``."""
    body: dict[str, Any] = {
        "call_id": mail.call_id,
        "path": mail.path,
        "caller": mail.caller,
        "duration": round(mail.seconds, 1),
        "time": iso_utc(mail.started_wall),
    }
    if mail.kind == "dictation":
        body["person"] = mail.person
    return json.dumps(body, ensure_ascii=False).encode()


class VoicemailBox:
    """Stores voicemail records and sends their notifications (see the module docstring)."""

    def __init__(
        self,
        db_path: Path,
        mqtt: Publisher | None = None,
        *,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self.store = VoicemailStore(db_path)
        self.mqtt = mqtt
        self.publish_timeout = publish_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        # Issue 18: who else hears of a filed recording (the owner's e-mail notices).
        self.listeners: list[Callable[[Voicemail], None]] = []

    async def __aenter__(self) -> Self:
        await self.store.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tasks:  # let notifications in flight finish, but never hang the stop
            await asyncio.wait(self._tasks, timeout=self.publish_timeout)
        for task in self._tasks:
            task.cancel()
        await self.store.__aexit__(exc_type, exc, tb)

    async def add(self, message: dict[str, Any], policy: CallerPolicy | str) -> Voicemail:
        """Store one worker report and start its MQTT notification."""
        mail = Voicemail.from_message(message, policy)
        await self.store.add(mail, policy)
        log.info("%s tenant=%s call %s: %.1f s", mail.kind, mail.tenant, mail.call_id, mail.seconds)
        for listener in self.listeners:
            listener(mail)
        if self.mqtt is not None:
            task = asyncio.get_running_loop().create_task(self._notify(self.mqtt, mail))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return mail

    async def list(
        self, tenant: str | None = None, limit: int = 100, kind: str = "voicemail"
    ) -> list[dict[str, Any]]:
        return await self.store.list(tenant, limit, kind)

    async def tenant_of(self, row_id: int, kind: str) -> str | None:
        return await self.store.tenant_of(row_id, kind)

    async def mark_done(self, row_id: int, when: float) -> dict[str, Any] | None:
        return await self.store.mark_done(row_id, when)

    async def _notify(self, mqtt: Publisher, mail: Voicemail) -> None:
        try:
            topic = mqtt.topics.event(mail.tenant, mail.kind)
            async with asyncio.timeout(self.publish_timeout):
                await mqtt.publish(topic, payload(mail), qos=1, retain=False)
        except (PresenceError, aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.warning(
                "%s tenant=%s not notified over MQTT: %s",
                mail.kind,
                mail.tenant,
                str(exc) or type(exc).__name__,
            )


__all__ = ["Publisher", "VoicemailBox", "payload"]
